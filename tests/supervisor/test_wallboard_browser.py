"""The wallboard in a real browser (headless chromium: tests/browser.py) against the app served
on a loopback port, fed by the real supervisor socket: what a supervisor sees while
interactions come and go, and what an agent who opens it is told.

Selenium's calls block, so they run in threads (`Page`) while the app serves in the test's loop.
The board is read in one script per look (tests/supervisor/wallboard_page.py), so a tile
redrawn between two reads of it can never mix two frames, nor be gone when read.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from selenium.webdriver.chromium.webdriver import ChromiumDriver
from selenium.webdriver.remote.webdriver import WebDriver

from app.auth.models import Role
from tests.browser import Page
from tests.supervisor.wallboard_page import run
from tests.support import create_user_directly, served_in_loop

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
