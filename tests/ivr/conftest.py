"""What the telephony tests share: every log line the process writes, rendered as in production."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from app.core.logging import configure_logging


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The rendered log lines (ours and the libraries', at DEBUG) written during the test:
    the very formatter, redaction included, that `serve` writes to stderr."""
    root = logging.getLogger()
    level = root.level
    configure_logging("DEBUG")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(root.handlers[0].formatter)
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
