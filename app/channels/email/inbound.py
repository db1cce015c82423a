"""Mail in: the one function both ways in call (the SMTP listener, app/channels/email/listener.py,
and the inbound webhook, app/channels/email/api.py), so a message gives the same result by
either.

Store before accepting: a message is parsed, classified and stored (committed) before its
`250` (or the webhook's 200); one that cannot be taken is refused with the reason (`Refused`:
552 too large, 554 unparseable, 550 not for us) and nothing is kept. Then:

- an auto-reply, a bounce or list mail is kept as a message of no interaction, never answered
  and never an interaction; a permanent bounce marks the customer's address as failing;
- a reply (found by the Message-IDs it names or its reply token, and only among the sender's
  own interactions) to a thread being handled is added to that interaction
  (`Intake.add_event`: its agent's desk hears it);
- a reply to a completed thread opens a new interaction linked to it (completed stays
  terminal), which the queue offers first to that thread's agent for its `follow_up_days`;
- anything else is a new thread: `Intake.receive`, channel email, the queue of the support
  address it was sent to, and the sender's customer (a new sender becomes a new customer).

Duplicates change nothing: a message is keyed by its Message-ID and sender (by its sender and
a hash of its content when it has no Message-ID), and a delivery of a key stored before only
finishes what the first one started (should that one have died half-way) and answers the same.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import asyncpg

from app.channels.email import compose
from app.channels.email.classify import MailKind, bounce_of, classify, reply_token_of
from app.channels.email.complaints import ComplaintMail
from app.channels.email.message import ParsedMail, Unparseable, parse
from app.core import outbox, pg
from app.core.channels import Channel
from app.core.errors import IllegalTransition
from app.core.logging import get_logger
from app.core.settings import Settings
from app.customers import email_contacts
from app.customers.models import ContactKind
from app.interactions import messages
from app.interactions.intake import Conversation, Intake
from app.interactions.models import TERMINAL_STATES, InteractionState
from app.interactions.schemas import ContactIn, InteractionCreate

log = get_logger(__name__)

ACTOR = "channel:email"
# What is kept and never becomes an interaction, nor is ever answered.
NOT_WORK = frozenset({MailKind.auto_reply, MailKind.bounce, MailKind.list_mail})
SUPPORT_ADDRESSES = "SELECT address, queue_id, complaints FROM email_addresses"
SUMMARY_LIMIT = 20_000  # InteractionCreate's summary
SUBJECT_LIMIT = 500  # and its subject
SENDER_LIMIT = 320  # and its contact's value (a contact point's column)


class Refused(Exception):
    """A message not taken, with the SMTP reply that says why (the webhook maps it)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Taken:
    """What a message became: stored as `message_id`, of `kind`, in `interaction_id` (None for
    what is not work). `duplicate`: delivered before (nothing changed); `opened`: a new
    interaction was made for it; `linked_to`: the completed thread it continues."""

    message_id: uuid.UUID
    kind: MailKind
    interaction_id: uuid.UUID | None
    duplicate: bool = False
    opened: bool = False
    linked_to: uuid.UUID | None = None


def base_address(address: str) -> tuple[str, str | None]:
    """`support+token@example.com` as (`support@example.com`, `token`), lower-cased."""
    local, at, domain = address.strip().strip("<>").lower().rpartition("@")
    if not at:
        return address.strip().lower(), None
    local, plus, token = local.partition("+")
    return f"{local}@{domain}", (token or None) if plus else None


def dedupe_key(mail: ParsedMail) -> str:
    """Message-ID and sender, or sender and the content's hash: the same message delivered
    again has the same key (a sha256, as a Message-ID may be long)."""
    sender = mail.sender or ""
    if mail.message_id:
        basis = f"message-id\x00{mail.message_id}\x00{sender}"
    else:
        basis = f"content\x00{sender}\x00{mail.content_key}"
    return hashlib.sha256(basis.encode("utf-8", "surrogatepass")).hexdigest()


