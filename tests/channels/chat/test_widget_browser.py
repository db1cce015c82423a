"""The chat widget's page in a real browser (headless chromium: tests/browser.py) against the app
served on a loopback port, with an agent on a real desk: what a visitor sees and does.

Selenium's calls block, so they run in threads (`Page`) while the app serves in the test's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI
from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser import Page
from tests.channels.chat.conftest import Site, chat_agent, make_site
from tests.desk.conftest import Desk
from tests.support import free_port

Headers = dict[str, str]

LINES = "#cc-transcript li"


async def widget(browser: WebDriver, served: str, site: Site) -> Page:
    """The demo page of the site, open and past its welcome."""
    page = Page(browser)
    await page.open(f"{served}/chat/demo?site={site.id}")
    await page.until_shown("#cc-status", "Connected")
    return page


async def write(page: Page, text: str) -> None:
    await page.type_into("#cc-text", text)
    await page.click("#cc-send")


async def until_receipt(desk: Desk, message_id: str, *, read: bool) -> dict[str, Any]:
    """The desk's receipt of the agent's line `message_id`, delivered or read."""
    while True:
        receipt = await desk.next("receipt")
        if message_id in receipt["message_ids"] and receipt["read"] is read:
            return receipt


async def test_a_visitor_writes_and_sees_the_agents_answer_as_text_with_receipts(
    site: Site, client: httpx.AsyncClient, admin: Headers, served: str, browser: WebDriver
) -> None:
    _, desk = await chat_agent(client, admin, served, "mei")
    page = await widget(browser, served, site)
    await write(page, "Hello, my invoice is wrong")

    # The agent is offered the chat with the visitor's line in its screen pop, and takes it.
    offer = await desk.next("offer")
    [shown] = offer["screen_pop"]["messages"]
    assert shown["text"] == "Hello, my invoice is wrong"
    chat_id = offer["interaction_id"]
    await desk.send(type="accept", offer_id=offer["offer_id"])
    assert (await desk.next("ack"))["of"] == "accept"
    await page.until_shown("#cc-agent", "You are chatting with Mei")

    # The agent reads the visitor's line: it shows as read in the page.
    await desk.send(type="read", interaction_id=chat_id, message_id=shown["id"])
    assert (await desk.next("ack"))["of"] == "read"
    await page.until_shown(f"{LINES}[data-sender='customer'] .cc-ticks", "Read")

    # The agent types, then answers with markup in the text: the page shows it as text.
    await desk.send(type="typing", interaction_id=chat_id, active=True)
    await page.until_shown("#cc-typing", "Mei is typing")
    answer = "<b>Let me check</b> that for you."
    await desk.send(type="reply", interaction_id=chat_id, text=answer)
    assert (await desk.next("ack"))["of"] == "reply"
    line = await page.until_shown(f"{LINES}[data-sender='agent'] .cc-text", "Let me check")
    assert line.text == answer
    assert await page.count("#cc-transcript b") == 0
    assert not await page.shown("#cc-typing")

    # The answer is on the visitor's screen: the agent sees it delivered, then read.
    agents_line = await page.until_shown(f"{LINES}[data-sender='agent']", answer)
    message_id = agents_line.get_attribute("data-message-id")
    assert message_id is not None
    await until_receipt(desk, message_id, read=True)

    # The visitor types and writes again: the desk sees the typing, then the line, and the page
    # the line delivered.
    await page.type_into("#cc-text", "It says 200 instead of 100")
    typing = await desk.next("typing")
    assert (typing["interaction_id"], typing["active"]) == (chat_id, True)
    await page.click("#cc-send")
    update = await desk.next("interaction_update")
    assert update["detail"]["text"] == "It says 200 instead of 100"
    second = f"{LINES}[data-message-id='{update['detail']['message_id']}'] .cc-ticks"
    await page.until_shown(second, "✓✓")
    assert await page.texts(f"{LINES} .cc-text") == [
        "Hello, my invoice is wrong",
        answer,
        "It says 200 instead of 100",
    ]


async def test_a_visitor_nobody_answers_yet_sees_their_place_in_line(
    site: Site, served: str, browser: WebDriver
) -> None:
    page = await widget(browser, served, site)
    await write(page, "Is anyone there?")
    await page.until_shown("#cc-waiting", "You are number 1 in line")
    await page.until_shown(f"{LINES}[data-sender='customer'] .cc-ticks", "✓")


async def test_after_hours_the_page_offers_a_form_and_the_message_becomes_an_email(
    site: Site,
    client: httpx.AsyncClient,
    admin: Headers,
    served: str,
    browser: WebDriver,
    connection: asyncpg.Connection,
) -> None:
    hours = {"timezone": "UTC", "weekly": {"mon": [{"opens": "03:00", "closes": "03:01"}]}}
    closed = await client.patch(
        f"/v1/queues/{site.queue_id}", json={"business_hours": hours}, headers=admin
    )
    assert closed.status_code == 200, closed.text
    page = Page(browser)
    await page.open(f"{served}/chat/demo?site={site.id}")
    await page.until_shown("#cc-hours", "We are closed now")
    assert not await page.shown("#cc-compose")

    await page.type_into("#cc-email", "li.wei@example.com")
    await page.type_into("#cc-note", "Please call me about my bill.")
    await page.click("#cc-leave-note")
    await page.until_shown("#cc-thanks", "we will answer you by email")
    row = await connection.fetchrow(
        "SELECT i.channel, m.text FROM interactions i"
        " JOIN interaction_messages m ON m.interaction_id = i.id WHERE i.queue_id = $1",
        site.queue_id,
    )
    assert (row["channel"], row["text"]) == ("email", "Please call me about my bill.")


async def test_a_page_of_an_origin_the_site_does_not_allow_says_so_and_offers_no_chat(
    app: FastAPI, client: httpx.AsyncClient, admin: Headers, served: str, browser: WebDriver
) -> None:
    site = await make_site(app, client, admin, "https://shop.example")
    page = Page(browser)
    await page.open(f"{served}/chat/demo?site={site.id}")
    await page.until_shown("#cc-status", "This page may not open the chat: origin not allowed")
    assert not await page.shown("#cc-compose")


class PageServer:
    """The app served again on a port of its own for the page alone, which a test stops (its
    sockets close with 1012, as in a deploy) and starts again on the same port, while the desks
    stay on the other server."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._serving: asyncio.Task[None] | None = None

    async def start(self) -> None:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            lifespan="off",
            log_config=None,
            timeout_graceful_shutdown=5,
        )
        self._server = server = uvicorn.Server(config)
        self._serving = asyncio.create_task(server.serve())
        deadline = time.monotonic() + 15
        while not server.started:
            assert time.monotonic() < deadline, "the page's server did not start"
            assert not self._serving.done(), "the page's server stopped"
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._serving is not None:
            self._server.should_exit = True
            await self._serving
            self._server = self._serving = None

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, app: FastAPI) -> AsyncIterator[PageServer]:
        server = cls(app)
        await server.start()
        try:
            yield server
        finally:
            await server.stop()


