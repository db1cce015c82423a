"""The desk protocol as a client author reads it (docs/agent-protocol.md): the ticket that opens
a desk, every refusal a close code with its reason, the hello first, one desk per agent, a
replay that tells each thing once and no dead offer, frames pushed at once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
import websockets
from websockets.frames import Close

from app.core import socket_session
from app.core.hub import EventHub, asyncpg_dsn
from app.core.settings import Settings
from app.core.socket_session import (
    BAD_TICKET,
    BINARY_FRAME,
    HELLO_FIRST,
    NO_HELLO,
    CloseCode,
    Closing,
)
from app.desk import api as desk_api
from app.desk.connection import REPLACED, AgentConnection
from tests.core.test_socket_session import read_until_closed
from tests.desk.conftest import Center, Desk
from tests.support import LiveServer


async def _closing(url: str, *messages: str | bytes) -> tuple[list[str], Close]:
    """Open `url`, send `messages`, and read until the server closes: what came, and why."""
    async with websockets.connect(url) as socket:
        for message in messages:
            await socket.send(message)
        return await read_until_closed(socket)


@pytest.fixture
def other_replica(settings: Settings, database_url: str) -> Iterator[str]:
    """A second server on the same database (a replica of its own: hub, matcher, pools): the
    websocket URL of its desks."""
    with LiveServer.running(settings, database_url) as server:
        yield server.base_url.replace("http://", "ws://")


# --- tickets and refusals --------------------------------------------------------------------


async def test_a_ticket_opens_one_desk_once(center: Center) -> None:
    mei = await center.agent("mei", billing=4)
    ticket = await center.ticket(mei)
    url = f"{center.ws_url}/v1/desk/ws?ticket={ticket}"
    async with websockets.connect(url) as socket:
        desk = Desk(socket)
        await desk.send(type="hello", last_event_id=None)
        assert (await desk.next("ready"))["agent_id"]

    received, closed = await _closing(url)  # the same ticket again

    assert received == []
    assert (closed.code, closed.reason) == (CloseCode.REFUSED, BAD_TICKET.reason)


async def test_an_expired_ticket_is_refused(center: Center, database_url: str) -> None:
    mei = await center.agent("mei", billing=4)
    ticket = await center.ticket(mei)
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        expired = await connection.execute(
            "UPDATE socket_tickets SET expires_at = now() - interval '1 second'"
        )
    finally:
        await connection.close()
    assert expired == "UPDATE 1"

    _, closed = await _closing(f"{center.ws_url}/v1/desk/ws?ticket={ticket}")

    assert (closed.code, closed.reason) == (CloseCode.REFUSED, BAD_TICKET.reason)


async def test_a_ticket_issued_by_one_replica_opens_a_desk_on_another(
    center: Center, other_replica: str
) -> None:
    mei = await center.agent("mei", billing=4)
    desk = await center.desk(mei, ws_url=other_replica)  # the ticket is asked of the first
    await desk.send(type="set_state", state="available")
    assert (await desk.next("ack"))["of"] == "set_state"


async def test_only_an_agent_gets_a_ticket(center: Center) -> None:
    refused = await center.http.post("/v1/desk/tickets", headers=center.admin)
    anonymous = await center.http.post("/v1/desk/tickets")
    assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")
    assert (anonymous.status_code, anonymous.json()["error"]) == (401, "not_authenticated")


async def test_the_deprecated_token_in_the_url_still_opens_a_desk(center: Center) -> None:
    mei = await center.agent("mei", billing=4)
    token = mei["Authorization"].removeprefix("Bearer ")
    async with websockets.connect(f"{center.ws_url}/v1/desk/ws?token={token}") as socket:
        desk = Desk(socket)
        await desk.send(type="hello", last_event_id=None)
        assert (await desk.next("ready"))["agent_id"]


@pytest.mark.parametrize(
    ("query", "refusal"),
    [
        ("", desk_api.NO_CREDENTIALS),
        ("?ticket=ccs_not-a-ticket-anyone-was-given", BAD_TICKET),
        ("?token=cct_not-a-token-anyone-was-given", desk_api.NOT_AN_AGENT),
        ("?ticket=", BAD_TICKET),
    ],
)
async def test_every_refusal_is_a_close_code_with_its_reason(
    center: Center, query: str, refusal: Closing
) -> None:
    """Never a refused handshake (a browser sees no status, only a failed connection)."""
    received, closed = await _closing(f"{center.ws_url}/v1/desk/ws{query}")
    assert received == []
    assert (closed.code, closed.reason) == (CloseCode.REFUSED, refusal.reason)


# --- the hello -------------------------------------------------------------------------------


async def test_a_socket_that_says_no_hello_in_time_is_closed_unserved(
    center: Center, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket_session, "HELLO_TIMEOUT", 0.3)
    mei = await center.agent("mei", billing=4)
    received, closed = await _closing(
        f"{center.ws_url}/v1/desk/ws?ticket={await center.ticket(mei)}"
    )
    assert received == []  # no replay, no ready
    assert (closed.code, closed.reason) == (CloseCode.NO_HELLO, NO_HELLO.reason)


@pytest.mark.parametrize(
    "first",
    [
        '{"type": "set_state", "state": "available"}',
        '{"type": "hello", "last_event_id": 9223372036854775808}',  # past a bigint
        "not JSON",
    ],
)
async def test_a_first_message_other_than_a_valid_hello_closes_the_socket_unserved(
    center: Center, first: str
) -> None:
    mei = await center.agent("mei", billing=4)
    received, closed = await _closing(
        f"{center.ws_url}/v1/desk/ws?ticket={await center.ticket(mei)}", first
    )
    assert received == []
    assert (closed.code, closed.reason) == (CloseCode.NO_HELLO, HELLO_FIRST.reason)


async def test_a_binary_frame_on_the_desk_closes_it_with_1003_and_a_reason(
    center: Center,
) -> None:
    desk = await center.desk(await center.agent("mei", billing=4))
    await desk.socket.send(b'{"type": "heartbeat"}')
    received, closed = await read_until_closed(desk.socket)
    assert received == []
    assert (closed.code, closed.reason) == (CloseCode.UNSUPPORTED_DATA, BINARY_FRAME.reason)


# --- one desk per agent ----------------------------------------------------------------------


@pytest.fixture
def desks_left(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set once a desk socket's server side has left (`AgentConnection._leave` done: the
    agent left routing then, or a newer socket kept it there). The server runs in a thread."""
    left = threading.Event()
    leave = AgentConnection._leave

    async def noted(self: AgentConnection) -> None:
        await leave(self)
        left.set()

    monkeypatch.setattr(AgentConnection, "_leave", noted)
    return left


