"""The new text of a reply apart from the history it quotes. Pure.

Four shapes of history are recognised, the ones the mail clients our customers use write:

- an attribution line: "On Mon, 2 Mar 2026 at 10:00, Li Wei <li@example.com> wrote:" (Gmail,
  Thunderbird, Apple Mail; Gmail may wrap it over two lines), "在 2026年3月2日 10:00，李伟 写道："
  and "2026年3月2日 10:00，李伟 <li@example.com> 写道：" (Chinese clients and Gmail in Chinese);
- a separator: "-----Original Message-----" (Outlook), "-----原始邮件-----" (Outlook in
  Chinese), "------------------ 原始邮件 ------------------" (QQ Mail, Foxmail);
- Outlook's header block: a "From:" line followed by a "Sent:" or "Date:" line (or 发件人/发送时间);
- a block of ">"-quoted lines (and blank lines) that runs to the end of the message.

The history starts at the first of these. When in doubt everything stays new text: lines quoted
between the customer's own answers (bottom posting) are not split off, and a split that would
leave no new text at all is not made.
"""

from __future__ import annotations

import re

_ATTRIBUTION = re.compile(
    r"^(On\s.+\swrote:|在.+写道[:：]|\d{4}\s*年.+写道[:：])\s*$", re.IGNORECASE | re.DOTALL
)
_SEPARATOR = re.compile(r"^-{2,}\s*(Original Message|原始邮件|原始郵件)\s*-{2,}\s*$", re.IGNORECASE)
_HEADER_FROM = re.compile(r"^\*?(From|发件人|寄件者)\s*\*?\s*[:：]", re.IGNORECASE)
_HEADER_SENT = re.compile(r"^\*?(Sent|Date|发送时间|日期|寄件日期)\s*\*?\s*[:：]", re.IGNORECASE)
_LONGEST_ATTRIBUTION = 300  # characters: a longer "On ... wrote:" is a sentence, not a header


def split_quoted(text: str) -> tuple[str, str]:
    """(new text, quoted history) of a message's text; the history is "" when none is found."""
    lines = text.split("\n")
    start = _history_start(lines)
    if start is None:
        return text.strip(), ""
    new = "\n".join(lines[:start]).strip()
    if not new:
        return text.strip(), ""
    return new, "\n".join(lines[start:]).strip()


def _history_start(lines: list[str]) -> int | None:
    for index, line in enumerate(lines):
        if _starts_history(lines, index, line.strip()):
            return index
    return _trailing_quote_block(lines)


def _starts_history(lines: list[str], index: int, line: str) -> bool:
    following = lines[index + 1].strip() if index + 1 < len(lines) else ""
    if _is_attribution(line) or _SEPARATOR.match(line):
        return True
    if line.lower().startswith("on ") and _is_attribution(f"{line} {following}"):
        return True  # Gmail wraps a long attribution over two lines
    return bool(_HEADER_FROM.match(line) and _HEADER_SENT.match(following))


def _is_attribution(line: str) -> bool:
    return len(line) <= _LONGEST_ATTRIBUTION and bool(_ATTRIBUTION.match(line))


def _trailing_quote_block(lines: list[str]) -> int | None:
    """Where the ">"-quoted lines that end the message begin, if they do."""
    start = None
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index].strip()
        if line.startswith(">"):
            start = index
        elif line:
            break
    return start
