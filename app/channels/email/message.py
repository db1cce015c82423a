"""A raw email message as what an agent reads: `parse(raw) -> ParsedMail`. Pure.

The standard library's `email` (policy `default`) finds the MIME tree; the text is decoded here,
by app/channels/email/charsets.py, because real mail mislabels its charsets and a header or part
that cannot be decoded must still give text (with U+FFFD), never an exception. HTML-only mail
is reduced to text by app/channels/email/htmltext.py, the quoted history is split off by
app/channels/email/quoting.py, and attachments beyond the message's size budget are dropped
with a line in `dropped` that says so. docs/channels.md says what is read and why.

Only bytes that are not a message at all raise `Unparseable`, whose text an SMTP 554 can quote.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import hashlib
import mimetypes
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from types import MappingProxyType

from app.channels.email.charsets import decode_bytes, decode_header, raw_header_text
from app.channels.email.htmltext import html_to_text
from app.channels.email.quoting import split_quoted

# The headers classify.py reads (and the lead's storage may keep), names lower-cased.
CLASSIFICATION_HEADERS = frozenset(
    {
        "auto-submitted",
        "precedence",
        "x-auto-response-suppress",
        "x-autoreply",
        "x-autorespond",
        "x-autoresponder",
        "x-failed-recipients",
        "return-path",
        "content-type",
        "feedback-type",
    }
)
# At least one of these, or the bytes are not an email message.
_MESSAGE_HEADERS = ("from", "sender", "to", "cc", "subject", "date", "message-id")
_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
_UNSAFE_IN_FILENAME = re.compile(r"[\x00-\x1f\x7f/\\]")
_LONGEST_FILENAME = 255
_MB = 1024 * 1024
_WHOLE_PARTS = frozenset({"message/delivery-status", "message/rfc822", "message/global"})


class Unparseable(ValueError):
    """The bytes are not an email message; the text says why, for an SMTP 554 reply."""


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class ParsedMail:
    message_id: str | None  # without <>
    in_reply_to: str | None
    references: tuple[str, ...]
    sender: str | None  # From's address, lower-cased
    sender_name: str
    recipients: tuple[str, ...]  # To and Cc addresses, lower-cased
    subject: str
    date: datetime | None  # aware; None when missing or broken
    text: str  # the new text
    quoted: str  # the quoted history separated from it
    from_html: bool
    attachments: tuple[Attachment, ...]
    dropped: tuple[str, ...]  # what was not kept and why
    headers: Mapping[str, str]  # CLASSIFICATION_HEADERS and every List-* header present
    content_key: str  # sha256 hex of the raw bytes, for dedupe without a Message-ID
    # RFC 3464 delivery-status blocks (per-message first, then one per recipient), names
    # lower-cased: what classify.bounce_of reads.
    delivery_status: tuple[Mapping[str, str], ...] = ()
    reply_to: str | None = None  # Reply-To's address, lower-cased: where a web form's customer is


def parse(raw: bytes, *, max_attachment_bytes: int) -> ParsedMail:
    """`raw` (an RFC 5322 message) as an agent reads it; Unparseable when it is not a message."""
    message = _message_of(raw)
    body = _Body.read(message)
    text, quoted = split_quoted(body.text)
    kept, dropped = _within_budget(body.attachments, max_attachment_bytes)
    sender_name, sender = _first_address(message, "from")
    return ParsedMail(
        message_id=_message_id(_header(message, "message-id")),
        in_reply_to=_message_id(_header(message, "in-reply-to")),
        references=_message_ids(_header(message, "references")),
        sender=sender,
        sender_name=sender_name,
        reply_to=_first_address(message, "reply-to")[1],
        recipients=_recipients(message),
        subject=decode_header(_header(message, "subject")),
        date=_date(_header(message, "date")),
        text=text,
        quoted=quoted,
        from_html=body.from_html,
        attachments=kept,
        dropped=(*body.unreadable, *dropped),
        headers=_classification_headers(message),
        content_key=hashlib.sha256(raw).hexdigest(),
        delivery_status=tuple(body.delivery_status),
    )


def _message_of(raw: bytes) -> Message:
    if not raw.strip():
        raise Unparseable("the message is empty")
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
    except RecursionError as error:
        raise Unparseable("MIME parts nested too deeply to read") from error
    except Exception as error:  # the parser is lenient; this is only a last guard
        raise Unparseable(f"not an email message ({type(error).__name__})") from error
    names = {name.lower() for name, _ in _raw_items(message)}
    if not names:
        raise Unparseable("not an email message: no header fields")
    if names.isdisjoint(_MESSAGE_HEADERS):
        raise Unparseable("not an email message: no From, To, Subject, Date or Message-ID")
    return message


def _raw_items(message: Message) -> list[tuple[str, str]]:
    """The header fields as received: the values unparsed, so that no header's syntax can
    raise here (the default policy parses a value only when it is read by name)."""
    return [(str(name), str(value)) for name, value in message.raw_items()]


def _header(message: Message, name: str) -> str:
    """The first `name` field's raw value ("" when absent)."""
    for field_name, value in _raw_items(message):
        if field_name.lower() == name:
            return value
    return ""


def _message_id(value: str) -> str | None:
    ids = _message_ids(value)
    return ids[0] if ids else None


def _message_ids(value: str) -> tuple[str, ...]:
    text = raw_header_text(value)
    found = _MESSAGE_ID.findall(text)
    return tuple(found) if found else tuple(text.split())


def _addresses(message: Message, *names: str) -> list[tuple[str, str]]:
    values = [raw_header_text(v) for n, v in _raw_items(message) if n.lower() in names]
    try:
        pairs = email.utils.getaddresses(values)
    except Exception:  # getaddresses has raised on hostile input in some Python releases
        return []
    return [(decode_header(name), address.strip().lower()) for name, address in pairs]


def _first_address(message: Message, name: str) -> tuple[str, str | None]:
    for display_name, address in _addresses(message, name):
        if "@" in address:
            return display_name, address
    return "", None


def _recipients(message: Message) -> tuple[str, ...]:
    found = [address for _, address in _addresses(message, "to", "cc") if "@" in address]
    return tuple(dict.fromkeys(found))  # once each, in order


def _date(value: str) -> datetime | None:
    text = raw_header_text(value)
    if not text:
        return None
    try:
        date = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return date if date.tzinfo is not None else date.replace(tzinfo=UTC)  # "-0000": UTC


def _classification_headers(message: Message) -> Mapping[str, str]:
    headers: dict[str, str] = {}
    for name, value in _raw_items(message):
        key = name.lower()
        if (key in CLASSIFICATION_HEADERS or key.startswith("list-")) and key not in headers:
            headers[key] = decode_header(value)
    return MappingProxyType(headers)


class _Body:
    """The parts of a message sorted into text, attachments and delivery-status blocks."""

    def __init__(self) -> None:
        self.plain: list[str] = []
        self.html: list[str] = []
        self.attachments: list[Attachment] = []
        self.delivery_status: list[Mapping[str, str]] = []
        self.unreadable: list[str] = []

    @classmethod
    def read(cls, message: Message) -> _Body:
        body = cls()
        for number, part in enumerate(_leaves(message), start=1):
            try:
                body.add(part, number)
            except Exception as error:  # one broken part must not cost the rest
                body.unreadable.append(f"part {number}: could not be read ({type(error).__name__})")
        return body

    @property
    def from_html(self) -> bool:
        return not self.plain and bool(self.html)

    @property
    def text(self) -> str:
        if self.plain:
            return "\n\n".join(self.plain).replace("\r\n", "\n")
        return "\n\n".join(html_to_text(markup) for markup in self.html)

    def add(self, part: Message, number: int) -> None:
        content_type = part.get_content_type()
        filename = _filename(part)
        if content_type == "message/delivery-status":
            self.delivery_status.extend(_delivery_status(part))
        elif (
            filename is None
            and content_type in ("text/plain", "text/html")
            and part.get_content_disposition() != "attachment"
        ):
            text = decode_bytes(_payload(part), _charset(part))
            (self.plain if content_type == "text/plain" else self.html).append(text)
        else:
            data = _payload(part)
            name = filename or _made_up_name(number, content_type)
            self.attachments.append(Attachment(name, content_type, len(data), data))


