"""The wallboard in a real browser (headless chromium: tests/browser.py) against the app served
on a loopback port, fed by the real supervisor socket: what a supervisor sees while
interactions come and go, and what an agent who opens it is told.

Selenium's calls block, so they run in threads (`Page`) while the app serves in the test's loop.
The board is read in one script per look (tests/supervisor/wallboard_page.py), so a tile
redrawn between two reads of it can never mix two frames, nor be gone when read.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from selenium.webdriver.chromium.webdriver import ChromiumDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from app.auth.models import Role
from tests.browser import Page
from tests.channels.chat.test_widget_browser import PageServer
from tests.supervisor.wallboard_page import NO_FIGURE, run, tiles, until_tile
from tests.support import create_user_directly, login, served_in_loop

Headers = dict[str, str]
PASSWORD = "correct horse battery"


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The app on a loopback port, in the test's loop: one replica, whose matcher leads."""
    async with served_in_loop(app) as base_url:
        yield base_url


async def sign_in(page: Page, served: str, username: str) -> None:
    await page.open(f"{served}/wallboard")
    await page.until_shown("#wb-login", "Sign in as a supervisor")
    await page.type_into("#wb-username", username)
    await page.type_into("#wb-password", PASSWORD)
    await page.click("#wb-sign-in")


async def create_queue(client: httpx.AsyncClient, admin: Headers, name: str) -> None:
    body = {"name": name, "service_level": {"percent": 80, "seconds": 20}}
    response = await client.post("/v1/queues", json=body, headers=admin)
    assert response.status_code == 201, response.text


async def raise_call(client: httpx.AsyncClient, admin: Headers, queue: str) -> uuid.UUID:
    """A call waiting in `queue` (no agent is there to take it)."""
    body = {
        "channel": "voice",
        "queue": queue,
        "contact": {"kind": "phone", "value": "+86 138 0013 8000"},
    }
    response = await client.post("/v1/interactions", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["id"])


async def test_a_supervisor_sees_a_call_wait_on_its_queues_tile_and_leave_when_abandoned(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: Headers,
    served: str,
    browser: WebDriver,
    connection: asyncpg.Connection,
) -> None:
    await create_queue(client, admin, "billing")
    await create_queue(client, admin, "sales")
    await create_user_directly(app, "sam", Role.supervisor, PASSWORD)
    page = Page(browser)
    await sign_in(page, served, "sam")
    await page.until_shown("#wb-status", "Live")
    await until_tile(page, "billing", waiting="0", longest=NO_FIGURE)
    assert not await page.shown("#wb-login")

    call = await raise_call(client, admin, "billing")
    billing = await until_tile(page, "billing", waiting="1", channels=["voice 1"])
    assert billing["longest"] != NO_FIGURE
    assert billing["chart"] == 1
    assert billing["agents"][0].startswith("Available")
    assert (await tiles(page))["sales"]["waiting"] == "0"

    # The caller hangs up: the call leaves the tile.
    supervisor = await login(client, "sam", PASSWORD)
    abandoned = await client.post(f"/v1/interactions/{call}/abandon", headers=supervisor)
    assert abandoned.status_code == 200, abandoned.text
    await until_tile(page, "billing", waiting="0", channels=[], longest=NO_FIGURE)

    # Everything the page loaded came from the server: no other origin was asked for anything.
    loaded: list[str] = await run(
        page, "return performance.getEntriesByType('resource').map((entry) => entry.name)"
    )
    assert loaded
    assert all(url.startswith(f"{served}/") for url in loaded), loaded
    # The token is in this tab's sessionStorage, and in no URL the page opened.
    token = await run(page, "return sessionStorage.getItem('cc-wallboard-token')")
    assert token
    assert not any(token in url for url in loaded)