def new_reply_token() -> str:
    """A thread's token: lower-case letters and digits, fit for an address's local part."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(16))


class MailIn:
    """Takes mail for the support addresses. One per replica (app.state.mail_in)."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        intake: Intake,
        settings: Settings,
        complaints: ComplaintMail | None = None,
    ) -> None:
        self._pool = pool
        self._intake = intake
        self._settings = settings
        self._complaints = complaints

    @property
    def max_bytes(self) -> int:
        return self._settings.email_max_bytes

    async def support_addresses(self) -> dict[str, uuid.UUID]:
        """The support addresses and their queues (a short list, read per message)."""
        return (await self._addresses())[0]

    async def _addresses(self) -> tuple[dict[str, uuid.UUID], frozenset[str]]:
        """The support addresses with their queues, and those that take complaints."""
        async with self._pool.acquire(timeout=pg.ACQUIRE_TIMEOUT) as connection:
            rows = await connection.fetch(SUPPORT_ADDRESSES)
        complaints = frozenset(row["address"] for row in rows if row["complaints"])
        return {row["address"]: row["queue_id"] for row in rows}, complaints

    async def accepts(self, address: str) -> bool:
        """Whether mail to `address` (or a plus-addressed form of one) is ours."""
        return base_address(address)[0] in await self.support_addresses()

    async def take(
        self, raw: bytes, *, envelope_to: Iterable[str] = (), envelope_from: str | None = None
    ) -> Taken:
        """The message taken (stored, committed) or `Refused`. `envelope_to`: the SMTP
        envelope's recipients (the webhook has none: the message's To and Cc say);
        `envelope_from`: its sender, which a mail server writes as the Return-Path ("" for
        the null sender a bounce or an auto-reply comes from)."""
        envelope = list(envelope_to)
        if len(raw) > self.max_bytes:
            raise Refused(552, f"message too large: the limit is {self.max_bytes} bytes")
        try:
            mail = parse(raw, max_attachment_bytes=self.max_bytes)
        except Unparseable as error:
            raise Refused(554, f"message cannot be parsed: {error}") from error
        if envelope_from is not None and "return-path" not in mail.headers:
            # As a delivering server would write it, so an automatic message sent with the null
            # sender is known as one; the raw bytes (and the dedupe key) stay as they came.
            sender = envelope_from.strip().strip("<>")  # servers hand the null one as "" or "<>"
            headers = {**mail.headers, "return-path": f"<{sender}>"}
            mail = dataclasses.replace(mail, headers=MappingProxyType(headers))
        addresses, complaints = await self._addresses()
        queue_id = _queue_of([*envelope, *mail.recipients], addresses)
        if queue_id is None:
            raise Refused(550, "the message is not addressed to a support address")
        if not _answerable(mail.sender):
            raise Refused(554, "the message has no sender address (From) to answer")
        token = _envelope_token(envelope, addresses) or reply_token_of(mail, tuple(addresses))
        taken = await self._take(mail, queue_id, token)
        if self._complaints is not None and taken.interaction_id is not None:
            # A new thread to a complaints address raises one (`kind` says new thread on a
            # duplicate delivery too); any mail naming a complaint's reference is linked to it.
            to_complaints = taken.kind is MailKind.new_thread and any(
                base_address(r)[0] in complaints for r in (*envelope, *mail.recipients)
            )
            await self._complaints.taken(
                taken.interaction_id, mail.subject, mail.text, raise_one=to_complaints
            )
        return taken

    async def _take(self, mail: ParsedMail, queue_id: uuid.UUID, token: str | None) -> Taken:
        assert mail.sender is not None
        key = dedupe_key(mail)
        async with pg.transaction(self._pool) as connection:
            customer_id = await email_contacts.customer_writing_from(connection, mail.sender)
            named = [i for i in (mail.in_reply_to, *mail.references) if i]
            thread = None
            if customer_id is not None:
                thread = await messages.thread_of(
                    connection, named=named, reply_token=token, customer_id=customer_id
                )
            # A thread it names that is not its sender's: it joins none, but says so.
            mentions = None
            if thread is None:
                mentions = await messages.mentioned(connection, named=named, reply_token=token)
            kind = classify(mail, thread_found=thread is not None)
            stored = await messages.store(connection, _message(mail, kind, key, mentions))
            if stored.created and kind is MailKind.bounce:
                await _mark_bounce(connection, mail)
        kind = MailKind(stored.kind)
        if not stored.created and (stored.interaction_id is not None or kind in NOT_WORK):
            return Taken(stored.id, kind, stored.interaction_id, duplicate=True)
        if kind in NOT_WORK:
            log.info("email.not_work", message_id=str(stored.id), kind=kind.value)
            return Taken(stored.id, kind, None)
        if thread is not None and InteractionState(thread.state) not in TERMINAL_STATES:
            added = await self._add_to_thread(mail, stored.id, thread, key)
            if added is not None:
                return added
        linked_to = None if thread is None else thread.id
        return await self._open(mail, stored.id, queue_id, key, linked_to, kind)

    async def _add_to_thread(
        self, mail: ParsedMail, message_id: uuid.UUID, thread: messages.Thread, key: str
    ) -> Taken | None:
        """The reply added to the interaction being handled; None if it ended meanwhile."""
        payload: dict[str, object] = {
            "channel": Channel.email.value,
            "message_id": str(message_id),
            "sender": mail.sender,
            "subject": mail.subject[:SUBJECT_LIMIT],
        }
        if thread.agent_id is not None:  # the desk of the agent who has it hears it
            payload["agent_id"] = str(thread.agent_id)
        try:
            await self._intake.add_event(
                thread.id, "interaction.message", payload, actor=ACTOR, reference=key
            )
        except IllegalTransition:
            return None
        async with self._pool.acquire(timeout=pg.ACQUIRE_TIMEOUT) as connection:
            await messages.attach(connection, message_id, thread.id)
        return Taken(message_id, MailKind.reply, thread.id)

    async def _open(
        self,
        mail: ParsedMail,
        message_id: uuid.UUID,
        queue_id: uuid.UUID,
        key: str,
        linked_to: uuid.UUID | None,
        kind: MailKind,
    ) -> Taken:
        """A new interaction for the message (linked to the completed thread it continues)."""
        assert mail.sender is not None
        data = InteractionCreate(
            channel=Channel.email,
            queue=str(queue_id),
            contact=ContactIn(kind=ContactKind.email, value=mail.sender),
            customer_name=_clean(mail.sender_name).strip()[:200].strip() or None,
            external_ref=key,
            subject=_clean(mail.subject)[:SUBJECT_LIMIT],
            summary=_clean(mail.text)[:SUMMARY_LIMIT],
        )
        # Written with the interaction: the message, the thread's token, what it follows up.
        token = new_reply_token()
        conversation = Conversation(message_id, reply_token=token, continues=linked_to)
        received = await self._intake.receive(data, actor=ACTOR, conversation=conversation)
        interaction_id = received.interaction.id
        if received.created:
            # At most once per thread: a crash before this commits loses the acknowledgement
            # (a retried delivery finds the message taken), never sends it twice.
            async with pg.transaction(self._pool) as connection:
                await acknowledge(connection, mail, queue_id, interaction_id, token)
        return Taken(message_id, kind, interaction_id, opened=received.created, linked_to=linked_to)


