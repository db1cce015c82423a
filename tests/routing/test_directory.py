"""The matcher's agent directory keeps agents between passes, yet never routes on stale ones."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app.core import pg
from app.core.channels import Channel
from app.core.events import Events
from app.core.hub import asyncpg_dsn
from app.routing import waiting
from app.routing.directory import SKILLS_OF, AgentDirectory
from app.routing.offers import OfferWriter, new_offer
from app.routing.passes import PassResult, run_pass
from app.routing.rules import Match, WaitingInteraction
from app.routing.waiting import QueueBook
from tests.support import create_skills, present_desk

Headers = dict[str, str]
SILENCE = timedelta(seconds=15)


async def _agent(
    client: httpx.AsyncClient, admin: Headers, skills: list[dict[str, Any]], **more: Any
) -> str:
    body = {"username": "lin", "display_name": "Lin", "skills": skills, **more}
    response = await client.post("/v1/agents", json=body, headers=admin)
    assert response.status_code == 201, response.text
    agent_id: str = response.json()["id"]
    return agent_id


async def _present(connection: asyncpg.Connection, agent_id: str) -> None:
    await present_desk(connection, agent_id)


async def _skills_seen(
    directory: AgentDirectory, connection: asyncpg.Connection
) -> list[dict[str, int]]:
    return [dict(agent.skills) for agent in await directory.routable(connection, SILENCE)]


async def test_replaced_skills_and_a_renamed_skill_reach_the_next_pass(
    client: httpx.AsyncClient, admin: Headers, database_url: str
) -> None:
    await create_skills(client, admin, "billing", "mandarin")
    agent_id = await _agent(client, admin, [{"skill": "billing", "level": 4}])
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await _present(connection, agent_id)
        directory = AgentDirectory()
        assert await _skills_seen(directory, connection) == [{"billing": 4}]

        replaced = await client.put(
            f"/v1/agents/{agent_id}/skills",
            json=[{"skill": "mandarin", "level": 5}],
            headers=admin,
        )
        assert replaced.status_code == 200, replaced.text
        directory.mark([uuid.UUID(agent_id)])  # what the matcher does on its event
        assert await _skills_seen(directory, connection) == [{"mandarin": 5}]

        skills = (await client.get("/v1/skills", headers=admin)).json()["items"]
        mandarin = next(s for s in skills if s["name"] == "mandarin")
        renamed = await client.patch(
            f"/v1/skills/{mandarin['id']}", json={"name": "chinese"}, headers=admin
        )
        assert renamed.status_code == 200, renamed.text
        directory.forget()  # what the matcher does on the `skill.updated` event
        assert await _skills_seen(directory, connection) == [{"chinese": 5}]
    finally:
        await connection.close()


async def test_an_agent_without_room_or_presence_is_not_routable(
    client: httpx.AsyncClient, admin: Headers, database_url: str
) -> None:
    await create_skills(client, admin, "billing")
    agent_id = await _agent(client, admin, [{"skill": "billing", "level": 2}])
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        directory = AgentDirectory(read_all_every=0)  # every call reads everyone
        assert await _skills_seen(directory, connection) == []  # never connected
        await _present(connection, agent_id)
        assert len(await directory.routable(connection, SILENCE)) == 1
        await connection.execute(
            "UPDATE agent_presence SET last_seen_at = now() - $2::interval"
            " WHERE agent_id = $1::uuid",
            agent_id,
            SILENCE + timedelta(seconds=1),
        )
        assert await directory.routable(connection, SILENCE) == []  # gone silent
        await _present(connection, agent_id)
        assert len(await directory.routable(connection, SILENCE)) == 1
        await connection.execute(
            "UPDATE agents SET capacity_voice = 0, capacity_chat = 0, capacity_email = 0,"
            " updated_at = now() WHERE id = $1::uuid",
            agent_id,
        )
        assert await directory.routable(connection, SILENCE) == []
    finally:
        await connection.close()


class WatchesSkillReads:
    """A connection that counts the directory's reads of skills and can act at the first one
    (as the matcher's listener does when a skill is renamed while a pass is reading)."""

    def __init__(
        self, connection: asyncpg.Connection, at_first_read: Callable[[], None] = lambda: None
    ) -> None:
        self.connection, self.at_first_read, self.skill_reads = connection, at_first_read, 0

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        if query == SKILLS_OF:
            self.skill_reads += 1
            if self.skill_reads == 1:
                self.at_first_read()
        rows: list[asyncpg.Record] = await self.connection.fetch(query, *args)
        return rows


async def test_forgetting_in_the_middle_of_a_read_loses_no_agent(
    client: httpx.AsyncClient, admin: Headers, database_url: str
) -> None:
    await create_skills(client, admin, "billing")
    ids = []
    for name in ("lin", "mo"):
        body = {
            "username": name,
            "display_name": name,
            "skills": [{"skill": "billing", "level": 3}],
        }
        response = await client.post("/v1/agents", json=body, headers=admin)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        for agent_id in ids:
            await _present(connection, agent_id)
        directory = AgentDirectory()
        assert len(await directory.routable(connection, SILENCE)) == 2
        await connection.execute(  # as replacing its skills does
            "UPDATE agents SET skills_version = skills_version + 1 WHERE id = $1::uuid", ids[0]
        )
        directory.mark([uuid.UUID(ids[0])])
        watching = WatchesSkillReads(connection, at_first_read=directory.forget)
        agents = await directory.routable(cast(asyncpg.Connection, watching), SILENCE)
        assert watching.skill_reads == 2  # the forget made it go round for everyone
        assert sorted(str(a.id) for a in agents) == sorted(ids)
        assert all(dict(a.skills) == {"billing": 3} for a in agents)
    finally:
        await connection.close()


async def test_a_change_of_state_costs_no_second_read_of_skills(
    client: httpx.AsyncClient, admin: Headers, database_url: str
) -> None:
    await create_skills(client, admin, "billing")
    agent_id = await _agent(client, admin, [{"skill": "billing", "level": 3}])
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await _present(connection, agent_id)
        counting = WatchesSkillReads(connection)
        directory = AgentDirectory()
        reader = cast(asyncpg.Connection, counting)
        assert len(await directory.routable(reader, SILENCE)) == 1
        assert counting.skill_reads == 1
        await connection.execute(
            "UPDATE agents SET state = 'busy', updated_at = now() WHERE id = $1::uuid", agent_id
        )
        directory.mark([uuid.UUID(agent_id)])
        (agent,) = await directory.routable(reader, SILENCE)
        assert counting.skill_reads == 1  # the row moved, its skills did not
        assert dict(agent.skills) == {"billing": 3}
    finally:
        await connection.close()


@pytest.fixture
async def routing_by_hand(
    app: FastAPI, client: httpx.AsyncClient, admin: Headers, database_url: str
) -> AsyncIterator[asyncpg.Connection]:
    """One agent with room for a single chat, present, and the app's own matcher stopped: the
    test runs the passes."""
    await app.state.matcher.stop()
    await create_skills(client, admin, "billing")
    queue = {"name": "billing", "required_skills": [{"skill": "billing", "level": 1}]}
    assert (await client.post("/v1/queues", json=queue, headers=admin)).status_code == 201
    agent_id = await _agent(
        client,
        admin,
        [{"skill": "billing", "level": 3}],
        capacity={"voice": 1, "chat": 1, "email": 1},
    )
    connection = await pg.connect(database_url)
    try:
        await _present(connection, agent_id)
        yield connection
    finally:
        await connection.close()


async def _chat(client: httpx.AsyncClient, admin: Headers, visitor: str) -> str:
    body = {"channel": "chat", "queue": "billing", "contact": {"kind": "chat", "value": visitor}}
    response = await client.post("/v1/interactions", json=body, headers=admin)
    assert response.status_code == 201, response.text
    interaction_id: str = response.json()["id"]
    return interaction_id


async def _pass(connection: asyncpg.Connection, directory: AgentDirectory) -> PassResult:
    return await run_pass(
        connection, Events(), directory, QueueBook(), OfferWriter(), silence=SILENCE
    )


# Everyone is read again once a second by default: these tests must not lean on that.
NEVER_ALL_AGAIN = 3600.0


async def test_the_pass_after_an_offer_sees_the_load_it_added(
    routing_by_hand: asyncpg.Connection, client: httpx.AsyncClient, admin: Headers
) -> None:
    directory = AgentDirectory(read_all_every=NEVER_ALL_AGAIN)
    await _chat(client, admin, "visitor-1")
    assert (await _pass(routing_by_hand, directory)).offers == 1
    await _chat(client, admin, "visitor-2")

    # Well within the second between two reads of everyone: the agent kept from the first
    # pass had no load, yet its one chat is taken now.
    second = await _pass(routing_by_hand, directory)

    assert (second.offers, second.left_waiting) == (0, 1)
    pending = await routing_by_hand.fetchval("SELECT count(*) FROM offers WHERE state = 'pending'")
    assert pending == 1


async def test_the_pass_after_an_offer_is_withdrawn_sees_the_room_it_freed(
    routing_by_hand: asyncpg.Connection, client: httpx.AsyncClient, admin: Headers
) -> None:
    """The offer is withdrawn (its caller hung up) before any pass read its agent again: the
    next read finds the load as it was before the offer, the same row version, and must not
    take it for the row kept, which counts the offer."""
    directory = AgentDirectory(read_all_every=NEVER_ALL_AGAIN)
    first = await _chat(client, admin, "visitor-1")
    assert (await _pass(routing_by_hand, directory)).offers == 1
    lin = await routing_by_hand.fetchval(
        "UPDATE offers SET state = 'withdrawn' WHERE interaction_id = $1::uuid RETURNING agent_id",
        first,
    )
    await routing_by_hand.execute(
        "UPDATE interactions SET state = 'abandoned' WHERE id = $1::uuid", first
    )
    directory.mark([lin])  # what the matcher does on the withdrawal's event
    await _chat(client, admin, "visitor-2")

    assert (await _pass(routing_by_hand, directory)).offers == 1


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE agents SET state = 'away'",  # as written by hand: no updated_at, no event
        "UPDATE agents SET capacity_chat = 0, updated_at = now()",
        "UPDATE users SET is_active = false WHERE username = 'lin'",
    ],
)
async def test_no_offer_goes_to_an_agent_changed_after_the_directory_read_them(
    routing_by_hand: asyncpg.Connection, client: httpx.AsyncClient, admin: Headers, change: str
) -> None:
    directory = AgentDirectory(read_all_every=NEVER_ALL_AGAIN)
    assert len(await directory.routable(routing_by_hand, SILENCE)) == 1
    await routing_by_hand.execute(change)  # no event heard of it yet
    interaction_id = await _chat(client, admin, "visitor-1")

    result = await _pass(routing_by_hand, directory)

    assert (result.offers, result.skipped) == (0, 1)  # turned down by the write itself
    state = await routing_by_hand.fetchval(
        "SELECT state FROM interactions WHERE id = $1::uuid", interaction_id
    )
    assert state == "queued"
    assert await routing_by_hand.fetchval("SELECT count(*) FROM offers") == 0