@pytest.mark.parametrize("newer_on", ["the same replica", "another replica"])
async def test_a_newer_desk_replaces_the_older_which_is_closed_and_the_agent_stays(
    center: Center,
    desks_left: threading.Event,
    newer_on: str,
    request: pytest.FixtureRequest,
) -> None:
    """A second tab, a reload, a reconnect to another replica: the newer socket wins, the
    older is closed with REPLACED, and its close does not take the agent out of routing."""
    ws_url = None if newer_on == "the same replica" else request.getfixturevalue("other_replica")
    mei = await center.agent("mei", billing=4)
    older = await center.available(mei)

    newer = await center.desk(mei, ws_url=ws_url)
    _, closed = await read_until_closed(older.socket)
    assert (closed.code, closed.reason) == (CloseCode.REPLACED, REPLACED.reason)
    assert await asyncio.to_thread(desks_left.wait, 10), "the older socket never left"

    me = (await center.http.get("/v1/agents/me", headers=mei)).json()
    assert me["state"] == "available"
    call = await center.call()
    assert (await newer.next("offer"))["interaction_id"] == call["id"]


# --- the replay ------------------------------------------------------------------------------


def _before_ready(desk: Desk) -> list[dict[str, Any]]:
    ready = next(n for n, frame in enumerate(desk.frames) if frame["type"] == "ready")
    return desk.frames[:ready]


async def test_a_reconnect_tells_each_thing_once_and_never_offers_what_is_gone(
    center: Center,
) -> None:
    """While the console was away (its last event id is older than all this), an offer was
    made and withdrawn, and another made and accepted. The replay offers nothing (a console
    acting before `ready` would accept a dead offer), says nothing of the offer it never saw,
    and shows what the agent holds now, once each."""
    mei = await center.agent("mei", billing=4)
    desk = await center.available(mei)
    last_seen = (await desk.next("state"))["event_id"]  # the console's last event id
    gone = await center.call(external_ref="call-gone")
    gone_offer = await desk.next("offer")
    await desk.send(type="set_state", state="away")  # the offer returns to the queue
    await desk.next("offer_withdrawn")
    await desk.send(type="set_state", state="available")
    again = await desk.next("offer")  # the same call, offered afresh
    assert again["interaction_id"] == gone["id"]
    await desk.send(type="accept", offer_id=again["offer_id"])
    held = await desk.next("assignment")

    back = await center.desk(mei, last_event_id=last_seen)
    shown = [(f["type"], f.get("event_id")) for f in _before_ready(back)]
    assert shown == [("state", None), ("assignment", None)]
    assert _before_ready(back)[0]["state"] == "busy"
    assert _before_ready(back)[1]["interaction"] == held["interaction"]

    # A console that saw the first offer is told it ended (and is not offered it again).
    seen_it = await center.desk(mei, last_event_id=gone_offer["event_id"])
    shown = [(f["type"], f.get("offer_id")) for f in _before_ready(seen_it)]
    assert shown == [
        ("offer_withdrawn", gone_offer["offer_id"]),
        ("state", None),
        ("assignment", None),
    ]


# --- frames pushed at once -------------------------------------------------------------------


@pytest.fixture
def polls_never(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hubs made from now on read the log on a NOTIFY or a publish only, never on their own: a
    frame that needed a poll does not come within a test's patience. Asked for before `center`,
    whose servers' hubs it then governs."""
    defaults = dict(EventHub.__init__.__kwdefaults__ or {})
    monkeypatch.setattr(EventHub.__init__, "__kwdefaults__", {**defaults, "poll_interval": 3600})


async def test_after_an_accept_the_agents_state_comes_without_waiting_for_a_poll(
    polls_never: None, center: Center
) -> None:
    """The accept's events are written inside PostgreSQL (routing_accept) and come back to
    the desk, which publishes them; none is left for the hub to find."""
    desk = await center.available(await center.agent("mei", billing=4))
    await desk.next("state")  # available
    await center.call()
    offer = await desk.next("offer")
    await desk.send(type="accept", offer_id=offer["offer_id"])
    await desk.next("assignment", within=5)
    state = await desk.next("state", within=5)
    assert state["state"] == "busy"
