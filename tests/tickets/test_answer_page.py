"""The customer's answer to a step-4 reply, through the link the reply carries
(app/tickets/answer_page.py), with the real app: a complaint raised from a chat the agent holds
is walked to step 4 through the API, and the link is read out of the chat line the reply was
written as. Opening it shows a form and records nothing; submitting it records the answer as the
customer's, once; a used, expired, replaced or forged link, or one whose complaint moved on, is
refused with a page saying which; the token reaches no log line.
"""

from __future__ import annotations

import asyncio
import io
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from selenium.webdriver.remote.webdriver import WebDriver

from app.core import pg
from app.core.logging import redact
from app.tickets import links
from tests.browser import Page
from tests.support import served_in_loop
from tests.tickets.conftest import COMPLAINTS, Desk

Headers = dict[str, str]
LINK = re.compile(r"https?://\S+?(/complaints/answer/[A-Za-z0-9_-]+)")
SUMMARY = "Charged <b>twice</b> for the March bill"
REPLY = "We have refunded the second payment of 42.00 <script>alert(1)</script>"


@pytest.fixture
async def desk(holding: Callable[[str], Awaitable[Desk]]) -> Desk:
    """The agent holds a chat: the reply, and its link, is written in it."""
    return await holding("chat")


@dataclass
class Replied:
    """A complaint at step 4 and the path of the link its reply carried."""

    complaint: dict[str, Any]
    path: str

    @property
    def token(self) -> str:
        return self.path.rsplit("/", 1)[1]


async def at_investigate(desk: Desk) -> dict[str, Any]:
    """Raised from the chat (the acknowledgement is written in it) and confirmed: step 3."""
    complaint = await desk.raise_complaint(summary=SUMMARY)
    assert complaint["acknowledged_by"] == "chat"
    billing = await desk.category("complaint", "billing")
    investigating = await desk.moved(complaint, "confirm", category_id=billing, severity="major")
    noted = await desk.http.post(
        f"{COMPLAINTS}/{complaint['id']}/notes",
        json={"text": "Bank statement shows two debits"},
        headers=desk.agent,
    )
    assert noted.status_code == 201, noted.text
    return investigating


async def send_reply(desk: Desk, complaint: dict[str, Any], reply: str = REPLY) -> Replied:
    """The agent sends the reply; the link is the one in the newest line of the chat."""
    replied = await desk.moved(
        complaint,
        "send_reply",
        assessment="A retried payment run charged customers twice",
        reply=reply,
        actions_taken="Refund issued",
    )
    assert replied["step"] == "reply"
    lines = await desk.http.get(
        f"/v1/interactions/{desk.interaction_id}/messages",
        params={"limit": 100},
        headers=desk.agent,
    )
    assert lines.status_code == 200, lines.text
    newest = [m for m in lines.json()["items"] if m["direction"] == "outbound"][-1]
    assert reply in newest["text"]
    found = LINK.search(newest["text"])
    assert found is not None, newest["text"]
    return Replied(replied, found.group(1))


async def at_reply(desk: Desk) -> Replied:
    return await send_reply(desk, await at_investigate(desk))


async def complaint_now(desk: Desk, complaint: dict[str, Any]) -> dict[str, Any]:
    response = await desk.http.get(f"{COMPLAINTS}/{complaint['id']}", headers=desk.supervisor)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def timeline(desk: Desk, complaint: dict[str, Any]) -> list[dict[str, Any]]:
    response = await desk.http.get(
        f"{COMPLAINTS}/{complaint['id']}/timeline",
        params={"limit": 200},
        headers=desk.supervisor,
    )
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["items"]
    return entries


async def answer(desk: Desk, path: str, **fields: str) -> httpx.Response:
    return await desk.http.post(path, data=fields)


def title(response: httpx.Response) -> str:
    found = re.search(r"<h1>(.*?)</h1>", response.text)
    assert found is not None, response.text
    return found.group(1)


