"""Composed mail, read back as a mail client reads it: the bytes parsed with the standard
library's `email` (policy default), whose headers are what threads a reply (Message-ID,
In-Reply-To, References, Reply-To, the subject's token) and what a customer sees (names and
subjects in any script, RFC 2047-encoded on the wire)."""

# Customers write with full-width punctuation and in Arabic letters: that is the point here.

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from app.channels.email.compose import (
    REFERENCES_KEPT,
    TOKEN,
    Attachment,
    SupportAddress,
    Thread,
    acknowledgement,
    references,
    reply,
    reply_subject,
    reply_token,
)

SUPPORT = SupportAddress("support@example.com", "Billing support")
TOKEN_OF_THREAD = "Q7fK2mX9pLw3Rz8T"
THREAD = Thread(
    token=TOKEN_OF_THREAD,
    subject="My bill is wrong",
    answering="<m2@customer.example>",
    references=["<m1@customer.example>", "<r1@example.com>"],
)
NOW = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)


def wire(message: EmailMessage) -> bytes:
    """The bytes a relay takes (SMTP's line ends)."""
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def read(message: EmailMessage) -> EmailMessage:
    parsed = message_from_bytes(wire(message), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def raw_header(message: EmailMessage, name: str) -> str:
    """A header as it stands on the wire, folded lines joined."""
    text = wire(message).decode("ascii")
    found = re.search(rf"^{name}: (.*?)\r\n(?! )", text, re.M | re.S)
    assert found is not None, name
    return found.group(1).replace("\r\n ", " ")


def test_a_reply_carries_what_a_mail_client_threads_it_by() -> None:
    sent = reply(
        support=SUPPORT,
        customer="mei@customer.example",
        customer_name="Mei Lin",
        thread=THREAD,
        body="Your refund is on its way.\n",
        now=NOW,
    )
    got = read(sent)
    assert got["From"] == "Billing support <support@example.com>"
    assert got["To"] == "Mei Lin <mei@customer.example>"
    assert got["Reply-To"] == f"Billing support <support+{TOKEN_OF_THREAD}@example.com>"
    assert got["Subject"] == f"Re: My bill is wrong [#{TOKEN_OF_THREAD}]"
    assert got["In-Reply-To"] == "<m2@customer.example>"
    assert got["References"] == "<m1@customer.example> <r1@example.com> <m2@customer.example>"
    assert re.fullmatch(r"<[^<>@\s]+@example\.com>", got["Message-ID"])
    assert got["Date"].datetime == NOW
    assert got.get_content_type() == "text/plain"
    assert got.get_content().replace("\r\n", "\n") == "Your refund is on its way.\n"
    assert got["Auto-Submitted"] is None  # a person wrote it
    # Each reply is a message of its own.
    again = reply(support=SUPPORT, customer="mei@customer.example", thread=THREAD, body="x")
    assert again["Message-ID"] != sent["Message-ID"]


def test_names_subjects_and_bodies_in_any_script_are_encoded_for_the_wire() -> None:
    sent = reply(
        support=SupportAddress("support@example.com", "客服中心"),
        customer="lei@customer.example",
        customer_name="李雷",
        thread=Thread(token=TOKEN_OF_THREAD, subject="回复：我的账单有问题"),
        body="您好！退款已经办好了。\nالمبلغ المسترد في الطريق\n",
        attachments=[Attachment("发票 十二月.pdf", b"%PDF-1.4 ...")],
        now=NOW,
    )
    assert wire(sent).isascii()
    # RFC 2047 encoded words in the headers (and RFC 2231 for the file name).
    assert raw_header(sent, "Subject").startswith("Re: =?utf-8?")
    assert raw_header(sent, "From").startswith("=?utf-8?")
    assert raw_header(sent, "To").startswith("=?utf-8?")
    assert "filename*=utf-8''" in wire(sent).decode()
    got = read(sent)
    assert got["Subject"] == f"Re: 我的账单有问题 [#{TOKEN_OF_THREAD}]"
    assert got["From"].addresses[0].display_name == "客服中心"
    assert got["To"].addresses[0].display_name == "李雷"
    assert got["To"].addresses[0].addr_spec == "lei@customer.example"
    body = got.get_body(("plain",))
    assert body is not None
    assert (
        body.get_content().replace("\r\n", "\n")
        == "您好！退款已经办好了。\nالمبلغ المسترد في الطريق\n"
    )
    [attached] = got.iter_attachments()
    assert isinstance(attached, EmailMessage)
    assert attached.get_filename() == "发票 十二月.pdf"
    assert attached.get_content_type() == "application/pdf"
    assert attached.get_content() == b"%PDF-1.4 ..."


def test_a_long_chinese_subject_folds_and_reads_back_whole() -> None:
    subject = "关于十二月份账单中重复扣款以及退款进度的问题" * 3
    sent = reply(
        support=SUPPORT,
        customer="lei@customer.example",
        thread=Thread(token=TOKEN_OF_THREAD, subject=subject),
        body="x",
    )
    assert all(len(line) <= 78 for line in wire(sent).decode().split("\r\n"))
    assert read(sent)["Subject"] == f"Re: {subject} [#{TOKEN_OF_THREAD}]"


@pytest.mark.parametrize(
    ("original", "subject"),
    [
        ("My bill", "Re: My bill [#T0kenAbc]"),
        ("Re: RE: Aw: My bill", "Re: My bill [#T0kenAbc]"),
        ("Re: My bill [#T0kenAbc]", "Re: My bill [#T0kenAbc]"),
        ("[#T0kenAbc] Re: My bill", "Re: My bill [#T0kenAbc]"),
        ("回复：答复: 账单", "Re: 账单 [#T0kenAbc]"),
        ("Re[2]: My bill", "Re: My bill [#T0kenAbc]"),
        ("My\r\nBcc: someone@example.net", "Re: My Bcc: someone@example.net [#T0kenAbc]"),
        ("", "Re: [#T0kenAbc]"),
    ],
)
def test_the_subject_says_re_once_and_carries_the_token_once(original: str, subject: str) -> None:
    assert reply_subject(original, "T0kenAbc") == subject


def test_references_keep_the_first_and_the_latest_each_once_and_only_message_ids() -> None:
    chain = [f"<m{n}@customer.example>" for n in range(40)]
    kept = references(
        Thread(token=TOKEN_OF_THREAD, subject="x", answering=chain[-1], references=chain[:-1])
    )
    assert len(kept) == REFERENCES_KEPT
    assert kept[0] == chain[0]
    assert kept[1:] == chain[-(REFERENCES_KEPT - 1) :]
    messy = Thread(
        token=TOKEN_OF_THREAD,
        subject="x",
        answering="<b@customer.example>",
        references=["<a@customer.example>", "not-an-id", "<a@customer.example>", "<x y@z>"],
    )
    assert references(messy) == ["<a@customer.example>", "<b@customer.example>"]
    first = Thread(token=TOKEN_OF_THREAD, subject="x", answering=None)
    message = reply(support=SUPPORT, customer="mei@customer.example", thread=first, body="x")
    assert (message["In-Reply-To"], message["References"]) == (None, None)


def test_an_acknowledgement_says_it_is_automatic_so_no_auto_responder_answers_it() -> None:
    sent = acknowledgement(
        support=SUPPORT,
        customer="mei@customer.example",
        thread=THREAD,
        body="We have your message and will answer within a day.\n",
    )
    got = read(sent)
    assert got["Auto-Submitted"] == "auto-replied"
    assert got["X-Auto-Response-Suppress"] == "All"
    assert got["In-Reply-To"] == "<m2@customer.example>"
    assert got["Reply-To"] == f"Billing support <support+{TOKEN_OF_THREAD}@example.com>"
    assert got["Subject"] == f"Re: My bill is wrong [#{TOKEN_OF_THREAD}]"


def test_reply_tokens_are_long_random_letters_and_digits() -> None:
    tokens = {reply_token() for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(TOKEN.fullmatch(token) and len(token) == 16 for token in tokens)
    assert set("".join(tokens)) > set("0123456789")  # letters too
    assert all(token == token.lower() for token in tokens)  # as an address brings it back
    with pytest.raises(ValueError, match="8 to 32 letters and digits"):
        SUPPORT.for_thread("short")
    with pytest.raises(ValueError, match="8 to 32 letters and digits"):
        reply_subject("x", "has-a-dash-in-it")


def test_what_would_break_the_headers_is_refused() -> None:
    with pytest.raises(ValueError, match="not a support address"):
        SupportAddress("support+abc@example.com")
    with pytest.raises(ValueError, match="CR or LF"):
        reply(
            support=SUPPORT,
            customer="mei@customer.example",
            customer_name="Mei\r\nBcc: someone@example.net",
            thread=THREAD,
            body="x",
        )
