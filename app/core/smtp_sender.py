"""The outbox's `smtp` sender: hands `mail` messages (app/core/outbox.py, `mail_message`) to a
relay over SMTP with aiosmtplib, one connection per message.

The relay's reply code is the verdict (RFC 5321, 4.2.1): no connection, no answer in time, a
dropped connection or a 4xx ("try again later": 421 closing, 450 mailbox busy, 451 local error,
452 no room, 454 TLS or AUTH unavailable) are `Transient`, and the courier tries again with its
backoff; a 5xx (550 no such user, 553 address refused, 554 refused, 535 bad credentials) is
`Permanent`: the message is dead with the code and the relay's words kept. A relay that offers
no STARTTLS while we require it, or no AUTH while we have credentials, is `Permanent` too: the
settings (or the relay) must change first, then an admin sends it again.

A relay that takes some recipients and refuses others has sent the mail to those it took:
trying again would send it to them twice, so the message is `sent`, with the refusals recorded
beside it (`last_error`, shown in /v1/outbox). Our replies go to one customer, so this is rare.

The credentials come from the settings, never from the message; the settings allow them only
with STARTTLS, so the password never crosses the network in the clear; it, with the AUTH strings
made of it, is among the secrets the courier blanks from whatever it stores or logs.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Sequence

import aiosmtplib

from app.core.senders import Claimed, Delivered, Permanent, Transient

# No relay to talk to, or it went silent or away mid-conversation: worth another attempt.
UNREACHABLE = (
    aiosmtplib.SMTPConnectError,
    aiosmtplib.SMTPTimeoutError,
    aiosmtplib.SMTPServerDisconnected,
)
# The code a relay answers a message it took with (RFC 5321: "requested action completed").
ACCEPTED = 250


class SmtpSender:
    """Sends `mail` messages to the relay at `host`:`port`, with STARTTLS unless `starttls` is
    off (a local relay without TLS) and AUTH when `credentials` (a user and a password) are
    given. `tls_context` verifies the relay's certificate (the system's CAs when None)."""

    kind = "mail"

    def __init__(
        self,
        name: str,
        *,
        host: str,
        port: int = 587,
        credentials: tuple[str, str] | None = None,
        starttls: bool = True,
        timeout: float = 10.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.name = name
        self._host = host
        self._port = port
        self._credentials = credentials
        self._starttls = starttls
        self._timeout = timeout
        self._tls_context = tls_context
        self.secrets: tuple[str, ...] = _auth_secrets(credentials)

    async def send(self, message: Claimed) -> Delivered:
        request = message.request
        recipients = [str(address) for address in request["recipients"]]
        username, password = self._credentials or (None, None)
        # The client itself, not aiosmtplib.send, which refuses the null sender ("") that an
        # automatic answer goes out from (RFC 3834): MAIL FROM:<>.
        client = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            username=username,
            password=password,
            start_tls=self._starttls,
            tls_context=self._tls_context,
            timeout=self._timeout,
        )
        try:
            async with client:
                refused, _ = await client.sendmail(
                    str(request["mail_from"]),
                    recipients,
                    str(request["message"]).encode("ascii"),
                )
        except aiosmtplib.SMTPRecipientsRefused as error:
            raise _all_refused(error.recipients) from None
        except aiosmtplib.SMTPResponseException as error:
            raise _judged(error.code, error.message, _step(error)) from None
        except (*UNREACHABLE, OSError) as error:
            raise Transient(f"the relay {self._where}: {type(error).__name__}: {error}") from None
        except aiosmtplib.SMTPException as error:  # it lacks what we require (STARTTLS, AUTH)
            raise Permanent(f"the relay {self._where}: {error.message}") from None
        if not refused:
            return Delivered(status=ACCEPTED)
        taken = len(recipients) - len(refused)
        said = "; ".join(f"{address}: {_reply(*answer)}" for address, answer in refused.items())
        return Delivered(status=ACCEPTED, detail=f"sent to {taken}, refused: {said}")

    @property
    def _where(self) -> str:
        return f"{self._host}:{self._port}"

    async def close(self) -> None:
        """Nothing held between messages: each has its connection."""


def _auth_secrets(credentials: tuple[str, str] | None) -> tuple[str, ...]:
    """The password, and the AUTH PLAIN and AUTH LOGIN strings made of it (a relay that echoes
    what it was sent must not land them in the table)."""
    if credentials is None:
        return ()
    username, password = credentials
    plain = base64.b64encode(f"\0{username}\0{password}".encode()).decode()
    login = base64.b64encode(password.encode()).decode()
    return (password, plain, login)


def _step(error: aiosmtplib.SMTPResponseException) -> str:
    """Which step of the conversation the relay refused."""
    if isinstance(error, aiosmtplib.SMTPSenderRefused):
        return f"MAIL FROM <{error.sender}>"
    if isinstance(error, aiosmtplib.SMTPRecipientRefused):
        return f"RCPT TO <{error.recipient}>"
    if isinstance(error, aiosmtplib.SMTPDataError):
        return "DATA"
    if isinstance(error, aiosmtplib.SMTPAuthenticationError):
        return "AUTH"
    if isinstance(error, aiosmtplib.SMTPHeloError):
        return "EHLO"
    return "the relay"


def _reply(code: int, text: str) -> str:
    return " ".join(f"{code} {text}".split())


def _judged(code: int, text: str, step: str) -> Transient | Permanent:
    """A 4xx asks us to try again later; a 5xx (or anything else unlooked-for) refuses."""
    detail = f"{step}: {_reply(code, text)}"
    if 400 <= code < 500:
        return Transient(detail, status=code)
    return Permanent(detail, status=code)


def _all_refused(refusals: Sequence[aiosmtplib.SMTPRecipientRefused]) -> Transient | Permanent:
    """Every recipient refused: worth another attempt if any refusal was only for now."""
    said = "; ".join(f"<{r.recipient}> {_reply(r.code, r.message)}" for r in refusals)
    codes = [refusal.code for refusal in refusals]
    transient = [code for code in codes if 400 <= code < 500]
    if transient:
        return Transient(f"RCPT TO: {said}", status=transient[0])
    return Permanent(f"RCPT TO: {said}", status=codes[0] if codes else None)
