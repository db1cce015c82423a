"""What an agent sees of real-shaped mail (tests/channels/email/corpus, made by make_corpus.py):
subject, sender, text, quoted history, attachments, and what was dropped and why."""

from __future__ import annotations

import base64
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.channels.email.charsets import decode_bytes, decode_header
from app.channels.email.message import ParsedMail, Unparseable, parse
from app.channels.email.quoting import split_quoted

CORPUS = Path(__file__).parent / "corpus"
BUDGET = 10 * 1024 * 1024


def corpus(name: str, *, budget: int = BUDGET) -> ParsedMail:
    return parse((CORPUS / name).read_bytes(), max_attachment_bytes=budget)


def test_a_gbk_complaint_from_foxmail_reads_in_chinese_with_its_attachments_named() -> None:
    mail = corpus("foxmail_gbk_complaint.eml")
    assert mail.subject == "投诉：账单多扣款（王喆）"  # 喆 is GBK, labelled GB2312
    assert (mail.sender, mail.sender_name) == ("wangzhe@163.com", "王喆")
    assert mail.text.startswith("你好，我是王喆。\n上个月的账单多扣了我两百元")
    assert not mail.from_html  # the text/plain alternative is preferred to the HTML one
    assert [(a.filename, a.content_type) for a in mail.attachments] == [
        ("发票-王喆.pdf", "application/pdf"),  # RFC 2231, in GBK
        ("截图.jpg", "image/jpeg"),  # RFC 2047 inside quotes, as Foxmail writes it
    ]
    assert mail.attachments[0].data.startswith(b"%PDF-1.4")
    assert mail.attachments[0].size == len(mail.attachments[0].data)
    assert mail.dropped == ()
    assert mail.message_id == "202603030915015462315@163.com"
    assert mail.date == datetime(2026, 3, 3, 1, 15, 2, tzinfo=UTC)


def test_a_big5_subject_folded_over_lines_and_cut_mid_character_reads_whole() -> None:
    mail = corpus("outlook_big5_folded_subject.eml")
    assert mail.subject == "退款申請已經兩週未處理，請盡快回覆"
    assert mail.sender_name == "陳先生"
    assert mail.text == "您好：\n我在二月十日申請退款，至今沒有回覆。\n陳先生"


def test_iso_2022_jp_from_thunderbird() -> None:
    mail = corpus("thunderbird_iso2022jp.eml")
    assert mail.subject == "商品が届きません"
    assert mail.sender_name == "山田太郎"
    assert "注文番号 12345 の商品がまだ届いていません。" in mail.text
    assert mail.date is not None
    assert mail.date.utcoffset() == timedelta(hours=9)


def test_html_only_mail_reaches_the_agent_as_text_without_scripts_or_styles() -> None:
    mail = corpus("web_form_html_only.eml")
    assert mail.from_html
    assert mail.text == "New message\n\nMy parcel never arrived.\n\nOrder A-1001, please help."
    for never in ("script", "alert", "document", "color", "<", "Contact form"):
        assert never not in mail.text  # nor the <title>
    assert mail.reply_to == "maria@example.it"  # where the form's customer is


def test_a_gmail_reply_keeps_its_thread_ids_and_splits_off_the_quoted_history() -> None:
    mail = corpus("gmail_reply.eml")
    assert mail.in_reply_to == "cc-0002.k3j9x2m4q8@example.com"
    assert mail.references == ("cc-0001.k3j9x2m4q8@example.com", "cc-0002.k3j9x2m4q8@example.com")
    assert mail.text == "Thanks, the refund arrived today.\n\nBest,\nLi Wei"
    assert mail.quoted.startswith("On Mon, Mar 2, 2026 at 4:05 PM Example Support")
    assert "> We have sent the refund." in mail.quoted
    assert mail.recipients == ("support+k3j9x2m4q8@example.com",)


def test_a_qq_mail_reply_splits_at_its_original_message_separator() -> None:
    mail = corpus("qq_mail_reply.eml")
    assert (mail.sender, mail.sender_name) == ("12345678@qq.com", "张三")
    assert mail.subject == "回复：[#Q7w8e9r0t1] 退款"
    assert mail.text == "好的，谢谢你们的处理。"
    assert mail.quoted.startswith("------------------ 原始邮件 ------------------")
    assert mail.quoted.endswith("您好，退款已经处理。")


def test_an_outlook_reply_in_windows_1252_splits_at_original_message() -> None:
    mail = corpus("outlook_original_message.eml")
    assert mail.sender_name == "José García"
    assert mail.sender == "jose@example.es"  # lower-cased
    assert mail.recipients == ("support@example.com", "boss@example.es")  # To and Cc
    assert mail.text == "Hi,\n\nI still can’t log in – the reset link expired.\n\nRegards,\nJosé"
    assert mail.quoted.startswith("-----Original Message-----\nFrom: Example Support")


