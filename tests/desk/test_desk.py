"""The agent's desk over a real websocket: offers with screen pop, decisions, replay."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg
import pytest
import websockets

from app.core.hub import HUB_APPLICATION, NOTIFY_CHANNEL, asyncpg_dsn
from app.core.socket_session import CloseCode
from tests.desk.conftest import Center


async def test_an_offer_arrives_with_its_screen_pop_and_accepting_assigns_it(
    center: Center,
) -> None:
    mei = await center.agent("mei", billing=4)
    desk = await center.available(mei)

    call = await center.call(subject="Invoice question", external_ref="call-1")
    offer = await desk.next("offer")

    assert offer["interaction_id"] == call["id"]
    pop = offer["screen_pop"]
    assert pop["customer"]["contact_points"] == [
        {"kind": "phone", "value": "+8613800138000", "failing_since": None}
    ]
    assert pop["interaction"]["subject"] == "Invoice question"
    assert pop["routing"]["matched_skills"] == {"billing": 4}
    assert pop["open_complaints"] == []
    assert pop["ivr"] is None  # posted without what an IVR learned
    assert pop["messages"] == []  # a call has none

    await desk.send(type="accept", offer_id=offer["offer_id"])
    assignment = await desk.next("assignment")
    assert assignment["interaction"]["id"] == call["id"]
    answered = desk.frames[-2]  # the answer comes before the frames of what it caused
    assert (answered["type"], answered["of"]) == ("ack", "accept")
    fetched = await center.http.get(f"/v1/interactions/{call['id']}", headers=center.admin)
    assert fetched.json()["state"] == "assigned"


async def test_the_screen_pop_lists_the_customers_earlier_interactions_newest_first(
    center: Center,
) -> None:
    desk = await center.available(await center.agent("mei", billing=4))

    async def handle(disposition: str, **call: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        interaction = await center.call(**call)
        offer = await desk.next("offer")
        await desk.send(type="accept", offer_id=offer["offer_id"])
        await desk.next("assignment")
        await desk.send(type="complete", interaction_id=interaction["id"], disposition=disposition)
        await desk.next("ack")
        return interaction, offer["screen_pop"]

    first, first_pop = await handle("refunded", subject="Card declined")
    # The same customer again, by chat and identified by id this time.
    second, _ = await handle(
        "explained", channel="chat", customer_id=first["customer_id"], subject="Still declined"
    )
    third, pop = await handle("resolved", subject="Third time")

    assert first_pop["history"] == []  # a first contact has none
    assert [{k: v for k, v in h.items() if k != "created_at"} for h in pop["history"]] == [
        {
            "id": second["id"],
            "channel": "chat",
            "state": "completed",
            "subject": "Still declined",
            "disposition": "explained",
            "agent": "Mei",
        },
        {
            "id": first["id"],
            "channel": "voice",
            "state": "completed",
            "subject": "Card declined",
            "disposition": "refunded",
            "agent": "Mei",
        },
    ]
    assert pop["customer"]["id"] == first["customer_id"] == third["customer_id"]


async def test_a_retried_delivery_is_the_same_interaction(center: Center) -> None:
    first = await center.call(external_ref="call-7")
    again = await center.http.post(
        "/v1/interactions",
        json={
            "channel": "voice",
            "queue": "billing",
            "external_ref": "call-7",
            "contact": {"kind": "phone", "value": "13800138000"},
        },
        headers=center.admin,
    )
    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    listed = await center.http.get("/v1/interactions", headers=center.admin)
    assert listed.json()["total"] == 1


async def test_rejecting_returns_it_to_the_queue_for_another_agent(center: Center) -> None:
    mei_desk = await center.available(await center.agent("mei", billing=5))
    call = await center.call()
    first = await mei_desk.next("offer")
    tom_desk = await center.available(await center.agent("tom", billing=2))

    await mei_desk.send(type="reject", offer_id=first["offer_id"], reason="on a break soon")
    second = await tom_desk.next("offer")

    assert second["interaction_id"] == call["id"]
    assert second["offer_id"] != first["offer_id"]


async def test_completing_ends_the_interaction_and_frees_the_agent(center: Center) -> None:
    desk = await center.available(await center.agent("mei", billing=4))
    call = await center.call()
    offer = await desk.next("offer")
    await desk.send(type="accept", offer_id=offer["offer_id"])
    await desk.next("assignment")

    await desk.send(type="complete", interaction_id=call["id"], disposition="resolved")
    ack = await desk.next("ack")

    assert ack["detail"]["state"] == "completed"
    me = await center.http.get("/v1/agents?state=available", headers=center.admin)
    assert [a["username"] for a in me.json()["items"]] == ["mei"]


async def test_a_bad_message_gets_an_error_frame_naming_the_problem(center: Center) -> None:
    desk = await center.available(await center.agent("mei", billing=4))
    await desk.send(type="accept", offer_id="not-a-uuid")
    error = await desk.next("error")
    assert error["error"] == "validation_error"
    assert "offer_id" in error["detail"]


async def test_a_missed_offer_returns_to_the_queue_and_the_agent_goes_away(
    center: Center,
) -> None:
    desk = await center.available(await center.agent("mei", billing=4))
    call = await center.call()
    await desk.next("offer")

    withdrawn = await desk.next("offer_withdrawn", within=10)
    state = await desk.next("state")

    assert withdrawn["reason"] == "offer timed out"
    assert state["state"] == "away"
    fetched = await center.http.get(f"/v1/interactions/{call['id']}", headers=center.admin)
    assert fetched.json()["state"] == "queued"


async def test_reconnecting_replays_the_pending_offer(center: Center) -> None:
    mei = await center.agent("mei", billing=4)
    desk = await center.available(mei)
    await center.call()
    offer = await desk.next("offer")
    # A second socket takes over (a reload): the offer is still there, once, as held now (no
    # event id), with its screen pop read afresh: the pop the matcher built with the offer.
    second = await center.desk(mei, last_event_id=0)
    replayed = [f for f in second.frames if f["type"] == "offer"]
    assert [(f["offer_id"], f["event_id"]) for f in replayed] == [(offer["offer_id"], None)]
    assert replayed[0]["screen_pop"] == offer["screen_pop"]


async def test_the_screen_pop_shows_what_the_ivr_learned_live_and_replayed(
    center: Center,
) -> None:
    mei = await center.agent("mei", billing=4)
    desk = await center.available(mei)
    learned = {
        "path": ["welcome", "main-menu", "account", "enqueue-billing"],
        "keys": ["2"],
        "collected": {"account": "0012345678"},
        "account_verified": True,
        "language": "zh-CN",
        "self_service": ["balance heard"],
    }

    call = await center.call(external_ref="call-ivr", ivr=learned)
    offer = await desk.next("offer")

    assert offer["interaction_id"] == call["id"]
    assert offer["screen_pop"]["ivr"] == learned  # the digits as the caller typed them
    again = await center.desk(mei, last_event_id=0)  # a reload: the offer replayed, pop read
    replayed = [f for f in again.frames if f["type"] == "offer"]
    assert [f["offer_id"] for f in replayed] == [offer["offer_id"]]
    assert replayed[0]["screen_pop"]["ivr"] == learned
    assert replayed[0]["screen_pop"] == offer["screen_pop"]


async def test_a_reconnect_that_replays_more_than_the_send_queue_holds_reaches_ready(
    center: Center, database_url: str
) -> None:
    """The replay waits for room in the desk's queue (256 frames) rather than overflow it: a
    console back from a long absence would otherwise be closed on every reconnect."""
    mei = await center.agent("mei", billing=4)
    me = (await center.http.get("/v1/agents/me", headers=mei)).json()
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:  # a long call's progress, as a gateway reports it
        await connection.executemany(
            "INSERT INTO events (kind, subject_type, subject_id, actor, payload)"
            " VALUES ('interaction.progress', 'interaction', $1, 'test', $2::jsonb)",
            [(str(uuid.uuid4()), json.dumps({"agent_id": me["id"], "n": n})) for n in range(600)],
        )
    finally:
        await connection.close()

    desk = await center.desk(mei, last_event_id=0)

    replayed = [f["detail"]["n"] for f in desk.frames if f["type"] == "interaction_update"]
    assert replayed == list(range(600))


async def test_only_agents_open_a_desk(center: Center) -> None:
    token = center.admin["Authorization"].removeprefix("Bearer ")
    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with websockets.connect(f"{center.ws_url}/v1/desk/ws?token={token}") as socket:
            await socket.recv()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
        CloseCode.REFUSED,
        "an agent's token is needed",
    )


async def test_a_desk_gone_silent_is_sent_away_by_the_sweeper(
    center: Center, database_url: str
) -> None:
    """Rule 8: no heartbeat within the silence allowed and the agent leaves `available`.
    The last heartbeat is backdated in the presence table rather than waited for."""
    desk = await center.available(await center.agent("mei", billing=4))
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        # The hello and set_state are noted in memory and flushed within a second: a heartbeat
        # sent after them is flushed with or after them, so once it is in, nothing is pending
        # that would overwrite the backdating.
        sent = await connection.fetchval("SELECT clock_timestamp()")
        await desk.send(type="heartbeat")
        async with asyncio.timeout(10):
            while True:
                seen = await connection.fetchval(
                    "SELECT p.last_seen_at FROM agent_presence p"
                    " JOIN agents a ON a.id = p.agent_id JOIN users u ON u.id = a.user_id"
                    " WHERE u.username = 'mei'"
                )
                if seen >= sent:
                    break
                await asyncio.sleep(0.05)
        backdated = await connection.execute(
            "UPDATE agent_presence SET last_seen_at = now() - interval '1 hour'"
            " WHERE agent_id = (SELECT a.id FROM agents a JOIN users u ON u.id = a.user_id"
            " WHERE u.username = 'mei')"
        )
    finally:
        await connection.close()
    assert backdated == "UPDATE 1"

    state = await desk.next("state", within=10)
    if state["state"] == "available":  # the frame of its own set_state, sent before
        state = await desk.next("state", within=10)

    assert state["state"] == "away"
    assert state["reason"] == "no heartbeat"


async def test_the_hot_paths_notify_only_through_the_hubs_announcements(
    center: Center, database_url: str
) -> None:
    """Intake, the matcher and the desk commit their events without a NOTIFY each (each one
    would hold PostgreSQL's global notification lock across its commit); the hub that
    published them announces them to other replicas, from its own session."""
    desk = await center.available(await center.agent("mei", billing=4))
    customer = {"name": "Wang Fang", "phones": ["+86 138 0013 8000"]}  # written by the ORM
    created = await center.http.post("/v1/customers", json=customer, headers=center.admin)
    assert created.status_code == 201, created.text
    heard: list[tuple[int, int]] = []
    caught_up = asyncio.Event()
    newest = 1 << 62  # until the flow is over

    def note(_connection: object, pid: int, _channel: object, payload: str) -> None:
        announced = max(int(event_id) for event_id in payload.split(","))  # or one event's id
        heard.append((pid, announced))
        if announced >= newest:
            caught_up.set()

    listener = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await listener.add_listener(NOTIFY_CHANNEL, note)
        call = await center.call()
        offer = await desk.next("offer")
        await desk.send(type="accept", offer_id=offer["offer_id"])
        await desk.next("assignment")
        await desk.send(type="complete", interaction_id=call["id"], disposition="resolved")
        await desk.next("ack")
        newest = await listener.fetchval("SELECT max(id) FROM events")
        if heard and heard[-1][1] >= newest:
            caught_up.set()
        await asyncio.wait_for(caught_up.wait(), timeout=5)
        hubs = await listener.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1", HUB_APPLICATION
        )
    finally:
        await listener.close()
    assert {pid for pid, _ in heard} <= {row["pid"] for row in hubs}, heard


async def test_going_away_over_rest_returns_the_pending_offer_and_available_again_is_busy(
    center: Center,
) -> None:
    """The REST state change is the desk's: away withdraws what was offered, and available
    while still holding work is busy, not available."""
    mei = await center.agent("mei", billing=4)
    desk = await center.available(mei)
    me = (await center.http.get("/v1/agents/me", headers=mei)).json()
    first = await center.call(external_ref="call-a")
    offer = await desk.next("offer")

    away = await center.http.post(
        f"/v1/agents/{me['id']}/state", json={"state": "away", "reason": "break"}, headers=mei
    )
    assert away.status_code == 200, away.text
    assert (away.json()["state"], away.json()["state_reason"]) == ("away", "break")
    withdrawn = await desk.next("offer_withdrawn")
    assert withdrawn["offer_id"] == offer["offer_id"]
    assert withdrawn["reason"] == "break"
    fetched = await center.http.get(f"/v1/interactions/{first['id']}", headers=center.admin)
    assert fetched.json()["state"] == "queued"

    back = await center.http.post(
        f"/v1/agents/{me['id']}/state", json={"state": "available"}, headers=mei
    )
    assert back.status_code == 200, back.text
    again = await desk.next("offer")  # the same call, offered afresh
    assert again["interaction_id"] == first["id"]
    await desk.send(type="accept", offer_id=again["offer_id"])
    await desk.next("assignment")
    holding = await center.http.post(
        f"/v1/agents/{me['id']}/state", json={"state": "available"}, headers=mei
    )
    assert holding.json()["state"] == "busy"


async def test_a_deactivated_agent_goes_offline_and_its_offer_returns_to_the_queue(
    center: Center,
) -> None:
    mei = await center.agent("mei", billing=4)
    desk = await center.available(mei)
    user_id = (await center.http.get("/v1/agents/me", headers=mei)).json()["user_id"]
    call = await center.call()
    offer = await desk.next("offer")

    patched = await center.http.patch(
        f"/v1/users/{user_id}", json={"is_active": False}, headers=center.admin
    )
    assert patched.status_code == 200, patched.text

    withdrawn = await desk.next("offer_withdrawn", within=4)  # the sweep runs once a second
    assert (withdrawn["offer_id"], withdrawn["reason"]) == (offer["offer_id"], "deactivated")
    state = await desk.next("state")
    assert (state["state"], state["reason"]) == ("offline", "deactivated")
    fetched = await center.http.get(f"/v1/interactions/{call['id']}", headers=center.admin)
    assert fetched.json()["state"] == "queued"


async def test_the_live_assignment_shows_the_interaction_as_a_replay_and_the_api_do(
    center: Center,
) -> None:
    """The live frame carries the row `routing_accept` returned; a replayed one reads it: the
    two, and the REST API, must agree to the microsecond."""
    mei = await center.agent("mei", billing=4)
    desk = await center.available(mei)
    call = await center.call(subject="Refund", external_ref="call-live")
    offer = await desk.next("offer")
    await desk.send(type="accept", offer_id=offer["offer_id"])
    live = await desk.next("assignment")

    again = await center.desk(mei, last_event_id=offer["event_id"])
    replayed = [f for f in again.frames if f["type"] == "assignment"]
    fetched = await center.http.get(f"/v1/interactions/{call['id']}", headers=center.admin)

    assert [f.get("event_id") for f in replayed] == [None]  # once, as held now
    assert replayed[0]["interaction"] == live["interaction"]
    assert live["interaction"] == fetched.json()
    assert live["interaction"]["state"] == "assigned"