# The queue's address that acknowledges new threads, if one does.
ACKNOWLEDGING = """
    SELECT address, display_name FROM email_addresses
    WHERE queue_id = $1 AND acknowledge ORDER BY address LIMIT 1
"""
ACKNOWLEDGEMENT = (
    "We have received your message and will answer it soon. To add to it, reply to this mail."
    "\n\n我们已收到您的邮件，会尽快答复。如需补充，请直接回复本邮件。\n"
)


async def acknowledge(
    connection: asyncpg.Connection,
    mail: ParsedMail,
    queue_id: uuid.UUID,
    interaction_id: uuid.UUID,
    token: str,
) -> None:
    """A queue's automatic "we have your message", once per thread (its outbox key is the
    interaction's), written with the thread: marked automatic (RFC 3834) and sent from the null
    sender, so no auto-responder answers it and no bounce comes back. The courier's sweep
    sends it."""
    row = await connection.fetchrow(ACKNOWLEDGING, queue_id)
    if row is None or mail.sender is None:
        return
    message = compose.acknowledgement(
        support=compose.SupportAddress(row["address"], row["display_name"]),
        customer=mail.sender,
        customer_name=mail.sender_name,
        thread=compose.Thread(
            token=token,
            subject=mail.subject,
            answering=mail.message_id,
            references=mail.references,
        ),
        body=ACKNOWLEDGEMENT,
    )
    await outbox.enqueue(
        connection,
        outbox.mail_message(
            sender="smtp",
            message=message,
            dedupe_key=f"ack:{interaction_id}",
            subject_type="interaction",
            subject_id=interaction_id,
            mail_from="",
        ),
    )


def _queue_of(recipients: Iterable[str], addresses: Mapping[str, uuid.UUID]) -> uuid.UUID | None:
    """The queue of the first recipient that is a support address (or a plus form of one)."""
    for recipient in recipients:
        queue_id = addresses.get(base_address(recipient)[0])
        if queue_id is not None:
            return queue_id
    return None


def _envelope_token(envelope_to: Iterable[str], addresses: Mapping[str, uuid.UUID]) -> str | None:
    """The reply token of a plus address the envelope names (a Bcc the headers do not)."""
    for recipient in envelope_to:
        base, token = base_address(recipient)
        if token and base in addresses:
            return token
    return None


def _answerable(sender: str | None) -> bool:
    """Whether the sender is an address a customer's contact point can hold."""
    return (
        sender is not None
        and len(sender) <= SENDER_LIMIT
        and email_contacts.normalized(sender) is not None
    )


def _message(
    mail: ParsedMail, kind: MailKind, key: str, mentions: uuid.UUID | None
) -> messages.NewMessage:
    return messages.NewMessage(
        kind=kind.value,
        dedupe_key=key,
        channel_message_id=mail.message_id,
        sender=mail.sender,
        sender_name=mail.sender_name,
        subject=mail.subject,
        text=mail.text,
        quoted=mail.quoted,
        from_html=mail.from_html,
        received_at=pg.now(),
        dropped=mail.dropped,
        mentions=mentions,
        attachments=tuple(
            messages.NewAttachment(a.filename, a.content_type, a.data) for a in mail.attachments
        ),
    )


async def _mark_bounce(connection: asyncpg.Connection, mail: ParsedMail) -> None:
    """A permanent bounce marks the address it was for as failing (shown to agents)."""
    bounce = bounce_of(mail)
    if bounce is not None and bounce.permanent and bounce.recipient:
        await email_contacts.mark_failing(connection, bounce.recipient, pg.now())


def _clean(text: str) -> str:
    """Request strings refuse NUL (app.core.inputs): a message's may hold one."""
    return text.replace("\x00", "")
