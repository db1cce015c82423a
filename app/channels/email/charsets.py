"""Bytes and header text in whatever charset real mail uses, decoded without ever raising. Pure.

Real mail mislabels: GB2312 labels on GBK text (Foxmail, Outlook), Big5 with Hong Kong
characters, ISO-8859-1 on Windows-1252 text, raw 8-bit headers with no label at all. Each label
is read as the superset its senders actually write, and what still cannot be decoded becomes
U+FFFD (the replacement character), never an exception: an agent would rather see one odd
character than lose the customer's message.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re

# Labels read as the superset their senders really write (the WHATWG Encoding Standard's choice
# for the web, where the same mislabelling happens).
SUPERSETS: dict[str, str] = {
    "gb2312": "gb18030",
    "gb_2312": "gb18030",
    "gb_2312-80": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "euc-cn": "gb18030",
    "big5": "big5hkscs",
    "x-big5": "big5hkscs",
    "iso-2022-jp": "iso2022_jp_2",
    "shift_jis": "cp932",
    "x-sjis": "cp932",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "us-ascii": "utf-8",
    "ascii": "utf-8",
}

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"\s+")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_NOT_TEXT = re.compile(r"[\x00\ud800-\udfff]")


def codec_for(label: str | None) -> str | None:
    """The Python codec to read text labelled `label` with, or None for a label nobody knows."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower().split("*", 1)[0]  # RFC 2231 `charset*language`
    name = SUPERSETS.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    # `base64`, `zlib`, `rot13` are codecs too, but not of text.
    return info.name if getattr(info, "_is_text_encoding", True) else None


def decode_bytes(data: bytes, label: str | None) -> str:
    """`data` as text: by its label when the label is known, else UTF-8, else GB18030 (the
    unlabelled 8-bit text of Chinese mail clients); what does not fit becomes U+FFFD."""
    codec = codec_for(label)
    if codec is not None:
        return _safe_decode(data, codec)
    try:
        return clean(data.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    try:
        return clean(data.decode("gb18030"))
    except UnicodeDecodeError:
        return _safe_decode(data, "utf-8")


def _safe_decode(data: bytes, codec: str) -> str:
    try:
        return clean(data.decode(codec, errors="replace"))
    except (LookupError, TypeError, ValueError):  # a codec that is not what it claims
        return clean(data.decode("utf-8", errors="replace"))


def clean(text: str) -> str:
    """Text that PostgreSQL and JSON accept: no NUL, no lone surrogate."""
    return _NOT_TEXT.sub("\ufffd", text) if _NOT_TEXT.search(text) else text


def raw_header_text(value: str) -> str:
    """A raw header value as the parser keeps it, unfolded, its raw 8-bit bytes (kept by the
    parser as surrogate escapes) decoded as UTF-8 or GB18030; encoded words are left as they are."""
    value = _FOLD.sub("", value)
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        value = decode_bytes(value.encode("utf-8", errors="surrogateescape"), None)
    return clean(value).strip()


def decode_header(value: str) -> str:
    """A header's text for people: unfolded, with RFC 2047 encoded words decoded, adjacent words
    in one charset joined before decoding (clients split a multi-byte character across two)."""
    text = raw_header_text(value)
    pieces: list[str] = []
    pending: list[tuple[str, bytes]] = []  # adjacent encoded words not yet decoded
    position = 0
    for word in _ENCODED_WORD.finditer(text):
        between = text[position : word.start()]
        if not (pending and _BETWEEN_WORDS.fullmatch(between)):
            pieces.append(_flush(pending))
            pieces.append(between)
        charset, encoding, payload = word.groups()
        data = _word_bytes(encoding, payload)
        if data is None:  # not really an encoded word: keep it as written
            pieces.append(_flush(pending))
            pieces.append(word.group(0))
        elif pending and pending[-1][0] == charset.lower():
            pending[-1] = (pending[-1][0], pending[-1][1] + data)
        else:
            pending.append((charset.lower(), data))
        position = word.end()
    pieces.append(_flush(pending))
    pieces.append(text[position:])
    return "".join(pieces)


def _flush(pending: list[tuple[str, bytes]]) -> str:
    text = "".join(decode_bytes(data, charset) for charset, data in pending)
    pending.clear()
    return text


def _word_bytes(encoding: str, payload: str) -> bytes | None:
    if encoding in "bB":
        try:
            return base64.b64decode(payload + "=" * (-len(payload) % 4))
        except (binascii.Error, ValueError):
            return None
    data = payload.replace("_", " ").encode("ascii", errors="replace")
    try:
        return binascii.a2b_qp(data)
    except (binascii.Error, ValueError):
        return None
