"""The checks a collect node may ask of what a caller typed: Luhn, and a safe pattern. Pure.

A pattern is an admin's regular expression, matched against at most 32 keys. Python's `re`
backtracks, so some patterns take exponential time on a short entry (`(\\d+)+x` on 32 digits
runs for hours) and many stacked repetitions take polynomial time of a high degree. A pattern
is refused on save unless matching it is always quick: at most three repetitions (`*`, `+`,
`?`, `{m,n}`), none inside a repeated group, no alternation inside a repeated group, no
back-references or look-arounds. `^[1-9][0-9]{7}$`, `^(86|852)[0-9]{8}$` are fine.
"""

from __future__ import annotations

import re

MAX_REPETITIONS = 3


def luhn_valid(digits: str) -> bool:
    """Whether the last digit is the Luhn check digit of the others (card and account numbers)."""
    if not digits.isdigit() or len(digits) < 2:
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def check_pattern(pattern: str) -> str:
    """`pattern`, or a ValueError saying why it is refused."""
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValueError(f"not a regular expression: {error}") from error
    problem = _slow_shape(pattern)
    if problem is not None:
        raise ValueError(problem)
    return pattern


def _slow_shape(pattern: str) -> str | None:
    """Why matching `pattern` could be slow, or None. Reads the pattern once, keeping for each
    open group whether it holds a repetition or an alternation."""
    groups: list[bool] = []
    repetitions = 0
    closed_risky = False  # the last thing read was a group holding a repetition or a `|`
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            if pattern[index + 1 : index + 2].isdigit() and pattern[index + 1] != "0":
                return "back-references (\\1) are not allowed"
            index += 2
            closed_risky = False
            continue
        if char == "[":
            index = _after_class(pattern, index)
            closed_risky = False
            continue
        if char == "(":
            if pattern.startswith("(?", index):
                if not pattern.startswith("(?:", index):
                    return "only plain and (?:...) groups are allowed (no look-arounds)"
                index += 2
            groups.append(False)
            closed_risky = False
        elif char == ")":
            risky = groups.pop() if groups else False
            if risky and groups:
                groups[-1] = True
            closed_risky = risky
        elif char in "*+?{":
            if closed_risky:
                return "a repeated group must not hold a repetition or an alternation"
            repetitions += 1
            if repetitions > MAX_REPETITIONS:
                return f"at most {MAX_REPETITIONS} repetitions (*, +, ?, {{m,n}})"
            if groups:
                groups[-1] = True
            index = _after_quantifier(pattern, index)
            closed_risky = False
            continue
        elif char == "|":
            if groups:
                groups[-1] = True
            closed_risky = False
        else:
            closed_risky = False
        index += 1
    return None


def _after_class(pattern: str, index: int) -> int:
    """The index after the character class opening at `index` (`[^]a-z\\]]`)."""
    index += 1
    if pattern.startswith("^", index):
        index += 1
    if pattern.startswith("]", index):
        index += 1
    while index < len(pattern) and pattern[index] != "]":
        index += 2 if pattern[index] == "\\" else 1
    return index + 1


def _after_quantifier(pattern: str, index: int) -> int:
    """The index after the quantifier at `index`, with its lazy `?` or possessive `+`."""
    if pattern[index] == "{":
        end = pattern.find("}", index)
        index = len(pattern) if end == -1 else end
    index += 1
    if index < len(pattern) and pattern[index] in "?+":
        index += 1
    return index
