"""The supervisors' wallboard, served by the app itself: `/wallboard`, a page a supervisor opens
in a browser, and the script and style it loads (plain files in app/supervisor/wallboard/, no
build step, nothing from a CDN or any other server). The script logs in, asks for a ticket and
reads the supervisor socket (`/v1/supervisor/ws`); docs/supervisors.md, "The wallboard".

Pages, not API: outside the OpenAPI document, and open to anyone, as they hold nothing: what
the board shows comes over the socket, which only a supervisor's or an admin's ticket opens.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.core.pages import FILE_HEADERS, socket_sources

router = APIRouter(tags=["supervisor"], include_in_schema=False)

_FILES = resources.files("app.supervisor") / "wallboard"
PAGE = (_FILES / "wallboard.html").read_text(encoding="utf-8")
SCRIPT = (_FILES / "wallboard.js").read_bytes()
STYLE = (_FILES / "wallboard.css").read_bytes()

# The page asks for a password: no referrer sent from it (and its policy keeps it out of any
# other site's frame, where it could be clickjacked).
PAGE_HEADERS = {**FILE_HEADERS, "Referrer-Policy": "no-referrer"}


@router.get("/wallboard", response_class=HTMLResponse)
async def wallboard_page(request: Request) -> HTMLResponse:
    """The wallboard, which signs a supervisor in and fills itself from the socket."""
    headers = {**PAGE_HEADERS, "Content-Security-Policy": page_policy(request.headers.get("host"))}
    return HTMLResponse(PAGE, headers=headers)


@router.get("/wallboard.js")
async def wallboard_script() -> Response:
    return Response(SCRIPT, media_type="application/javascript", headers=FILE_HEADERS)


@router.get("/wallboard.css")
async def wallboard_style() -> Response:
    return Response(STYLE, media_type="text/css", headers=FILE_HEADERS)


def page_policy(host: str | None) -> str:
    """The page's Content-Security-Policy: script and style from this server only (no inline
    script: a queue's name or a complaint's reference can never run), requests and the socket
    to this server only, no form posted anywhere (the script sends the login), and no frame."""
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        f"connect-src {socket_sources(host)}; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )
