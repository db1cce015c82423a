"""An HTML body as plain text an agent can read safely. Pure.

Two libraries, each doing what it is built for: nh3 (Python's binding to the Rust sanitiser
ammonia) removes scripts, styles and every attribute that could run code, and inscriptis lays
the remaining HTML out as text (paragraphs, lists, tables), as a mail client would show it.
"""

from __future__ import annotations

import html

import nh3
from inscriptis import get_text

# Elements whose content is never text for a person: the sanitiser drops them whole.
_DROPPED_WITH_CONTENT = {"script", "style", "title", "noscript", "template", "head"}


def html_to_text(markup: str) -> str:
    """The text of `markup`, scripts and styles removed, blank runs squeezed."""
    safe = nh3.clean(markup, clean_content_tags=_DROPPED_WITH_CONTENT)
    try:
        text = get_text(safe)
    except Exception:  # lxml refuses some documents: strip the sanitised tags instead
        text = html.unescape(nh3.clean(safe, tags=set()))
    return _tidy(text)


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    tidy: list[str] = []
    for line in lines:
        if line or (tidy and tidy[-1]):  # at most one blank line in a row
            tidy.append(line)
    return "\n".join(tidy).strip()