async def test_after_a_restart_the_page_reconnects_and_resumes_from_the_last_event_it_saw(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: Headers,
    browser: WebDriver,
    connection: asyncpg.Connection,
) -> None:
    await create_queue(client, admin, "billing")
    await create_user_directly(app, "sam", Role.supervisor, PASSWORD)
    async with PageServer.running(app) as server:
        page = Page(browser)
        await sign_in(page, server.url, "sam")
        await page.until_shown("#wb-status", "Live")
        call = await raise_call(client, admin, "billing")
        await until_tile(page, "billing", waiting="1")
        queued = await connection.fetchval(
            "SELECT id FROM events WHERE kind = 'interaction.queued' AND subject_id = $1",
            str(call),
        )
        # What the page says to the socket from here on, kept where the test can read it.
        await run(
            page,
            "window.said = []; const send = WebSocket.prototype.send;"
            "WebSocket.prototype.send = function (data) { window.said.push(data);"
            " return send.call(this, data); };",
        )

        # The server goes (a deploy) and comes back: the page says so, then reconnects with a
        # new ticket and a hello from the last event it saw.
        await server.stop()
        await page.until(
            lambda driver: "Live" not in driver.find_element(By.ID, "wb-status").text,
            "the page no longer says it is live (connection lost, reconnecting)",
        )
        await server.start()
        await page.until_shown("#wb-status", "Live")
        said: list[str] = await run(page, "return window.said")
        [hello] = [frame for frame in said if '"hello"' in frame]
        assert json.loads(hello)["last_event_id"] >= queued
        assert not await page.shown("#wb-login")

        # And it is live again: the call answered elsewhere leaves the tile.
        supervisor = await login(client, "sam", PASSWORD)
        await client.post(f"/v1/interactions/{call}/abandon", headers=supervisor)
        await until_tile(page, "billing", waiting="0")


async def test_the_page_loads_from_the_server_alone_under_its_policy(
    served: str, browser: WebDriver
) -> None:
    """Its script ran (it shows the login, hidden in the HTML), its style applies, and the
    browser fetched nothing from anywhere else and reports no error (a policy violation is one)."""
    page = Page(browser)
    await page.open(f"{served}/wallboard")
    await page.until_shown("#wb-login", "Sign in as a supervisor")
    background = await run(page, "return getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(17, 24, 39)"  # wallboard.css's
    loaded: list[str] = await run(
        page, "return performance.getEntriesByType('resource').map((entry) => entry.name)"
    )
    assert sorted(loaded) == [f"{served}/wallboard.css", f"{served}/wallboard.js"]
    assert isinstance(browser, ChromiumDriver)  # tests/browser.py's, whose log a test reads
    log = await asyncio.to_thread(browser.get_log, "browser")
    errors = [entry for entry in log if entry["level"] == "SEVERE"]
    assert errors == []


async def test_an_agent_is_told_the_board_is_for_supervisors_and_signed_out(
    app: FastAPI, served: str, browser: WebDriver, connection: asyncpg.Connection
) -> None:
    await create_user_directly(app, "mei", Role.agent, PASSWORD)
    page = Page(browser)
    await sign_in(page, served, "mei")
    await page.until_shown(
        "#wb-login-problem", "The wallboard is for supervisors and admins: mei is an agent."
    )
    assert not await page.shown("#wb-board")
    assert await run(page, "return sessionStorage.length") == 0
    # The page gave the agent's token back before saying so: no session of mei's is left.
    sessions = await connection.fetchval(
        "SELECT count(*) FROM access_tokens t JOIN users u ON u.id = t.user_id"
        " WHERE u.username = 'mei'"
    )
    assert sessions == 0


async def test_a_wrong_password_is_said_plainly(
    app: FastAPI, served: str, browser: WebDriver
) -> None:
    await create_user_directly(app, "sam", Role.supervisor, "another horse battery")
    page = Page(browser)
    await sign_in(page, served, "sam")
    await page.until_shown("#wb-login-problem", "Wrong username or password.")
    assert await page.shown("#wb-login")
