"""The chat widget, served by the app itself: `/chat/demo`, a page a person opens to try the web
chat, and the script and style it loads (plain files in app/channels/chat/widget/, no build
step, nothing from a CDN). The script speaks docs/chat-protocol.md to `/v1/chat/ws`.

Pages, not API: outside the OpenAPI document, and open to anyone (the socket checks the page's
origin against the site's, as it does for every page that embeds the widget).
"""

from __future__ import annotations

import html
import uuid
from importlib import resources
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.core import pg
from app.core.errors import NotFound
from app.core.pages import FILE_HEADERS, socket_sources

router = APIRouter(tags=["chat"], include_in_schema=False)

DEMO_SITE = "demo"  # the site app/demo.py makes, shown when the page names none
_FILES = resources.files("app.channels.chat") / "widget"
PAGE = (_FILES / "demo.html").read_text(encoding="utf-8")
SCRIPT = (_FILES / "widget.js").read_bytes()
STYLE = (_FILES / "widget.css").read_bytes()


@router.get("/chat/demo", response_class=HTMLResponse)
async def demo_page(
    request: Request,
    site: Annotated[
        uuid.UUID | None, Query(description="A chat site's id; without it, the site `demo`")
    ] = None,
) -> HTMLResponse:
    """The widget on a page of its own, for the site asked for or the demo's."""
    async with request.app.state.pg.acquire(timeout=pg.ACQUIRE_TIMEOUT) as connection:
        site_id = await _site_shown(connection, site)
    page = PAGE.replace("{site_id}", html.escape(str(site_id)))
    headers = {**FILE_HEADERS, "Content-Security-Policy": page_policy(request.headers.get("host"))}
    return HTMLResponse(page, headers=headers)


@router.get("/chat/widget.js")
async def widget_script() -> Response:
    return Response(SCRIPT, media_type="application/javascript", headers=FILE_HEADERS)


@router.get("/chat/widget.css")
async def widget_style() -> Response:
    return Response(STYLE, media_type="text/css", headers=FILE_HEADERS)


async def _site_shown(connection: asyncpg.Connection, site: uuid.UUID | None) -> uuid.UUID:
    if site is None:
        found = await connection.fetchval("SELECT id FROM chat_sites WHERE name = $1", DEMO_SITE)
        if found is None:
            raise NotFound(
                f"no chat site named {DEMO_SITE!r}: make one (POST /v1/chat/sites), or open"
                " /chat/demo?site=<a site's id>"
            )
        return uuid.UUID(str(found))
    if await connection.fetchval("SELECT id FROM chat_sites WHERE id = $1", site) is None:
        raise NotFound(f"no chat site {site}: GET /v1/chat/sites lists them")
    return site


def page_policy(host: str | None) -> str:
    """The page's Content-Security-Policy: scripts and styles from this server only (no inline
    script, so text an agent writes can never run), and a socket to this server only."""
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        f"connect-src {socket_sources(host)}; base-uri 'none'; form-action 'none'"
    )
