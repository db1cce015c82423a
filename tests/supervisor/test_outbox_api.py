"""The outbox as the app runs it: its courier started with the app and woken by the app's units
of work, its `twilio` sender built from the settings, and what staff see of it over HTTP.

The courier sweeps once an hour here, so every message these tests see sent was sent because
its commit woke the courier.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.core.db import unit_of_work
from app.core.outbox import Outgoing, enqueue_in, http_message
from app.core.settings import Settings
from tests.core.http_receiver import Answer, Receiver

ACCOUNT = "AC00000000000000000000000000000042"
TOKEN = "auth-token-of-the-test-account"
CALLS = f"/2010-04-01/Accounts/{ACCOUNT}/Calls"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver.running() as running:
        yield running


@pytest.fixture
def settings(receiver: Receiver) -> Settings:
    return Settings(
        environment="test",
        load_demo=False,
        password_hashing="fast",
        twilio_api_url=receiver.base_url,
        twilio_account_sid=ACCOUNT,
        twilio_auth_token=TOKEN,
        outbox_sweep_seconds=3600,
    )


def bridge(call: str) -> Outgoing:
    return http_message(
        sender="twilio",
        method="POST",
        url=f"{CALLS}/{call}.json",
        form={"Url": f"https://center.example.com/v1/voice/twilio/bridge/{call}"},
        dedupe_key=f"bridge:{call}",
        subject_type="interaction",
        subject_id=call,
    )


async def write(app: FastAPI, message: Outgoing) -> str:
    async with unit_of_work(app.state.sessions, outbox=app.state.outbox) as session:
        written = await enqueue_in(session, message)
    return str(written.id)


async def test_a_unit_of_work_s_message_goes_to_twilio_as_soon_as_it_commits(
    app: FastAPI, receiver: Receiver
) -> None:
    await write(app, bridge("CA1"))
    [request] = await receiver.until_received(f"{CALLS}/CA1.json")
    expected = base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert request.form == {"Url": ["https://center.example.com/v1/voice/twilio/bridge/CA1"]}


async def _until_state(
    client: httpx.AsyncClient, headers: dict[str, str], message_id: str, state: str
) -> dict[str, Any]:
    """The message as staff read it, once it is in `state` (read every 10 ms, for 10 s)."""
    seen: dict[str, Any] = {}
    for _ in range(1000):
        response = await client.get(f"/v1/outbox/{message_id}", headers=headers)
        assert response.status_code == 200, response.text
        seen = response.json()
        if seen["state"] == state:
            return seen
        await asyncio.sleep(0.01)
    raise AssertionError(f"message {message_id} never {state}: {seen}")


async def test_staff_see_a_refused_message_and_an_admin_sends_it_again(
    app: FastAPI,
    client: httpx.AsyncClient,
    receiver: Receiver,
    supervisor: dict[str, str],
    admin: dict[str, str],
) -> None:
    receiver.script(f"{CALLS}/CA2.json", Answer(404, body="The requested resource was not found"))
    message_id = await write(app, bridge("CA2"))
    dead = await _until_state(client, supervisor, message_id, "dead")
    assert dead["last_status"] == 404
    assert dead["last_error"] == "404 Not Found: The requested resource was not found"
    assert dead["request"]["url"] == f"{CALLS}/CA2.json"
    assert TOKEN not in str(dead)

    listed = await client.get("/v1/outbox?state=dead&kind=http", headers=supervisor)
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert (page["total"], page["limit"], page["offset"]) == (1, 50, 0)
    assert [item["id"] for item in page["items"]] == [message_id]
    about = await client.get(
        "/v1/outbox?subject_type=interaction&subject_id=CA2", headers=supervisor
    )
    assert [item["id"] for item in about.json()["items"]] == [message_id]
    none = await client.get("/v1/outbox?state=sent&subject_id=CA2", headers=supervisor)
    assert none.json()["total"] == 0

    # The number is fixed at the gateway; an admin sends it again.
    retried = await client.post(f"/v1/outbox/{message_id}/retry", headers=admin)
    assert retried.status_code == 200, retried.text
    assert (retried.json()["state"], retried.json()["attempts"]) == ("pending", 0)
    sent = await _until_state(client, supervisor, message_id, "sent")
    assert (sent["attempts"], sent["last_status"]) == (1, 200)
    assert len(receiver.to(f"{CALLS}/CA2.json")) == 2

    again = await client.post(f"/v1/outbox/{message_id}/retry", headers=admin)
    assert again.status_code == 409, again.text
    assert again.json()["error"] == "illegal_transition"
    assert "is sent: only a failed or dead one is sent again" in again.json()["detail"]
    unknown = await client.post(
        "/v1/outbox/00000000-0000-4000-8000-000000000000/retry", headers=admin
    )
    assert unknown.status_code == 404

    events = await client.get(
        "/v1/events?subject_type=interaction&subject_id=CA2", headers=supervisor
    )
    kinds = [event["kind"] for event in events.json()["items"]]
    assert kinds == ["outbox.dead", "outbox.retried", "outbox.sent"]
    retried_event = events.json()["items"][1]
    assert retried_event["actor"].startswith("user:")
    assert retried_event["payload"] == {"message_id": message_id, "state": "dead", "attempts": 1}
