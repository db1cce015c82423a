"""Arrivals offered as they come in (app/routing/arrivals.py): when they are, when they wait
for a pass instead, and why two writers never share one agent's room.

The matcher's tick is an hour here: a pass runs only when something wakes it, so the tests
know what the matcher's directory has read and what it has not.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app.core import pg
from app.core.channels import Channel
from app.core.events import Events
from app.core.settings import Settings
from app.interactions import intake
from app.interactions.intake import Place
from app.interactions.schemas import InteractionCreate
from app.routing import arrivals, policy
from app.routing.directory import AgentDirectory
from app.routing.matcher import ArrivalView
from app.routing.offers import NewOffer, OfferWriter, Written
from app.routing.passes import run_pass
from app.routing.waiting import QueueBook, QueueSettings
from tests.support import (
    CountedPasses,
    create_skills,
    present_desk,
    settings_with_passes_on_demand,
    until_waiting_for_a_lock,
)

Headers = dict[str, str]
SILENCE = timedelta(seconds=15)
CONTACT = {"kind": "phone", "value": "+86 138 0013 8000"}
ADAPTER = "gateway:voice-adapter"


@pytest.fixture
def settings() -> Settings:
    return settings_with_passes_on_demand()


async def _mei(
    client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection, *, chats: int = 3
) -> uuid.UUID:
    """A billing queue and Mei, available and present, who can hold `chats` chats."""
    await create_skills(client, admin, "billing")
    queue = {"name": "billing", "required_skills": [{"skill": "billing", "level": 1}]}
    assert (await client.post("/v1/queues", json=queue, headers=admin)).status_code == 201
    body = {
        "username": "mei",
        "display_name": "Mei",
        "skills": [{"skill": "billing", "level": 3}],
        "capacity": {"voice": 1, "chat": chats, "email": 2},
    }
    response = await client.post("/v1/agents", json=body, headers=admin)
    assert response.status_code == 201, response.text
    mei = uuid.UUID(response.json()["id"])
    await present_desk(connection, mei)
    return mei


async def _chat(client: httpx.AsyncClient, admin: Headers, reference: str) -> dict[str, Any]:
    body = {"channel": "chat", "queue": "billing", "contact": CONTACT, "external_ref": reference}
    response = await client.post("/v1/interactions", json=body, headers=admin)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _offered_to(connection: asyncpg.Connection, interaction_id: str) -> list[uuid.UUID]:
    rows = await connection.fetch(
        "SELECT agent_id FROM offers WHERE interaction_id = $1::uuid AND state = 'pending'",
        interaction_id,
    )
    return [row["agent_id"] for row in rows]


async def _until(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    for _ in range(int(within / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not so within the time allowed")


async def _first_offered(
    client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection, mei: uuid.UUID
) -> dict[str, Any]:
    """A first chat, offered to Mei by a pass: no pass has read the billing queue's settings
    yet (it reads them with waiting work), so it waits for one."""
    first = await _chat(client, admin, "chat-1")
    assert first["state"] == "queued"

    async def offered() -> bool:
        return await _offered_to(connection, first["id"]) == [mei]

    await _until(offered)
    return first


async def _until_the_directory_is_current(
    app: FastAPI, connection: asyncpg.Connection, mei: uuid.UUID
) -> None:
    """Wake passes until the matcher's directory holds Mei's row as it is now."""
    matcher = app.state.matcher

    async def current() -> bool:
        matcher.wake()
        view = matcher.arrival_view(
            await connection.fetchval("SELECT version FROM queues_settings_version")
        )
        version = await _row_version(connection, mei)
        return (
            view is not None
            and mei in {agent.id for agent in view.directory.kept(SILENCE)}
            and view.directory.version_read(mei) == version
        )

    await _until(current)


async def _kinds_logged(connection: asyncpg.Connection, interaction_id: str) -> list[str]:
    rows = await connection.fetch(
        "SELECT kind FROM events WHERE subject_id = $1 ORDER BY id", interaction_id
    )
    return [row["kind"] for row in rows]


async def test_an_arrival_with_a_free_agent_is_offered_within_its_request(
    app: FastAPI, client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    mei = await _mei(client, admin, connection)
    await _first_offered(client, admin, connection, mei)
    await _until_the_directory_is_current(app, connection, mei)

    second = await _chat(client, admin, "chat-2")

    # Offered before the response was written: no pass could have done that.
    assert second["state"] == "offered"
    assert await _offered_to(connection, second["id"]) == [mei]
    assert await _kinds_logged(connection, second["id"]) == [
        "interaction.queued",
        "interaction.offered",
    ]
    matched = await connection.fetchval(
        "SELECT matched->'skills' FROM offers WHERE interaction_id = $1::uuid", second["id"]
    )
    assert matched == {"billing": 3}


async def test_an_arrival_waits_for_a_pass_when_the_agent_changed_since_it_was_read(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: Headers,
    connection: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Mei's capacity changed behind the matcher's back (no event, no pass since): she still has
    room, but the arrival's own write finds her row moved and only queues the arrival.

    Passes are held from the update until the arrival has been written: a pass in between (the
    one the last wake of `_until_the_directory_is_current` asked for, run late on a busy
    machine) would read Mei afresh, and the arrival would rightly be offered at once."""
    passes = CountedPasses.installed(monkeypatch)
    mei = await _mei(client, admin, connection)
    await _first_offered(client, admin, connection, mei)
    await _until_the_directory_is_current(app, connection, mei)
    await passes.hold()
    read = await _row_version(connection, mei)
    await connection.execute("UPDATE agents SET capacity_chat = 2 WHERE id = $1", mei)
    view = app.state.matcher.arrival_view(
        await connection.fetchval("SELECT version FROM queues_settings_version")
    )
    assert view is not None  # the arrival is weighed at once...
    assert view.directory.version_read(mei) == read  # ...against Mei's row as read before
    assert await _row_version(connection, mei) != read  # the update, which moved it

    second = await _chat(client, admin, "chat-2")

    assert second["state"] == "queued"
    passes.let_go()

    async def offered() -> bool:  # the pass it woke reads Mei afresh and offers it
        return await _offered_to(connection, second["id"]) == [mei]

    await _until(offered)


