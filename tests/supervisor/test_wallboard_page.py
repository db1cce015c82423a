"""The wallboard's files as the app serves them (app/supervisor/wallboard.py): the page, its
policy and headers, the script and the style, and that nothing in them reaches past the server.
The page in a browser is test_wallboard_browser.py's."""

from __future__ import annotations

import re
from importlib import resources

import httpx
import pytest

from app.supervisor.wallboard import page_policy

FILES = resources.files("app.supervisor") / "wallboard"
NAMES = ("wallboard.html", "wallboard.js", "wallboard.css")
# The one URL in the files that names another host, and it is no address: the namespace an SVG
# element is created in (document.createElementNS), which a browser never fetches.
SVG_NAMESPACE = "http://www.w3.org/2000/svg"
# What could make a browser fetch from elsewhere: an absolute or scheme-relative URL (in an
# attribute or a string), a CSS import, font face or url() (a stylesheet's only way to fetch).
REACHES_OUT = re.compile(r"[a-z][a-z0-9+.-]*://|[\"'`=]\s*//|@import|@font-face", re.IGNORECASE)
CSS_FETCHES = re.compile(r"url\(", re.IGNORECASE)


async def test_the_page_is_served_with_a_policy_that_allows_this_server_only(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/wallboard")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="wallboard.js" defer></script>' in page.text
    assert '<link rel="stylesheet" href="wallboard.css">' in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'; script-src 'self'; style-src 'self';" in policy
    assert "connect-src 'self' ws://testserver wss://testserver;" in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "/wallboard" not in (await client.get("/openapi.json")).text


async def test_the_script_and_style_are_served_and_the_script_never_writes_html(
    client: httpx.AsyncClient,
) -> None:
    script = await client.get("/wallboard.js")
    assert script.status_code == 200
    assert script.headers["content-type"] == "application/javascript"
    assert script.headers["x-content-type-options"] == "nosniff"
    # A queue's name and a complaint's reference are text the center's users wrote.
    for writes_html in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"):
        assert writes_html not in script.text
    # The token stays in the tab: never in localStorage, never in a URL.
    assert "localStorage" not in script.text
    assert "token=" not in script.text
    style = await client.get("/wallboard.css")
    assert style.status_code == 200
    assert style.headers["content-type"].startswith("text/css")


@pytest.mark.parametrize("name", NAMES)
def test_no_file_of_the_page_reaches_past_the_server(name: str) -> None:
    """A wallboard on a screen in a contact center may have no way out to the internet: no
    CDN, no external font, no image from elsewhere."""
    text = (FILES / name).read_text(encoding="utf-8").replace(SVG_NAMESPACE, "")
    assert REACHES_OUT.findall(text) == []
    if name.endswith(".css"):
        assert CSS_FETCHES.findall(text) == []


def test_the_pattern_finds_what_would_reach_out() -> None:
    for reaching in (
        '<script src="https://cdn.example/x.js">',
        "<link href='//fonts.example/css'>",
        "@import 'other.css';",
        "@font-face { font-family: X; }",
        'new WebSocket("wss://elsewhere.example/ws")',
        'fetch("//elsewhere.example/v1/auth/login")',
    ):
        assert REACHES_OUT.search(reaching), reaching
    assert CSS_FETCHES.search("background: URL(/x.png)")


def test_a_host_header_cannot_widen_the_pages_policy() -> None:
    assert "wss://board.example:8443" in page_policy("board.example:8443")
    widened = page_policy("evil.example; script-src *")
    assert "script-src *" not in widened
    assert "connect-src 'self';" in widened
