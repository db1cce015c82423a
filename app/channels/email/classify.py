"""What kind of mail a parsed message is, and the bounce or reply token it carries. Pure.

Mail that a machine sent (bounces, auto-replies, out-of-office notices, list mail) never opens
an interaction and is never answered automatically: answering it is how two auto-responders
write to each other forever (RFC 3834). The rules, first match wins:

1. bounce: an RFC 3464 delivery report (multipart/report; report-type=delivery-status), or
   `X-Failed-Recipients`, or mail from MAILER-DAEMON or postmaster with an empty Return-Path;
2. list mail: any `List-*` header (List-Id, List-Unsubscribe, ...: RFC 2369, 2919), or
   `Precedence: list`;
3. auto-reply: `Auto-Submitted` other than "no" (RFC 3834), `Precedence: bulk` or `junk`,
   `X-Auto-Response-Suppress`, `X-Autoreply`, `X-Autorespond`, an empty Return-Path (`<>`), or
   a subject that begins like an out-of-office notice ("Automatic reply:", "自动回复", ...), as
   Outlook and some Chinese mail systems send without any of those headers;
4. otherwise a reply when the caller matched it to a thread, else a new thread.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum

from app.channels.email.message import ParsedMail


class MailKind(StrEnum):
    new_thread = "new_thread"
    reply = "reply"
    auto_reply = "auto_reply"
    bounce = "bounce"
    list_mail = "list_mail"


AUTOMATIC = frozenset({MailKind.auto_reply, MailKind.bounce, MailKind.list_mail})

_OUT_OF_OFFICE_SUBJECT = re.compile(
    r"^\s*(automatic reply|auto[- ]?reply|autoreply|out of (the )?office|auto|"
    r"自动回复|自动答复|自動回覆|自動回复|自動答覆)\s*[:：]",
    re.IGNORECASE,
)
_AUTO_HEADERS = ("x-auto-response-suppress", "x-autoreply", "x-autorespond", "x-autoresponder")
_DAEMONS = frozenset({"mailer-daemon", "postmaster"})
_STATUS = re.compile(r"\b([245])\.\d{1,3}\.\d{1,3}\b")
_TOKEN = re.compile(r"[A-Za-z0-9]{8,32}")
_SUBJECT_TOKEN = re.compile(r"\[#([A-Za-z0-9]{8,32})\]")


@dataclass(frozen=True)
class Bounce:
    recipient: str  # the address that could not be delivered to, lower-cased
    permanent: bool  # a 5.x.x failure; a 4.x.x delay is not
    status: str  # the RFC 3463 status code ("5.1.1"), "" when the report gave none


def classify(mail: ParsedMail, *, thread_found: bool) -> MailKind:
    """The kind of `mail`; `thread_found`: the caller matched it to an existing thread (by
    In-Reply-To/References or reply token, and the same customer)."""
    if is_bounce(mail):
        return MailKind.bounce
    if is_list_mail(mail):
        return MailKind.list_mail
    if is_auto_reply(mail):
        return MailKind.auto_reply
    return MailKind.reply if thread_found else MailKind.new_thread


def is_bounce(mail: ParsedMail) -> bool:
    if _is_delivery_report(mail.headers) or mail.delivery_status:
        return True
    if mail.headers.get("x-failed-recipients", "").strip():
        return True
    local_part = (mail.sender or "").split("@", 1)[0]
    return local_part in _DAEMONS and _empty_return_path(mail.headers)


def is_list_mail(mail: ParsedMail) -> bool:
    if any(name.startswith("list-") for name in mail.headers):
        return True
    return _precedence(mail.headers) == "list"


def is_auto_reply(mail: ParsedMail) -> bool:
    headers = mail.headers
    auto_submitted = headers.get("auto-submitted", "").split(";", 1)[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return True
    if _precedence(headers) in ("bulk", "junk"):
        return True
    if any(headers.get(name, "").strip() for name in _AUTO_HEADERS):
        return True
    if _empty_return_path(headers):
        return True
    return bool(_OUT_OF_OFFICE_SUBJECT.match(mail.subject))


def bounce_of(mail: ParsedMail) -> Bounce | None:
    """The failed (or delayed) recipient an RFC 3464 report tells of; a failure wins over a
    delay when a report names both. None when `mail` reports no failure or delay."""
    found: list[Bounce] = []
    for block in mail.delivery_status:
        bounce = _bounce_in(block)
        if bounce is not None:
            found.append(bounce)
    if not found:
        failed = mail.headers.get("x-failed-recipients", "").split(",")[0].strip().lower()
        return Bounce(failed, permanent=True, status="") if failed else None
    return next((bounce for bounce in found if bounce.permanent), found[0])


def _bounce_in(block: Mapping[str, str]) -> Bounce | None:
    recipient = _address_in(block.get("final-recipient") or block.get("original-recipient", ""))
    action = block.get("action", "").strip().lower()
    status_match = _STATUS.search(block.get("status", ""))
    status = status_match.group(0) if status_match else ""
    if not recipient or action not in ("failed", "delayed"):
        return None
    permanent = status.startswith("5") if status else action == "failed"
    return Bounce(recipient, permanent=permanent, status=status)


def _address_in(field: str) -> str:
    """The address of an RFC 3464 recipient field: "rfc822; Li@Example.com" -> li@example.com."""
    address = field.split(";", 1)[-1].strip().strip("<>").strip()
    return address.lower() if "@" in address else ""


def reply_token_of(mail: ParsedMail, support_addresses: Collection[str]) -> str | None:
    """The reply token `mail` carries: in a plus address of one of `support_addresses`
    (support+<token>@domain) among its recipients, else as "[#<token>]" in its subject.
    Lower-cased, as addresses are: tokens are compared without case."""
    supports = {address.strip().lower() for address in support_addresses}
    for recipient in mail.recipients:
        local_part, _, domain = recipient.partition("@")
        base, plus, token = local_part.partition("+")
        if plus and f"{base}@{domain}" in supports and _TOKEN.fullmatch(token):
            return token.lower()
    match = _SUBJECT_TOKEN.search(mail.subject)
    return match.group(1).lower() if match else None


def _is_delivery_report(headers: Mapping[str, str]) -> bool:
    content_type = headers.get("content-type", "").lower()
    return content_type.startswith("multipart/report") and "delivery-status" in content_type


def _precedence(headers: Mapping[str, str]) -> str:
    return headers.get("precedence", "").strip().lower()


def _empty_return_path(headers: Mapping[str, str]) -> bool:
    return "return-path" in headers and headers["return-path"].strip() in ("<>", "")
