"""Which mail opens or joins a thread and which a machine sent (never answered): the classifier
on the corpus, each header rule alone, bounces and reply tokens."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from app.channels.email.classify import (
    AUTOMATIC,
    Bounce,
    MailKind,
    bounce_of,
    classify,
    reply_token_of,
)
from app.channels.email.message import ParsedMail, parse

CORPUS = Path(__file__).parent / "corpus"
SUPPORT = ["support@example.com"]


def corpus(name: str) -> ParsedMail:
    return parse((CORPUS / name).read_bytes(), max_attachment_bytes=10 * 1024 * 1024)


def plain(*headers: str, subject: str = "My order") -> ParsedMail:
    """An ordinary customer's message with `headers` added."""
    lines = ["From: Ann <ann@example.com>", "To: support@example.com", f"Subject: {subject}"]
    raw = "\r\n".join([*lines, *headers, "", "Where is my order?", ""]).encode()
    return parse(raw, max_attachment_bytes=1000)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("foxmail_gbk_complaint.eml", MailKind.new_thread),
        ("outlook_big5_folded_subject.eml", MailKind.new_thread),
        ("thunderbird_iso2022jp.eml", MailKind.new_thread),
        ("web_form_html_only.eml", MailKind.new_thread),
        ("no_message_id.eml", MailKind.new_thread),
        ("broken_date.eml", MailKind.new_thread),
        ("outlook_original_message.eml", MailKind.new_thread),
        ("exchange_out_of_office.eml", MailKind.auto_reply),  # by its subject alone
        ("netease_auto_reply.eml", MailKind.auto_reply),  # 自动回复, by its subject alone
        ("postfix_bounce.eml", MailKind.bounce),  # not auto_reply, though Auto-Submitted
        ("postfix_delay.eml", MailKind.bounce),
        ("mailman_list.eml", MailKind.list_mail),
    ],
)
def test_the_corpus_unmatched(name: str, kind: MailKind) -> None:
    assert classify(corpus(name), thread_found=False) == kind


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("gmail_reply.eml", MailKind.reply),
        ("qq_mail_reply.eml", MailKind.reply),
        ("exchange_out_of_office.eml", MailKind.auto_reply),  # a thread found changes nothing
        ("postfix_bounce.eml", MailKind.bounce),
        ("mailman_list.eml", MailKind.list_mail),
    ],
)
def test_the_corpus_matched_to_a_thread(name: str, kind: MailKind) -> None:
    assert classify(corpus(name), thread_found=True) == kind


def test_an_ordinary_message_is_a_new_thread_or_a_reply() -> None:
    assert classify(plain(), thread_found=False) == MailKind.new_thread
    assert classify(plain(), thread_found=True) == MailKind.reply
    assert classify(plain("Auto-Submitted: no"), thread_found=False) == MailKind.new_thread
    assert classify(plain("Precedence: first-class"), thread_found=False) == MailKind.new_thread
    assert classify(plain("Return-Path: <ann@example.com>"), thread_found=False) == (
        MailKind.new_thread
    )


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: auto-replied",
        "Auto-Submitted: auto-generated",
        "Auto-Submitted: auto-notified; owner-email=x@example.com",
        "Precedence: bulk",
        "Precedence: junk",
        "X-Auto-Response-Suppress: All",
        "X-Autoreply: yes",
        "X-Autorespond: Out of office",
        "Return-Path: <>",
    ],
)
def test_each_automatic_header_alone_makes_an_auto_reply(header: str) -> None:
    assert classify(plain(header), thread_found=True) == MailKind.auto_reply


@pytest.mark.parametrize(
    "header",
    [
        "List-Id: <users.lists.example.net>",
        "List-Unsubscribe: <mailto:leave@lists.example.net>",
        "List-Post: <mailto:users@lists.example.net>",
        "Precedence: list",
    ],
)
def test_each_list_header_alone_makes_list_mail(header: str) -> None:
    assert classify(plain(header), thread_found=True) == MailKind.list_mail