async def test_a_pass_with_nobody_free_leaves_the_backlog_unread_yet_says_it_waits(
    routing_by_hand: asyncpg.Connection, client: httpx.AsyncClient, admin: Headers
) -> None:
    """Everyone away: the pass reads no waiting work (a backlog of thousands would be read and
    weighed for nothing on every arrival), but says work waits, so a freed agent wakes a pass."""
    directory = AgentDirectory(read_all_every=NEVER_ALL_AGAIN)
    await routing_by_hand.execute("UPDATE agents SET state = 'away', updated_at = now()")
    directory.forget()  # what the matcher does when it hears nothing for long
    first = await _chat(client, admin, "visitor-1")
    await _chat(client, admin, "visitor-2")

    idle = await _pass(routing_by_hand, directory)

    assert (idle.offers, idle.left, idle.left_unread, idle.left_waiting) == (0, (), True, 1)

    lin = await routing_by_hand.fetchval(
        "UPDATE agents SET state = 'available', updated_at = now() RETURNING id"
    )
    directory.mark([lin])  # what the matcher does on her `agent.state_changed`
    back = await _pass(routing_by_hand, directory)

    assert (back.offers, back.left_unread, back.left_waiting) == (1, False, 1)
    offered = await routing_by_hand.fetchval("SELECT interaction_id::text FROM offers")
    assert offered == first  # the longest waiting first