def assert_a_page(response: httpx.Response, status: int, heading: str) -> None:
    """A page (never JSON), with the headers a page carrying a secret URL needs."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert title(response) == heading
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    policy = response.headers["content-security-policy"]
    assert "script-src 'none'" in policy
    assert "default-src 'none'" in policy
    assert "<script" not in response.text


async def link_row(connection: asyncpg.Connection, token: str) -> asyncpg.Record:
    row = await connection.fetchrow(
        "SELECT * FROM complaint_answer_links WHERE token_hash = $1", links.token_hash(token)
    )
    assert row is not None
    return row


# --- opening the link -----------------------------------------------------------------------------


async def test_the_link_opens_a_form_with_the_reply_and_opening_it_records_nothing(
    desk: Desk, connection: asyncpg.Connection
) -> None:
    replied = await at_reply(desk)
    before = (
        await complaint_now(desk, replied.complaint),
        await timeline(desk, replied.complaint),
        dict(await link_row(connection, replied.token)),
    )

    # Opened twice, as a mail scanner and then the customer would.
    for _ in range(2):
        form = await desk.http.get(replied.path)
        assert_a_page(form, 200, f"Your complaint {replied.complaint['reference']}")
    page = form.text
    assert "Does this resolve your complaint?" in page
    assert 'name="resolves" value="yes"' in page
    assert 'name="resolves" value="no"' in page
    for score in range(1, 6):
        assert f'name="satisfaction" value="{score}"' in page
    assert '<textarea id="comment" name="comment"' in page
    # The summary and the reply as sent, written as text: their markup is not the page's.
    assert "Charged &lt;b&gt;twice&lt;/b&gt; for the March bill" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert replied.token not in page  # the form posts back to its own URL

    after = (
        await complaint_now(desk, replied.complaint),
        await timeline(desk, replied.complaint),
        dict(await link_row(connection, replied.token)),
    )
    assert after == before
    assert after[0]["step"] == "reply"
    assert after[2]["used_at"] is None


# --- answering ------------------------------------------------------------------------------------


async def test_an_accepted_reply_moves_the_complaint_to_step_5_as_the_customer_once(
    desk: Desk,
) -> None:
    replied = await at_reply(desk)

    thanks = await answer(desk, replied.path, resolves="yes", satisfaction="4", comment="")
    assert_a_page(thanks, 200, "Thank you for your answer")
    assert "4 out of 5" in thanks.text

    now = await complaint_now(desk, replied.complaint)
    assert (now["step"], now["step_number"]) == ("improve", 5)
    assert (now["accepted"], now["satisfaction"], now["answer"]) == (True, 4, "Accepted")
    moved = (await timeline(desk, replied.complaint))[-1]
    assert moved["actor"] == f"customer:{desk.customer_id}"
    assert (moved["payload"]["action"], moved["payload"]["to"]) == ("customer_accepts", "improve")

    # The link worked once: opened or sent again, it says the answer is in.
    for again in (
        await desk.http.get(replied.path),
        await answer(desk, replied.path, resolves="no", comment="Changed my mind"),
    ):
        assert_a_page(again, 410, "You have answered already")
        assert replied.complaint["reference"] in again.text
    assert await complaint_now(desk, replied.complaint) == now


async def test_a_reply_not_accepted_needs_a_comment_and_goes_back_to_step_3(desk: Desk) -> None:
    replied = await at_reply(desk)

    asked = await answer(desk, replied.path, resolves="no", satisfaction="2", comment="   ")
    assert_a_page(asked, 422, f"Your complaint {replied.complaint['reference']}")
    assert "Please tell us what is still missing or wrong." in asked.text
    # What was chosen is chosen again.
    assert 'name="resolves" value="no" checked' in asked.text
    assert 'name="satisfaction" value="2" checked' in asked.text
    assert (await complaint_now(desk, replied.complaint))["step"] == "reply"

    thanks = await answer(
        desk, replied.path, resolves="no", satisfaction="2", comment="The refund never came"
    )
    assert_a_page(thanks, 200, "Thank you for your answer")
    now = await complaint_now(desk, replied.complaint)
    assert (now["step"], now["accepted"]) == ("investigate", False)
    assert (now["answer"], now["satisfaction"]) == ("The refund never came", 2)
    moved = (await timeline(desk, replied.complaint))[-1]
    assert moved["actor"] == f"customer:{desk.customer_id}"
    assert moved["payload"]["action"] == "customer_rejects"


async def test_a_form_missing_or_mangling_a_field_is_asked_again_naming_it(
    desk: Desk, connection: asyncpg.Connection
) -> None:
    replied = await at_reply(desk)
    cases: list[tuple[dict[str, str], str, str]] = [
        ({}, "resolves", "Please say whether our reply resolves your complaint."),
        ({"resolves": "yes", "comment": "Fine"}, "satisfaction", "choose a score from 1 to 5"),
        ({"resolves": "yes", "satisfaction": "7"}, "satisfaction", "choose a score from 1 to 5"),
        ({"resolves": "yes", "satisfaction": "four"}, "satisfaction", "a score from 1 to 5"),
        ({"resolves": "maybe", "satisfaction": "4"}, "resolves", "Please choose yes or no."),
        ({"resolves": "no", "comment": "bad\x00byte"}, "comment", "NUL character"),
    ]
    for fields, field, said in cases:
        asked = await answer(desk, replied.path, **fields)
        assert_a_page(asked, 422, f"Your complaint {replied.complaint['reference']}")
        assert f'href="#{field}"' in asked.text, fields
        assert f'id="{field}-problem"' in asked.text, fields
        assert said in asked.text, (fields, asked.text)
    # The comment is kept where it was valid.
    kept = await answer(desk, replied.path, resolves="yes", comment="Thanks a lot")
    assert ">Thanks a lot</textarea>" in kept.text
    # Not a form at all, or one too large: refused with a page, nothing recorded.
    as_json = await desk.http.post(replied.path, json={"resolves": "yes", "satisfaction": 4})
    assert_a_page(as_json, 415, "We could not read your answer")
    too_long = await answer(desk, replied.path, resolves="no", comment="x" * 300_000)
    assert_a_page(too_long, 413, "We could not read your answer")
    assert (await complaint_now(desk, replied.complaint))["step"] == "reply"
    assert (await link_row(connection, replied.token))["used_at"] is None


# --- links that no longer work, or never did ------------------------------------------------------


async def test_a_forged_or_malformed_token_is_a_page_saying_the_link_is_not_ours(
    desk: Desk,
) -> None:
    forged = secrets.token_urlsafe(32)
    for token in (forged, forged[:20], forged + "x", "%00" * 43, "a" * 42 + "!", "x" * 5000):
        for response in (
            await desk.http.get(f"{links.PATH}{token}"),
            await desk.http.post(f"{links.PATH}{token}", data={"resolves": "yes"}),
        ):
            assert_a_page(response, 404, "This link does not work")


async def test_an_expired_link_is_refused_with_a_page_saying_so(
    desk: Desk, connection: asyncpg.Connection
) -> None:
    replied = await at_reply(desk)
    await connection.execute(
        "UPDATE complaint_answer_links SET expires_at = now() - interval '1 minute'"
        " WHERE token_hash = $1",
        links.token_hash(replied.token),
    )
    for response in (
        await desk.http.get(replied.path),
        await answer(desk, replied.path, resolves="yes", satisfaction="5"),
    ):
        assert_a_page(response, 410, "This link has expired")
        assert replied.complaint["reference"] in response.text
    assert (await complaint_now(desk, replied.complaint))["step"] == "reply"


async def test_a_newer_reply_s_link_works_and_the_first_one_is_refused(desk: Desk) -> None:
    first = await at_reply(desk)
    returned = await answer(desk, first.path, resolves="no", comment="Only half was refunded")
    assert returned.status_code == 200, returned.text
    second = await send_reply(desk, first.complaint, "We have refunded the other half too.")
    assert second.token != first.token

    for response in (
        await desk.http.get(first.path),
        await answer(desk, first.path, resolves="yes", satisfaction="1"),
    ):
        assert_a_page(response, 410, "You have answered already")

    assert (await desk.http.get(second.path)).status_code == 200
    thanks = await answer(desk, second.path, resolves="yes", satisfaction="5")
    assert thanks.status_code == 200, thanks.text
    now = await complaint_now(desk, first.complaint)
    assert (now["step"], now["satisfaction"]) == ("improve", 5)


async def test_an_unused_link_of_an_earlier_reply_says_a_newer_one_was_sent(desk: Desk) -> None:
    first = await at_reply(desk)
    # The customer answered on the phone, to the agent; a new reply went out.
    await desk.moved(first.complaint, "customer_rejects", answer="Said on the phone: half")
    second = await send_reply(desk, first.complaint, "We have refunded the other half too.")

    assert_a_page(await desk.http.get(first.path), 410, "We have sent you a newer reply")
    assert (await desk.http.get(second.path)).status_code == 200


async def test_a_link_whose_complaint_moved_on_is_refused_with_a_page_saying_so(
    desk: Desk,
) -> None:
    replied = await at_reply(desk)
    await desk.moved(replied.complaint, "customer_accepts", answer="On the phone", satisfaction=3)
    for response in (
        await desk.http.get(replied.path),
        await answer(desk, replied.path, resolves="no", comment="Not resolved"),
    ):
        assert_a_page(response, 410, "Your complaint has moved on")
    now = await complaint_now(desk, replied.complaint)
    assert (now["step"], now["satisfaction"]) == ("improve", 3)


# --- two answers at once --------------------------------------------------------------------------


async def until_sessions_wait_for_locks(observer: asyncpg.Connection, sessions: int) -> None:
    """Returns once `sessions` other sessions wait for a lock (the one the test holds)."""
    waiting = "SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted AND pid <> $1"
    mine = await observer.fetchval("SELECT pg_backend_pid()")
    for _ in range(500):
        if await observer.fetchval(waiting, mine) >= sessions:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{sessions} sessions never waited for a lock")


async def test_two_answers_sent_at_once_record_one(
    desk: Desk, connection: asyncpg.Connection, database_url: str
) -> None:
    replied = await at_reply(desk)
    holder = await pg.connect(database_url)
    try:
        # Both answers arrive while the complaint is locked, so they race from the same start.
        async with holder.transaction():
            await holder.execute(
                "SELECT 1 FROM complaints WHERE id = $1 FOR UPDATE", replied.complaint["id"]
            )
            both = asyncio.gather(
                answer(desk, replied.path, resolves="yes", satisfaction="4"),
                answer(desk, replied.path, resolves="no", comment="Not resolved"),
            )
            await until_sessions_wait_for_locks(connection, 2)
        first, second = await both
    finally:
        await holder.close()

    assert sorted([first.status_code, second.status_code]) == [200, 410], (first, second)
    late = second if second.status_code == 410 else first
    assert title(late) == "You have answered already"
    answers = [
        entry
        for entry in await timeline(desk, replied.complaint)
        if entry["payload"].get("action") in ("customer_accepts", "customer_rejects")
    ]
    assert len(answers) == 1, answers


# --- the token in no log line ---------------------------------------------------------------------


def test_a_logged_answer_link_has_its_token_blanked() -> None:
    token = secrets.token_urlsafe(32)
    line = f'"GET {links.url("https://cc.example", token)}?x=1 HTTP/1.1" 200'
    assert token not in redact(line)
    assert f"{links.PATH}[redacted]?x=1" in redact(line)


async def test_the_token_reaches_no_log_line(
    app: FastAPI, desk: Desk, log_lines: io.StringIO
) -> None:
    """Through the test's client (httpx logs each URL) and a real socket (uvicorn's access
    log): the paths are logged, their token blanked."""
    replied = await at_reply(desk)
    async with served_in_loop(app) as served, httpx.AsyncClient(base_url=served) as http:
        assert (await http.get(replied.path)).status_code == 200
        asked = await http.post(replied.path, data={"resolves": "no"})
        assert asked.status_code == 422
    assert (await desk.http.get(replied.path)).status_code == 200
    thanks = await answer(desk, replied.path, resolves="yes", satisfaction="4")
    assert thanks.status_code == 200
    assert (await desk.http.get(replied.path)).status_code == 410

    logged = log_lines.getvalue()
    assert f"POST {links.PATH}[redacted] HTTP/1.1" in logged  # uvicorn's access line
    assert f"testserver{links.PATH}[redacted]" in logged  # httpx's
    assert "complaints.answered" in logged
    assert replied.token not in logged


# --- in a browser ---------------------------------------------------------------------------------


async def test_a_customer_answers_in_a_browser(
    app: FastAPI, desk: Desk, browser: WebDriver
) -> None:
    replied = await at_reply(desk)
    async with served_in_loop(app) as served:
        page = Page(browser)
        await page.open(f"{served}{replied.path}")
        await page.until_shown("h1", f"Your complaint {replied.complaint['reference']}")
        reply = await page.until_shown(".reply", "<script>alert(1)</script>")  # as text
        # The inline stylesheet applies: the page's policy names it by its hash.
        assert reply.value_of_css_property("white-space") == "pre-wrap"
        await page.click("input[name=resolves][value=yes]")
        await page.click("input[name=satisfaction][value='4']")
        await page.type_into("#comment", "Quick and fair, thank you")
        await page.click("button[type=submit]")
        # The title, not an element: those of the form's page go stale as the next one loads.
        await page.until(
            lambda driver: driver.title == "Thank you for your answer" or None, "thank you"
        )
        await page.until_shown(".thanks", "4 out of 5")
    now = await complaint_now(desk, replied.complaint)
    assert (now["step"], now["satisfaction"]) == ("improve", 4)
    assert now["answer"] == "Quick and fair, thank you"
