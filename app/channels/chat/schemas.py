"""The chat sites' admin API in and out (`/v1/chat/sites`): bounds as the table's checks."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.channels.chat.sites import normalized_origin
from app.core.inputs import REFUSES_NUL

# A host name's labels (letters, digits, hyphens), an IPv4 address, or an IPv6 one in brackets.
HOST = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*")
IPV6 = re.compile(r"\[[0-9a-f:.]+\]")
# host[:port], the host perhaps an IPv6 address in brackets (which holds colons of its own).
NETLOC = re.compile(r"(?P<host>\[[^\]]*\]|[^:]*)(?::(?P<port>[^:]*))?")
# The port a browser leaves out of an `Origin` it sends, by scheme.
DEFAULT_PORTS = {"http": 80, "https": 443}
SHAPE = "an origin is scheme://host[:port], like https://shop.example.com"
# http(s):// (8) + a host name (253) + :65535 (6), with room to spare.
ORIGIN_LIMIT = 300
MAX_ORIGINS = 20


def as_origin(raw: str) -> str:
    """An origin as the browser's `Origin` header writes it, so that `Site.allows` matches it
    exactly: lower case, no trailing slash, no default port, the host in ASCII (punycode)."""
    origin = normalized_origin(raw)
    scheme, _, rest = origin.partition("://")
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"{raw!r}: {SHAPE}, its scheme http or https")
    if any(mark in rest for mark in "/?#"):
        raise ValueError(f"{raw!r}: {SHAPE}, with no path, query or fragment")
    if "@" in rest:
        raise ValueError(f"{raw!r}: {SHAPE}, with no user or password")
    found = NETLOC.fullmatch(rest)
    if found is None:
        raise ValueError(f"{raw!r}: {SHAPE}")
    host = _host(raw, found["host"])
    port = _port(raw, found["port"])
    return (
        f"{scheme}://{host}"
        if port in (None, DEFAULT_PORTS[scheme])
        else f"{scheme}://{host}:{port}"
    )


def _port(raw: str, port: str | None) -> int | None:
    if port is None:
        return None
    if not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{raw!r}: the port must be a number from 1 to 65535")
    return int(port)


def _host(raw: str, host: str) -> str:
    if IPV6.fullmatch(host):
        return host
    if "*" in host:
        raise ValueError(f"{raw!r}: name each origin in full: wildcards are not matched")
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"{raw!r}: {host!r} is not a host name") from None
    if not HOST.fullmatch(ascii_host) or len(ascii_host) > 253:
        raise ValueError(f"{raw!r}: {host!r} is not a host name")
    return ascii_host


def _distinct(origins: list[str]) -> list[str]:
    """Each origin once, in the order given (two spellings of one are one)."""
    return list(dict.fromkeys(origins))


Origin = Annotated[
    str, StringConstraints(max_length=ORIGIN_LIMIT), AfterValidator(as_origin), REFUSES_NUL
]
Origins = Annotated[
    list[Origin],
    Field(
        min_length=1,
        max_length=MAX_ORIGINS,
        description="The page origins the widget may be opened from (scheme://host[:port]);"
        " a socket whose Origin is none of them is refused",
    ),
    AfterValidator(_distinct),
]
SiteName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), REFUSES_NUL
]
# The bounds of the table's CHECK constraints (migration 0025).
ResumeSeconds = Annotated[
    int,
    Field(ge=10, le=3600, description="A customer back within this long resumes their chat"),
]
QuietCloseSeconds = Annotated[
    int,
    Field(ge=60, le=86400, description="A held chat nobody writes in for this long is closed"),
]
MessagesPerMinute = Annotated[
    int, Field(ge=1, le=600, description="Lines one visitor may send a minute")
]
ChatsPerMinute = Annotated[int, Field(ge=1, le=60, description="Chats one visitor may open")]


class ChatSiteCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "shop",
                    "queue_id": "7d1f0c2e-9a4b-4a55-8c39-0f4d2d6e1a11",
                    "allowed_origins": ["https://shop.example.com"],
                }
            ]
        }
    )

    name: SiteName
    queue_id: uuid.UUID
    allowed_origins: Origins
    resume_seconds: ResumeSeconds = 120
    quiet_close_seconds: QuietCloseSeconds = 600
    messages_per_minute: MessagesPerMinute = 20
    chats_per_minute: ChatsPerMinute = 3


class ChatSiteUpdate(BaseModel):
    """What a PATCH changes; a field left out (or null) stays as it is."""

    name: SiteName | None = None
    queue_id: uuid.UUID | None = None
    allowed_origins: Origins | None = None
    resume_seconds: ResumeSeconds | None = None
    quiet_close_seconds: QuietCloseSeconds | None = None
    messages_per_minute: MessagesPerMinute | None = None
    chats_per_minute: ChatsPerMinute | None = None


class ChatSiteOut(BaseModel):
    """A site as it is listed and read: never its secret."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    queue_id: uuid.UUID
    allowed_origins: list[str]
    resume_seconds: int
    quiet_close_seconds: int
    messages_per_minute: int
    chats_per_minute: int
    created_at: datetime
    updated_at: datetime


class ChatSiteWithSecret(ChatSiteOut):
    """A site just made, or whose secret was just rotated: the one answer with its secret."""

    identity_secret: str = Field(
        description="The key your server signs logged-in customers with (hex HMAC-SHA256 of "
        "their id): shown this once; keep it on your server, never in a page."
    )