def _leaves(message: Message) -> Iterator[Message]:
    """The parts that hold content, in order; a delivery-status part (the parser reads its
    blocks as sub-messages) and an attached message (message/rfc822: a forward, a bounce's
    original) each count as one. A loop, not recursion: nesting depth is the sender's choice."""
    stack = [message]
    while stack:
        part = stack.pop()
        if part.get_content_type() in _WHOLE_PARTS or not part.is_multipart():
            yield part
        else:
            subparts = part.get_payload()
            if isinstance(subparts, list):
                stack.extend(sub for sub in reversed(subparts) if isinstance(sub, Message))


def _payload(part: Message) -> bytes:
    if part.get_content_type() in ("message/rfc822", "message/global"):
        inner = part.get_payload(0)
        return inner.as_bytes(policy=email.policy.compat32) if isinstance(inner, Message) else b""
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _charset(part: Message) -> str | None:
    charset = part.get_param("charset")
    return charset if isinstance(charset, str) else None


def _filename(part: Message) -> str | None:
    """The attachment's file name: Content-Disposition's `filename`, else Content-Type's
    `name`; RFC 2231 (`filename*0*=gbk''...`, its pieces joined before decoding, since a client
    may cut a character in two) or RFC 2047 inside quotes (`filename="=?GBK?B?...?="`, as
    Outlook and Foxmail write it). Only its last path component is kept."""
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        name = _param(_header(part, header), param)
        if name:
            break
    else:
        return None
    text = re.split(r"[/\\]", decode_header(name))[-1]
    text = _UNSAFE_IN_FILENAME.sub("", text).strip()
    return text[:_LONGEST_FILENAME] or None


def _param(raw: str, name: str) -> str | None:
    """Parameter `name` of a raw Content-Disposition or Content-Type value, RFC 2231 decoded
    with the same charset supersets as everything else. The compat32 `Message` reads it: it
    joins an RFC 2231 value's pieces before decoding them, which the default policy does not."""
    if not raw:
        return None
    holder = Message()
    holder["Content-Disposition"] = raw_header_text(raw)
    value = holder.get_param(name, header="content-disposition")
    if isinstance(value, tuple):  # RFC 2231: (charset, language, the bytes as latin-1 text)
        charset, _, text = value
        return decode_bytes(str(text).encode("latin-1", errors="replace"), charset)
    return email.utils.unquote(value) if isinstance(value, str) else None


def _made_up_name(number: int, content_type: str) -> str:
    if content_type in ("message/rfc822", "message/global"):
        return f"part-{number}.eml"
    known = mimetypes.guess_extension(content_type)
    return f"part-{number}{known or ('.txt' if content_type.startswith('text/') else '.bin')}"


def _delivery_status(part: Message) -> Iterator[Mapping[str, str]]:
    """The blocks of an RFC 3464 delivery-status part, each a mapping of its fields."""
    payload = part.get_payload()
    blocks = payload if isinstance(payload, list) else []
    for block in blocks:
        if isinstance(block, Message):
            fields = {name.lower(): raw_header_text(value) for name, value in _raw_items(block)}
            if fields:
                yield MappingProxyType(fields)


def _within_budget(
    attachments: list[Attachment], budget: int
) -> tuple[tuple[Attachment, ...], tuple[str, ...]]:
    """The attachments that fit in `budget` bytes together, taken in order, and a line for each
    one that did not."""
    kept: list[Attachment] = []
    dropped: list[str] = []
    used = 0
    for attachment in attachments:
        if used + attachment.size > budget:
            dropped.append(
                f"{attachment.filename} ({_size_text(attachment.size)}): "
                f"over the {_size_text(budget)} a message may carry"
            )
        else:
            kept.append(attachment)
            used += attachment.size
    return tuple(kept), tuple(dropped)


def _size_text(size: int) -> str:
    if size >= _MB:
        return f"{size / _MB:.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size} bytes"