def test_a_message_without_message_id_still_parses_and_has_a_content_key() -> None:
    raw = (CORPUS / "no_message_id.eml").read_bytes()
    mail = parse(raw, max_attachment_bytes=BUDGET)
    assert mail.message_id is None
    assert mail.text == "Please call me back."
    assert len(mail.content_key) == 64
    assert mail.content_key == parse(raw, max_attachment_bytes=BUDGET).content_key
    assert mail.content_key != parse(raw + b"x", max_attachment_bytes=BUDGET).content_key


def test_a_broken_date_is_none_and_the_message_still_parses() -> None:
    mail = corpus("broken_date.eml")
    assert mail.date is None
    assert mail.subject == "Broken date"
    assert mail.text == "The date header is nonsense."


def test_an_attachment_over_the_budget_is_dropped_and_said_so_and_the_rest_kept() -> None:
    mail = corpus("oversize_attachment.eml", budget=20_000)
    assert [a.filename for a in mail.attachments] == ["photo.jpg", "note.txt"]
    assert mail.dropped == ("report.pdf (39.1 KB): over the 19.5 KB a message may carry",)
    assert mail.text == "Photos and the report attached."
    everything = corpus("oversize_attachment.eml", budget=BUDGET)
    assert [a.filename for a in everything.attachments] == ["photo.jpg", "report.pdf", "note.txt"]


def test_the_budget_counts_the_attachments_together_in_order() -> None:
    """Each of the two photos fits alone; the second does not fit after the first."""
    photo = base64.b64encode(b"p" * 600).decode()
    raw = "\r\n".join(
        [
            "From: a@example.com",
            'Content-Type: multipart/mixed; boundary="b"',
            "",
            "--b",
            "Content-Type: text/plain",
            "",
            "two photos",
            *[
                f"--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n"
                f"Content-Disposition: attachment; filename={name}\r\n\r\n{photo}"
                for name in ("one.png", "two.png")
            ],
            "--b--",
            "",
        ]
    ).encode()
    mail = parse(raw, max_attachment_bytes=1000)
    assert [a.filename for a in mail.attachments] == ["one.png"]
    assert mail.dropped == ("two.png (600 bytes): over the 1000 bytes a message may carry",)


def test_wrong_and_unknown_charsets_give_replacement_characters_not_errors() -> None:
    mail = corpus("wrong_charsets.eml")
    assert mail.subject == "caf\ufffd mislabelled"
    gbk_read_as_utf_8, unknown = mail.text.split("\n\n")
    assert gbk_read_as_utf_8.startswith("\ufffd")
    assert gbk_read_as_utf_8.endswith(" please")
    assert unknown == "caf\ufffd \ufffd\ufffd"  # read as UTF-8


@pytest.mark.parametrize("name", ["not_mail_http.eml", "not_mail_png.eml"])
def test_bytes_that_are_not_mail_are_unparseable_with_a_reason(name: str) -> None:
    with pytest.raises(Unparseable, match="not an email message"):
        corpus(name)


@pytest.mark.parametrize("raw", [b"", b"  \r\n\r\n", b"X-Custom: 1\r\n\r\nbody"])
def test_empty_or_headerless_bytes_are_unparseable(raw: bytes) -> None:
    with pytest.raises(Unparseable):
        parse(raw, max_attachment_bytes=BUDGET)


def nested(depth: int) -> bytes:
    """A message whose text sits `depth` multiparts deep."""
    raw = b'From: a@example.com\r\nContent-Type: multipart/mixed; boundary="b0"\r\n\r\n'
    for level in range(1, depth):
        raw += b'--b%d\r\nContent-Type: multipart/mixed; boundary="b%d"\r\n\r\n' % (
            level - 1,
            level,
        )
    return raw + b"--b%d\r\nContent-Type: text/plain\r\n\r\ndeep\r\n" % (depth - 1)


def test_deep_nesting_is_read_or_refused_with_a_reason_never_a_crash() -> None:
    assert parse(nested(300), max_attachment_bytes=BUDGET).text == "deep"
    with pytest.raises(Unparseable, match="nested too deeply"):
        parse(nested(5000), max_attachment_bytes=BUDGET)


def test_raw_8_bit_headers_are_read_as_utf_8_or_else_gb18030() -> None:
    """As Chinese clients send them, without encoded words: RFC 6532's UTF-8, or GBK."""
    raw = b"From: " + "张三".encode() + b" <x@example.com>\r\nSubject: "
    raw += "账单".encode("gbk") + b"\r\n\r\nhi\r\n"
    mail = parse(raw, max_attachment_bytes=BUDGET)
    assert (mail.sender_name, mail.subject) == ("张三", "账单")
    assert decode_bytes("账单".encode("gbk"), None) == "账单"