@pytest.mark.parametrize(
    "subject",
    [
        "Automatic reply: My order",
        "Out of Office: My order",
        "Out of the office: back Monday",
        "Auto: My order",
        "AutoReply: My order",
        "Auto-Reply: My order",
        "自动回复: 退款",
        "自动回复：退款",
        "自動回覆：退款",
        "自动答复: 退款",
    ],
)
def test_an_out_of_office_subject_alone_makes_an_auto_reply(subject: str) -> None:
    assert classify(plain(subject=subject), thread_found=True) == MailKind.auto_reply


@pytest.mark.parametrize(
    "subject",
    ["Re: Automatic reply settings are broken", "Automobile insurance", "Office hours?"],
)
def test_a_subject_that_merely_mentions_it_is_not_an_auto_reply(subject: str) -> None:
    assert classify(plain(subject=subject), thread_found=False) == MailKind.new_thread


def test_bounces_without_a_delivery_report() -> None:
    exim = plain("X-Failed-Recipients: Gone@Example.org")
    assert classify(exim, thread_found=True) == MailKind.bounce
    assert bounce_of(exim) == Bounce("gone@example.org", permanent=True, status="")
    daemon = parse(
        b"From: MAILER-DAEMON@mx.example.com\r\nReturn-Path: <>\r\nSubject: failure\r\n\r\nx",
        max_attachment_bytes=0,
    )
    assert classify(daemon, thread_found=False) == MailKind.bounce


def test_every_automatic_kind_is_in_automatic() -> None:
    assert {MailKind.auto_reply, MailKind.bounce, MailKind.list_mail} == AUTOMATIC


def test_a_permanent_bounce_names_the_recipient_and_its_status() -> None:
    assert bounce_of(corpus("postfix_bounce.eml")) == Bounce(
        "nobody@example.org", permanent=True, status="5.1.1"
    )


def test_a_delay_is_a_bounce_that_is_not_permanent() -> None:
    assert bounce_of(corpus("postfix_delay.eml")) == Bounce(
        "nobody@example.org", permanent=False, status="4.4.1"
    )


def test_a_failure_wins_over_a_delay_in_one_report() -> None:
    mail = corpus("postfix_delay.eml")
    failed = {"final-recipient": "rfc822; b@example.org", "action": "failed", "status": "5.2.2"}
    delivered = {"final-recipient": "rfc822; c@example.org", "action": "delivered"}
    with_failure = replace(mail, delivery_status=(*mail.delivery_status, delivered, failed))
    assert bounce_of(with_failure) == Bounce("b@example.org", permanent=True, status="5.2.2")


def test_ordinary_mail_and_auto_replies_are_no_bounce() -> None:
    assert bounce_of(plain()) is None
    assert bounce_of(corpus("exchange_out_of_office.eml")) is None


def test_the_reply_token_in_the_plus_address() -> None:
    assert reply_token_of(corpus("gmail_reply.eml"), SUPPORT) == "k3j9x2m4q8"


def test_the_reply_token_in_the_subject_lower_cased_as_addresses_are() -> None:
    assert reply_token_of(corpus("qq_mail_reply.eml"), SUPPORT) == "q7w8e9r0t1"


@pytest.mark.parametrize(
    ("to", "subject"),
    [
        ("support+short@example.com", "Hi"),  # under 8 characters
        ("support+k3j9x2m4q8@other.example", "Hi"),  # not a support address
        ("sales+k3j9x2m4q8@example.com", "Hi"),
        ("support+k3j9-x2m4q8@example.com", "Hi"),  # not [A-Za-z0-9]
        ("support@example.com", "[#abc] Hi"),
        ("support@example.com", "#k3j9x2m4q8 Hi"),  # not in [#...]
        ("support@example.com", f"[#{'a' * 33}] Hi"),  # over 32
    ],
)
def test_no_reply_token(to: str, subject: str) -> None:
    raw = f"From: ann@example.com\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nx".encode()
    assert reply_token_of(parse(raw, max_attachment_bytes=0), SUPPORT) is None


def test_support_addresses_are_compared_without_case() -> None:
    raw = b"From: ann@example.com\r\nTo: Support+AbCd1234@EXAMPLE.com\r\n\r\nx"
    mail = parse(raw, max_attachment_bytes=0)
    assert reply_token_of(mail, ["Support@Example.COM"]) == "abcd1234"