async def test_a_pass_with_nobody_free_and_nothing_queued_says_nothing_waits(
    routing_by_hand: asyncpg.Connection,
) -> None:
    await routing_by_hand.execute("UPDATE agents SET state = 'away', updated_at = now()")

    idle = await _pass(routing_by_hand, AgentDirectory(read_all_every=NEVER_ALL_AGAIN))

    assert (idle.offers, idle.left_unread, idle.left_waiting) == (0, False, 0)


async def test_an_offer_landing_while_a_pass_reads_keeps_that_pass_off_its_agent(
    routing_by_hand: asyncpg.Connection,
    client: httpx.AsyncClient,
    admin: Headers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pass weighs the agents as it began; while it reads the waiting work (an await), an
    arrival's offer of a chat lands on Lin and the directory keeps her new row, as the
    arrivals do (`directory.offered`). The pass had her with nothing held, so its offer of a
    call to her is written against the row it weighed, and must not land: a call excludes
    chats (DESIGN.md, rule 2), and she would hold both."""
    directory = AgentDirectory(read_all_every=NEVER_ALL_AGAIN)
    lin = await routing_by_hand.fetchval("SELECT id FROM agents")
    customer = await client.post("/v1/customers", json={"name": "Ann"}, headers=admin)
    body = {"channel": "voice", "queue": "billing", "customer_id": customer.json()["id"]}
    call = await client.post("/v1/interactions", json=body, headers=admin)
    assert call.status_code == 201, call.text
    read_the_waiting_work = waiting.waiting_items
    landed: list[int] = []

    async def an_arrival_lands_meanwhile(
        connection: asyncpg.Connection, *args: Any
    ) -> list[WaitingInteraction]:
        if not landed:
            landed.append(await _chat_offered_as_an_arrival(client, admin, connection, directory))
        return await read_the_waiting_work(connection, *args)

    monkeypatch.setattr(waiting, "waiting_items", an_arrival_lands_meanwhile)

    result = await _pass(routing_by_hand, directory)

    assert landed  # the arrival did land meanwhile
    assert (result.offers, result.skipped) == (0, 1)
    held = await routing_by_hand.fetch(
        "SELECT channel FROM offers WHERE agent_id = $1 AND state = 'pending'", lin
    )
    assert [row["channel"] for row in held] == ["chat"]
    state = await routing_by_hand.fetchval(
        "SELECT state FROM interactions WHERE id = $1::uuid", call.json()["id"]
    )
    assert state == "queued"


async def _chat_offered_as_an_arrival(
    client: httpx.AsyncClient,
    admin: Headers,
    connection: asyncpg.Connection,
    directory: AgentDirectory,
) -> int:
    """A chat arrives and is offered to Lin as the arrivals write it (app/routing/arrivals.py):
    against her row as the directory keeps it, which then keeps the row the offer left."""
    chat = uuid.UUID(await _chat(client, admin, "visitor-1"))
    lin, queue_id = await connection.fetchrow("SELECT a.id, q.id FROM agents a, queues q")
    item = WaitingInteraction(
        id=chat,
        channel=Channel.chat,
        queue_id=queue_id,
        priority=0,
        tier="iron",
        waiting_since=datetime.now(UTC),
        needs=(),
    )
    read = directory.version_read(lin)
    moment = datetime.now(UTC)
    offer = new_offer(Match(chat, lin, 0.0), item, timedelta(minutes=1), moment, read)
    [written] = await OfferWriter().write(connection, [offer], moment)
    directory.offered(lin, [Channel.chat], read, written.agent_version)
    return written.agent_version
