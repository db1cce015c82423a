"""The widget's files as the app serves them (app/channels/chat/widget.py): the demo page for
the site asked for or the one named `demo`, its policy, the script. The page in a browser is
test_widget_browser.py's."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
from fastapi import FastAPI

from app.channels.chat.widget import page_policy
from app.core.db import unit_of_work
from app.core.settings import Settings
from app.demo import load_demo
from tests.channels.chat.conftest import Site


async def test_the_demo_page_shows_the_demos_site_or_says_there_is_none(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, connection: asyncpg.Connection
) -> None:
    none = await client.get("/chat/demo")
    assert none.status_code == 404
    assert "no chat site named 'demo'" in none.json()["detail"]

    async with unit_of_work(app.state.sessions) as session:
        await load_demo(session, settings)
    demo = await connection.fetchval("SELECT id FROM chat_sites WHERE name = 'demo'")
    page = await client.get("/chat/demo")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert f'data-site="{demo}"' in page.text
    assert '<script src="widget.js" defer></script>' in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'; script-src 'self'; style-src 'self';" in policy
    assert "connect-src 'self' ws://testserver wss://testserver;" in policy


async def test_a_site_asked_for_is_shown_and_an_unknown_one_refused(
    site: Site, client: httpx.AsyncClient
) -> None:
    page = await client.get("/chat/demo", params={"site": str(site.id)})
    assert page.status_code == 200
    assert f'data-site="{site.id}"' in page.text
    unknown = await client.get("/chat/demo", params={"site": str(uuid.uuid4())})
    assert unknown.status_code == 404
    assert "no chat site" in unknown.json()["detail"]


async def test_the_script_is_javascript_that_never_writes_html(
    client: httpx.AsyncClient,
) -> None:
    script = await client.get("/chat/widget.js")
    assert script.status_code == 200
    assert script.headers["content-type"] == "application/javascript"
    assert script.headers["x-content-type-options"] == "nosniff"
    for writes_html in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"):
        assert writes_html not in script.text
    style = await client.get("/chat/widget.css")
    assert style.headers["content-type"].startswith("text/css")


def test_a_host_header_cannot_widen_the_pages_policy() -> None:
    assert "wss://shop.example:8443" in page_policy("shop.example:8443")
    assert "ws://[::1]:8000" in page_policy("[::1]:8000")
    widened = page_policy("evil.example; script-src *")
    assert "script-src *" not in widened
    assert "connect-src 'self';" in widened