def test_a_nul_never_reaches_the_text() -> None:
    raw = b"From: x@example.com\r\nSubject: a\x00b\r\n\r\nhi\x00there\r\n"
    mail = parse(raw, max_attachment_bytes=BUDGET)
    assert "\x00" not in mail.subject + mail.text


def test_a_minus_zero_zone_date_is_utc() -> None:
    raw = b"From: x@example.com\r\nDate: Tue, 3 Mar 2026 10:00:00 -0000\r\n\r\nhi\r\n"
    assert parse(raw, max_attachment_bytes=BUDGET).date == datetime(2026, 3, 3, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "text"),
    [
        ("=?gb2312?B?1cXI/Q==?=", "张三"),
        ("=?utf-8?Q?caf=C3=A9?= =?utf-8?Q?_au_lait?=", "café au lait"),  # space between dropped
        ("Re: =?utf-8?B?5L2g?=\r\n =?utf-8?B?5aW9?= ok", "Re: 你好 ok"),
        ("=?utf-8?B?not base64!?=", "=?utf-8?B?not base64!?="),  # not a word: kept as written
        ("plain text", "plain text"),
    ],
)
def test_encoded_words(header: str, text: str) -> None:
    assert decode_header(header) == text


@pytest.mark.parametrize(
    ("text", "new", "quoted"),
    [
        ("Yes.\n\nOn Mon, 2 Mar 2026, Ann wrote:\n> old", "Yes.", "On Mon, 2 Mar 2026, Ann wrote:"),
        (
            "好的\n\n在 2026年3月2日 16:05，客服 写道：\n旧",
            "好的",
            "在 2026年3月2日 16:05，客服 写道：",
        ),
        ("好的\n2026年3月2日 16:05，客服 <s@e.com> 写道：\n> 旧", "好的", "2026年3月2日 16:05"),
        ("Ok\n-----Original Message-----\nFrom: x", "Ok", "-----Original Message-----"),
        ("Ok\n________________________________\nFrom: S\nSent: Mon\n", "Ok\n___", "From: S"),
        ("Ok\n发件人: 客服\n发送时间: 2026年3月2日\n", "Ok", "发件人: 客服"),
        ("Thanks\n\n> old line\n>\n> more\n", "Thanks", "> old line"),
    ],
)
def test_quoted_history_is_split_from_the_new_text(text: str, new: str, quoted: str) -> None:
    got_new, got_quoted = split_quoted(text)
    assert got_new.startswith(new)
    assert got_quoted.startswith(quoted)


@pytest.mark.parametrize(
    "text",
    [
        "> you said this\nand I answer that\n> and this\nand that",  # bottom posting
        "> only a quote",  # nothing new: keep it all
        "On Monday I wrote: the order never came",  # not an attribution line
        "From: me\nPlease help",  # no Sent: after From:
    ],
)
def test_when_in_doubt_everything_stays_new_text(text: str) -> None:
    assert split_quoted(text) == (text, "")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_parse_raises_nothing_but_unparseable_on_any_bytes(raw: bytes) -> None:
    with contextlib.suppress(Unparseable):
        parse(raw, max_attachment_bytes=1000)


MIME_PIECES = [
    b"From: =?gbk?B?1cXI/Q==?= <a@b.c>\r\n",
    b"Subject: =?utf-8?Q?=E4=BD?= =?big5?B?\r\n",
    b"Date: Mon, 99 Foo 2026 25:61:61 +9999\r\n",
    b"Content-Type: multipart/mixed; boundary=x\r\n",
    b"Content-Type: text/plain; charset=x-nothing\r\n",
    b"Content-Type: message/delivery-status\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Disposition: attachment; filename*0*=gbk''%D5; filename*1=\"x\r\n",
    b"References: <a> <b\r\n",
    b"\r\n",
    b"--x\r\n",
    b"--x--\r\n",
    b"Final-Recipient: rfc822; x\r\n",
    b"=?=\r\n",
    b"\xff\xfe\x00\r\n",
    b"<html><script>x</script>\r\n",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(MIME_PIECES), max_size=30))
def test_parse_raises_nothing_but_unparseable_on_mime_shaped_bytes(pieces: list[bytes]) -> None:
    try:
        mail = parse(b"".join(pieces), max_attachment_bytes=1000)
    except Unparseable:
        return
    everything = [mail.subject, mail.text, mail.quoted, mail.sender_name]
    everything += [a.filename for a in mail.attachments]
    for text in everything:
        text.encode("utf-8")  # no lone surrogate: PostgreSQL and JSON take it
        assert "\x00" not in text
