"""The mail the center sends, composed: an agent's reply, and a queue's automatic
acknowledgement. Pure: what goes in is what comes out (save the fresh Message-ID and the Date);
the outbox sends it (app/core/outbox.py, `mail_message`).

A reply threads back by what mail clients and our own matching read:

- `In-Reply-To` names the message answered and `References` the chain up to it (RFC 5322,
  3.6.4), so the customer's client files it under the conversation and their answer names ours;
- the reply token, a random string per thread, rides in `Reply-To` (`support+<token>@domain`)
  and once in the subject (`Re: Broken router [#<token>]`), so an answer still finds its thread
  when a client keeps neither header (the listener matches it only from the same customer).

Everything is 7-bit on the wire (the policy below): non-ASCII names and subjects become RFC 2047
encoded words, bodies quoted-printable or base64, file names RFC 2231, so any relay takes the
message as it is and the outbox row holds plain text.
"""

from __future__ import annotations

import mimetypes
import re
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

# The default policy (RFC 5322 headers, \n line ends) with 7-bit bodies: the content manager
# then picks quoted-printable or base64 (whichever is shorter) for text in any script.
MAIL = policy.default.clone(cte_type="7bit")

# Lower case: a token comes back in an address, and addresses compare without case
# (classify.reply_token_of lower-cases it). 16 of 36 symbols is 82 bits: nobody guesses a
# thread's token to slip mail into it.
TOKEN_ALPHABET = string.ascii_lowercase + string.digits
TOKEN_LENGTH = 16
TOKEN = re.compile(r"[A-Za-z0-9]{8,32}")
# References kept: the thread's first message and the latest ones (clients need the first to
# find the conversation's root, the last to place the reply; long threads would grow forever).
REFERENCES_KEPT = 20
# What clients put before a subject they answer, in the languages our customers write (a
# colon, or the full-width one of Chinese and Japanese).
REPLY_PREFIX = re.compile(
    r"^\s*(?:re|aw|sv|antw|回复|回覆|答复)\s*(?:\[\d+\])?\s*[:\uff1a]\s*", re.I
)
MESSAGE_ID = re.compile(r"<[^<>\s@]+@[^<>\s@]+>")


def reply_token() -> str:
    """A new thread's token: 16 letters and digits from the system's random source."""
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))


@dataclass(frozen=True, slots=True)
class SupportAddress:
    """The address a queue answers from (`support@example.com`) and the name it shows."""

    address: str
    display_name: str = ""

    def __post_init__(self) -> None:
        mailbox = Address(addr_spec=self.address)  # raises on what is not an address
        if "+" in mailbox.username or not mailbox.domain:
            raise ValueError(f"{self.address!r} is not a support address (user@domain, no +)")

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]

    def for_thread(self, token: str) -> str:
        """The plus-address a thread's answers come back to: `support+<token>@domain`."""
        user, _, domain = self.address.rpartition("@")
        return f"{user}+{_checked(token)}@{domain}"


@dataclass(frozen=True, slots=True)
class Thread:
    """What a message answers: the thread's token and subject, the Message-ID of the message
    answered (None when it had none) and that message's References, oldest first. Ids come
    with their angle brackets or without (as stored: `ParsedMail` strips them)."""

    token: str
    subject: str
    answering: str | None = None
    references: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content: bytes
    content_type: str = field(default="")  # guessed from the file name when empty


def reply(
    *,
    support: SupportAddress,
    customer: str,
    customer_name: str = "",
    thread: Thread,
    body: str,
    attachments: Sequence[Attachment] = (),
    now: datetime | None = None,
) -> EmailMessage:
    """An agent's reply to `customer`, in `thread`, as plain text in any script."""
    message = _answer(support, customer, customer_name, thread, now)
    message.set_content(body, charset="utf-8")
    for attachment in attachments:
        maintype, subtype = _content_type(attachment).split("/", 1)
        message.add_attachment(
            attachment.content, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return message


def acknowledgement(
    *,
    support: SupportAddress,
    customer: str,
    customer_name: str = "",
    thread: Thread,
    body: str,
    now: datetime | None = None,
) -> EmailMessage:
    """A queue's automatic "we have your message": marked as automatic (RFC 3834
    `Auto-Submitted: auto-replied`, and Exchange's `X-Auto-Response-Suppress: All`), so that
    the customer's own auto-responder does not answer it and start a loop. Send it with the
    null envelope sender (`mail_message(..., mail_from="")`), as RFC 3834 asks, so a bounce of
    it comes back to nobody."""
    message = _answer(support, customer, customer_name, thread, now)
    message["Auto-Submitted"] = "auto-replied"
    message["X-Auto-Response-Suppress"] = "All"
    message.set_content(body, charset="utf-8")
    return message


def reply_subject(original: str, token: str) -> str:
    """`Re: <original> [#<token>]`: one `Re:` whatever prefixes the original had stacked, and
    the token once, wherever it was before."""
    subject = " ".join(original.replace(f"[#{_checked(token)}]", " ").split())
    while (prefix := REPLY_PREFIX.match(subject)) is not None:
        subject = subject[prefix.end() :]
    return " ".join(["Re:", subject, f"[#{token}]"] if subject else ["Re:", f"[#{token}]"])


def references(thread: Thread) -> list[str]:
    """The answer's References: the answered message's chain and the message itself, each
    once, cut to the first and the latest `REFERENCES_KEPT - 1`; what is not a Message-ID is
    left out (it came from the customer's mail)."""
    chain: list[str] = []
    for message_id in map(_bracketed, [*thread.references, thread.answering]):
        if message_id and MESSAGE_ID.fullmatch(message_id) and message_id not in chain:
            chain.append(message_id)
    if len(chain) > REFERENCES_KEPT:
        chain = [chain[0], *chain[-(REFERENCES_KEPT - 1) :]]
    return chain


def _answer(
    support: SupportAddress,
    customer: str,
    customer_name: str,
    thread: Thread,
    now: datetime | None,
) -> EmailMessage:
    message = EmailMessage(policy=MAIL)
    message["From"] = Address(display_name=support.display_name, addr_spec=support.address)
    message["To"] = Address(display_name=customer_name, addr_spec=customer)
    message["Reply-To"] = Address(
        display_name=support.display_name, addr_spec=support.for_thread(thread.token)
    )
    message["Subject"] = reply_subject(thread.subject, thread.token)
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=support.domain)
    chain = references(thread)
    answering = _bracketed(thread.answering)
    if answering and MESSAGE_ID.fullmatch(answering):
        message["In-Reply-To"] = answering
    if chain:
        message["References"] = " ".join(chain)
    return message


def _bracketed(message_id: str | None) -> str | None:
    """`<id@host>`, whether it came with its brackets or without."""
    return None if not message_id else f"<{message_id.strip().strip('<>')}>"


def _checked(token: str) -> str:
    if not TOKEN.fullmatch(token):
        raise ValueError("a reply token is 8 to 32 letters and digits")
    return token


def _content_type(attachment: Attachment) -> str:
    if attachment.content_type:
        return attachment.content_type
    guessed, _ = mimetypes.guess_type(attachment.filename)
    return guessed or "application/octet-stream"