async def test_an_arrival_waits_when_other_work_is_queued_that_the_last_pass_did_not_see(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: Headers,
    connection: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    passes = CountedPasses.installed(monkeypatch)
    mei = await _mei(client, admin, connection)
    first = await _first_offered(client, admin, connection, mei)
    await _until_the_directory_is_current(app, connection, mei)
    # Queued behind the matcher's back: no event, and no pass reads it before the arrival (a
    # late one would offer it to Mei, and the arrival would find nothing else queued).
    await passes.hold()
    earlier = await connection.fetchval(
        "INSERT INTO interactions (id, channel, queue_id, customer_id, priority, needs,"
        " subject, summary, state, waiting_since, created_at, updated_at)"
        " SELECT gen_random_uuid(), 'chat', queue_id, customer_id, 0, needs, '', '', 'queued',"
        " now(), now(), now() FROM interactions WHERE id = $1::uuid RETURNING id::text",
        first["id"],
    )

    second = await _chat(client, admin, "chat-2")

    assert second["state"] == "queued"
    passes.let_go()

    async def both_offered() -> bool:
        return all([await _offered_to(connection, i) == [mei] for i in (earlier, second["id"])])

    await _until(both_offered)
    order = await connection.fetch(
        "SELECT subject_id FROM events WHERE kind = 'interaction.offered'"
        " AND subject_id = ANY($1::text[]) ORDER BY id",
        [earlier, second["id"]],
    )
    assert [row["subject_id"] for row in order] == [earlier, second["id"]]  # oldest first


def _arrival(first: dict[str, Any], reference: str) -> intake.Arrival:
    queue_id, customer_id = uuid.UUID(first["queue_id"]), uuid.UUID(first["customer_id"])
    data = InteractionCreate.model_validate(
        {
            "channel": "chat",
            "queue": str(queue_id),
            "customer_id": str(customer_id),
            "external_ref": reference,
        }
    )
    return intake.Arrival(
        id=uuid.uuid4(),
        data=data,
        queue_id=queue_id,
        customer_id=customer_id,
        needs=[{"skill": "billing", "level": 1}],
        moment=pg.now(),
        actor="test",
        tier="iron",
        last_agent_id=None,
        last_agent_at=None,
        queues_version=None,
    )


def _proposal(new: intake.Arrival, agent_id: uuid.UUID, read: int) -> arrivals.Proposal:
    """What the policy would propose: Mei, as her row was read at `read`."""
    match = policy.Match(new.id, agent_id, 0.0, {"billing": 3}, "the test's choice")
    item = arrivals.waiting_item(new)
    offer = NewOffer(uuid.uuid4(), match, item, new.moment + SILENCE, agent_read=read)
    return arrivals.Proposal(offer, known=[])


async def _place(
    connection: asyncpg.Connection, arrival: intake.Arrival, proposal: arrivals.Proposal
) -> Written | None:
    """What an arrival's request does: the arrival and its offer through the one writer,
    landing only while nothing else waits; the offer as written, if it landed."""
    written = await OfferWriter().write_arrival(
        connection, proposal.offer, arrival.arguments(), arrival.moment, only_waiting=[]
    )
    assert written is not None
    return written.offer


async def _state(connection: asyncpg.Connection, arrival: intake.Arrival) -> str:
    state: str = await connection.fetchval(
        "SELECT state FROM interactions WHERE id = $1", arrival.id
    )
    return state


async def _row_version(connection: asyncpg.Connection, agent_id: uuid.UUID) -> int:
    version: int = await connection.fetchval(
        "SELECT routing_version FROM agents WHERE id = $1", agent_id
    )
    return version


async def test_of_two_arrivals_counting_on_one_room_only_the_first_is_offered(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: Headers,
    connection: asyncpg.Connection,
    database_url: str,
) -> None:
    """Both read Mei with room for one more chat; the second waits for the first's row lock,
    then finds her row moved and offers nothing: its arrival stays queued."""
    mei = await _mei(client, admin, connection, chats=2)
    first = await _first_offered(client, admin, connection, mei)
    await app.state.matcher.stop()  # only the two arrivals write offers now
    read = await _row_version(connection, mei)
    one, two = _arrival(first, "chat-a"), _arrival(first, "chat-b")
    other = await pg.connect(database_url)
    try:
        writing = other.transaction()
        await writing.start()
        placed_one = await _place(other, one, _proposal(one, mei, read))
        placing_two = asyncio.create_task(_place(connection, two, _proposal(two, mei, read)))
        await until_waiting_for_a_lock(other, connection.get_server_pid())
        await writing.commit()
        placed_two = await placing_two
    finally:
        await other.close()

    assert placed_one is not None
    assert placed_one.offer.match.agent_id == mei
    assert placed_two is None  # her row had moved: nothing written
    assert await _state(connection, two) == "queued"
    assert await _kinds_logged(connection, str(two.id)) == ["interaction.queued"]
    pending = await connection.fetchval(
        "SELECT count(*) FROM offers WHERE agent_id = $1 AND state = 'pending'", mei
    )
    assert pending == 2  # the first contact's and one; her capacity


async def test_a_pass_that_read_an_agent_before_an_arrival_took_its_room_offers_nothing(
    app: FastAPI, client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    """The matcher's write and an arrival's write lock the same row and check the same version:
    a pass that read Mei before an arrival was offered to her skips its pair."""
    mei = await _mei(client, admin, connection, chats=2)
    first = await _first_offered(client, admin, connection, mei)
    await app.state.matcher.stop()  # the test runs the pass (the arrivals' inserts notify)
    directory = AgentDirectory()
    await directory.refresh(connection)  # Mei read with room for one more chat
    arrival = _arrival(first, "chat-a")
    placed = await _place(connection, arrival, _proposal(arrival, mei, directory.version_read(mei)))
    assert placed is not None
    assert placed.offer.match.agent_id == mei
    waiting = _arrival(first, "chat-b")
    assert await intake.insert(connection, waiting) is not None

    result = await run_pass(
        connection, Events(), directory, QueueBook(), OfferWriter(), silence=SILENCE
    )

    assert (result.offers, result.skipped) == (0, 1)
    assert await _offered_to(connection, str(waiting.id)) == []


async def test_a_burst_of_arrivals_never_fills_an_agent_past_her_capacity(
    client: httpx.AsyncClient,
    admin: Headers,
    connection: asyncpg.Connection,
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    passes = CountedPasses.installed(monkeypatch)
    mei = await _mei(client, admin, connection, chats=3)
    await _first_offered(client, admin, connection, mei)
    await _until_the_directory_is_current(app, connection, mei)

    burst = await asyncio.gather(*(_chat(client, admin, f"burst-{n}") for n in range(12)))

    async def settled() -> bool:
        app.state.matcher.wake()
        pending: int = await connection.fetchval(
            "SELECT count(*) FROM offers WHERE agent_id = $1 AND state = 'pending'", mei
        )
        return pending == 3

    await _until(settled)
    await passes.one_more(app.state.matcher)  # one that would over-fill her has written now
    states = await connection.fetch(
        "SELECT i.state, count(o.id) AS pending FROM interactions i"
        " LEFT JOIN offers o ON o.interaction_id = i.id AND o.state = 'pending'"
        " WHERE i.id = ANY($1::uuid[]) GROUP BY i.id, i.state",
        [created["id"] for created in burst],
    )
    assert len(states) == 12  # none lost
    assert sorted((row["state"], row["pending"]) for row in states) == (
        [("offered", 1)] * 2 + [("queued", 0)] * 10
    )


async def test_a_standing_that_did_not_make_an_offer_writes_against_the_row_it_read(
    app: FastAPI, client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    """An offer the standing did not make (here an arrival matched against waiting work, which
    the directory keeps at once) fills Mei; the standing still counts her as it read her, room
    included, but its pick is written against the row as that read saw it, and does not land."""
    mei = await _mei(client, admin, connection, chats=2)
    first = await _first_offered(client, admin, connection, mei)  # she holds one of two
    await app.state.matcher.stop()  # nothing but the test writes offers now
    directory = AgentDirectory()
    await directory.refresh(connection)
    directory.standing(SILENCE)  # built now: room for one more chat
    other = _arrival(first, "chat-a")
    read = directory.version_read(mei)
    placed = await _place(connection, other, _proposal(other, mei, read))
    assert placed is not None
    directory.offered(mei, [Channel.chat], read, placed.agent_version)  # she is full now

    arrival = _arrival(first, "chat-b")
    settings = QueueSettings(policy.QueueRules(arrival.queue_id, {}, 0.0), SILENCE)
    view = ArrivalView(directory, {arrival.queue_id: settings}, (), SILENCE)
    proposal = arrivals.Arrivals(app.state.matcher, OfferWriter())._propose(view, arrival)
    assert proposal is not None
    assert proposal.offer.match.agent_id == mei  # the standing still sees room
    written = await _place(connection, arrival, proposal)

    assert written is None
    assert await _state(connection, arrival) == "queued"
    pending = await connection.fetchval(
        "SELECT count(*) FROM offers WHERE agent_id = $1 AND state = 'pending'", mei
    )
    assert pending == 2


async def _received(
    app: FastAPI, first: dict[str, Any], reference: str, place: Place, *, channel: str = "chat"
) -> intake.Received:
    """An interaction of `first`'s customer, handed to intake by a channel adapter with its
    place in the line."""
    data = InteractionCreate.model_validate(
        {
            "channel": channel,
            "queue": "billing",
            "customer_id": first["customer_id"],
            "external_ref": reference,
        }
    )
    received: intake.Received = await app.state.intake.receive(data, actor=ADAPTER, place=place)
    assert received.created
    return received


async def _offers_of(connection: asyncpg.Connection, interaction_id: uuid.UUID) -> int:
    count: int = await connection.fetchval(
        "SELECT count(*) FROM offers WHERE interaction_id = $1", interaction_id
    )
    return count


async def test_a_callback_keeps_the_place_of_the_call_it_replaces(
    app: FastAPI, client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    """A call queued before the callback, of the same priority and customer, is served after
    it: the callback waits from when the call it replaces began waiting."""
    mei = await _mei(client, admin, connection)  # room for one call
    await app.state.matcher.stop()  # the test runs the pass: nobody is offered anything before
    body = {"channel": "voice", "queue": "billing", "contact": CONTACT, "external_ref": "call-2"}
    response = await client.post("/v1/interactions", json=body, headers=admin)
    assert response.status_code == 201, response.text
    call = response.json()
    began = datetime.fromisoformat(call["waiting_since"]) - timedelta(minutes=3)

    callback = await _received(app, call, "callback-1", Place(began), channel="callback")

    assert callback.interaction.waiting_since == began
    assert callback.interaction.created_at > datetime.fromisoformat(call["created_at"])
    result = await run_pass(
        connection, Events(), AgentDirectory(), QueueBook(), OfferWriter(), silence=SILENCE
    )
    assert result.offers == 1
    assert await _offered_to(connection, str(callback.interaction.id)) == [mei]
    assert await _offered_to(connection, call["id"]) == []
    fetched = await client.get(f"/v1/interactions/{callback.interaction.id}", headers=admin)
    assert datetime.fromisoformat(fetched.json()["waiting_since"]) == began


async def test_work_held_back_is_offered_neither_at_once_nor_by_a_pass_and_holds_up_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: Headers,
    connection: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A voicemail's callback, due in an hour, waits in line ahead of a later chat (it began
    waiting earlier). Mei, the only agent, has room for one more; the later chat is offered to
    her within its own request (at once: the one held back stops no arrival from being placed
    at once), and the callback is not offered at all: neither when it arrived (Mei was free and
    current then) nor by the pass its arrival woke (which would have served it, had it read it:
    Mei still had room after it, as the chat's offer shows)."""
    passes = CountedPasses.installed(monkeypatch)
    mei = await _mei(client, admin, connection, chats=2)
    first = await _first_offered(client, admin, connection, mei)  # she holds one of two
    await _until_the_directory_is_current(app, connection, mei)
    now = pg.now()
    place = Place(waiting_since=now - timedelta(minutes=5), not_before=now + timedelta(hours=1))

    held = await _received(app, first, "voicemail-1", place)

    assert held.interaction.state == "queued"  # not offered at once, though Mei was free
    assert held.interaction.not_before == place.not_before
    await passes.one_more(app.state.matcher)  # the pass its arrival woke has run
    await _until_the_directory_is_current(app, connection, mei)
    later = await _chat(client, admin, "chat-later")
    assert later["state"] == "offered"  # at once: the one held back holds up no arrival
    assert await _offered_to(connection, later["id"]) == [mei]
    await passes.one_more(app.state.matcher)  # a pass after both: Mei is full now anyway
    assert await _offers_of(connection, held.interaction.id) == 0
    assert await _state_of(connection, held.interaction.id) == "queued"


async def _state_of(connection: asyncpg.Connection, interaction_id: uuid.UUID) -> str:
    state: str = await connection.fetchval(
        "SELECT state FROM interactions WHERE id = $1", interaction_id
    )
    return state


def _ticking() -> Settings:
    """Passes on a tick of 50 ms: what offers work once it is due, with no event to wake one."""
    return settings_with_passes_on_demand().model_copy(update={"matcher_tick_seconds": 0.05})


@pytest.mark.parametrize("settings", [_ticking()])
async def test_work_held_back_is_offered_once_due_with_no_event_to_wake_a_pass(
    app: FastAPI, client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    mei = await _mei(client, admin, connection, chats=2)
    first = await _first_offered(client, admin, connection, mei)  # she has room for one more
    due = pg.now() + timedelta(seconds=1)

    held = await _received(app, first, "voicemail-1", Place(pg.now(), not_before=due))

    assert held.interaction.state == "queued"

    async def offered() -> bool:
        return await _offered_to(connection, str(held.interaction.id)) == [mei]

    await _until(offered, within=10)
    offered_at = await connection.fetchval(
        "SELECT created_at FROM offers WHERE interaction_id = $1", held.interaction.id
    )
    assert offered_at >= due


async def test_a_pass_with_nobody_free_counts_work_held_back_as_nothing_waiting(
    app: FastAPI, client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    """With nobody free a pass only asks whether anything waits (what decides whether freed
    room wakes a pass): work held back until later does not."""
    await _mei(client, admin, connection)
    await app.state.matcher.stop()
    await connection.execute("UPDATE agents SET state = 'away'")
    body = {"channel": "chat", "queue": "billing", "contact": CONTACT, "external_ref": "chat-1"}
    response = await client.post("/v1/interactions", json=body, headers=admin)
    assert response.status_code == 201, response.text
    chat = response.json()
    await connection.execute(
        "UPDATE interactions SET not_before = now() + interval '1 hour' WHERE id = $1::uuid",
        chat["id"],
    )

    async def left_unread() -> bool:
        result = await run_pass(
            connection, Events(), AgentDirectory(), QueueBook(), OfferWriter(), silence=SILENCE
        )
        return result.left_unread

    assert not await left_unread()
    await connection.execute(
        "UPDATE interactions SET not_before = now() WHERE id = $1::uuid", chat["id"]
    )
    assert await left_unread()