async def test_a_line_written_while_the_server_is_away_goes_once_the_page_is_back(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: Headers,
    served: str,
    browser: WebDriver,
) -> None:
    _, desk = await chat_agent(client, admin, served, "mei")
    async with PageServer.running(app) as pages:
        site = await make_site(app, client, admin, pages.url)
        page = await widget(browser, pages.url, site)
        await write(page, "My parcel is late")
        offer = await desk.next("offer")
        await desk.send(type="accept", offer_id=offer["offer_id"])
        assert (await desk.next("ack"))["of"] == "accept"
        await page.until_shown("#cc-agent", "You are chatting with Mei")

        # The server goes (a deploy): the page says so and keeps what the visitor writes.
        await pages.stop()
        await page.until_shown("#cc-status", "Connection lost")
        await write(page, "Hello?")
        await page.until_shown(f"{LINES}[data-sender='customer'] .cc-ticks", "Sending")

        # Back: the page reconnects with its visitor token, resumes the chat and sends the line.
        await pages.start()
        update = await desk.next("interaction_update", within=30)
        assert update["detail"]["text"] == "Hello?"
        second = f"{LINES}[data-message-id='{update['detail']['message_id']}'] .cc-ticks"
        await page.until_shown(second, "✓")
        await page.until_shown("#cc-agent", "You are chatting with Mei")
        assert await page.texts(f"{LINES} .cc-text") == ["My parcel is late", "Hello?"]
