"""Replica leases (app/core/lease.py): a desk is in routing only while the lease of the replica
holding it is live; a lapsed lease's desks leave routing at once, and nobody is offered work
through it.

A "dead replica" here is a lease row the test writes and then ends: its desks are agents made
present under it straight in the database, as a killed process leaves them
(tests/routing/test_replicas.py kills a real one).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import asyncpg
import httpx
from fastapi import FastAPI

from app.core.events import Events
from app.core.lease import ReplicaLease
from app.routing.directory import AgentDirectory
from app.routing.offers import OfferWriter
from app.routing.passes import run_pass
from app.routing.sweeper import time_out_offers
from app.routing.waiting import QueueBook
from tests.support import create_skills, present_desk

Headers = dict[str, str]
SILENCE = timedelta(seconds=15)


async def _until(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    for _ in range(int(within / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not so within the time allowed")


async def _end(connection: asyncpg.Connection, lease: uuid.UUID) -> None:
    """The replica holding `lease` dies: its lease ends now, by the database's clock."""
    await connection.execute(
        "UPDATE replicas SET lease_until = clock_timestamp() WHERE id = $1", lease
    )


async def _lease_until(connection: asyncpg.Connection, lease: uuid.UUID) -> object:
    return await connection.fetchval("SELECT lease_until FROM replicas WHERE id = $1", lease)


# --- the lease itself --------------------------------------------------------------------------


async def test_a_lease_is_taken_renewed_and_ended_on_stop(
    database_url: str, connection: asyncpg.Connection
) -> None:
    lease = ReplicaLease(database_url, seconds=2.5)
    assert await lease.renew()
    first = await _lease_until(connection, lease.id)
    assert await connection.fetchval("SELECT $1 > clock_timestamp()", first)

    assert await lease.renew()

    assert await _lease_until(connection, lease.id) > first  # type: ignore[operator]
    held = lease.id
    await lease.stop()
    ended = await connection.fetchval(
        "SELECT lease_until <= clock_timestamp() FROM replicas WHERE id = $1", held
    )
    assert ended


async def test_a_lapsed_lease_is_never_renewed_a_new_one_is_taken_and_the_old_is_named(
    database_url: str, connection: asyncpg.Connection
) -> None:
    lapsed: list[uuid.UUID] = []
    lease = ReplicaLease(database_url, seconds=2.5, on_lapse=lapsed.append)
    try:
        assert await lease.renew()
        old = lease.id
        await _end(connection, old)  # a pause longer than the lease: the others saw it lapse
        ended_at = await _lease_until(connection, old)

        assert await lease.renew()

        assert lapsed == [old]
        assert lease.id != old
        assert await _lease_until(connection, old) == ended_at  # not brought back to life
        live = await connection.fetchval(
            "SELECT lease_until > clock_timestamp() FROM replicas WHERE id = $1", lease.id
        )
        assert live
    finally:
        await lease.stop()


class CuttableLink:
    """A TCP relay to PostgreSQL that the test can cut, as a network partition would."""

    def __init__(self, target: str | tuple[str, int]) -> None:
        self._target = target  # a unix socket's path, or (host, port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if isinstance(self._target, str):
            upstream = await asyncio.open_unix_connection(self._target)
        else:
            upstream = await asyncio.open_connection(*self._target)
        upstream_reader, upstream_writer = upstream
        self._writers.update({writer, upstream_writer})
        await asyncio.gather(
            _pipe(reader, upstream_writer), _pipe(upstream_reader, writer), return_exceptions=True
        )


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


async def test_a_replica_cut_off_from_its_database_counts_its_lease_lapsed_itself(
    database_url: str, connection: asyncpg.Connection
) -> None:
    # Where asyncpg reached the server (a unix socket's path, or a host and port).
    link = CuttableLink(connection._addr)
    await link.open()
    database = await connection.fetchval("SELECT current_database()")
    user = await connection.fetchval("SELECT current_user")
    through_link = f"postgresql://{user}@127.0.0.1:{link.port}/{database}?sslmode=disable"
    lapsed: list[uuid.UUID] = []
    lease = ReplicaLease(through_link, seconds=0.5, on_lapse=lapsed.append)
    try:
        assert await lease.renew()
        held = lease.id
        await link.cut()

        async def counted_lapsed() -> bool:
            await lease.renew()  # each fails: nothing answers
            return bool(lapsed)

        await _until(counted_lapsed)

        assert lapsed == [held]
        assert not lease.live
    finally:
        await lease.stop()


# --- routing and a lapsed lease -----------------------------------------------------------------


async def _agent(client: httpx.AsyncClient, admin: Headers, username: str) -> uuid.UUID:
    body = {
        "username": username,
        "display_name": username.title(),
        "skills": [{"skill": "billing", "level": 3}],
    }
    response = await client.post("/v1/agents", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["id"])


async def _billing(client: httpx.AsyncClient, admin: Headers) -> None:
    await create_skills(client, admin, "billing")
    queue = {
        "name": "billing",
        "offer_timeout_seconds": 120,  # no offer here ends by its deadline
        "away_on_missed_offer": True,  # an agent who missed an offer would go away
        "required_skills": [{"skill": "billing", "level": 1}],
    }
    assert (await client.post("/v1/queues", json=queue, headers=admin)).status_code == 201


async def _call(client: httpx.AsyncClient, admin: Headers, reference: str) -> str:
    body = {
        "channel": "voice",
        "queue": "billing",
        "contact": {"kind": "phone", "value": "+86 138 0013 8000"},
        "external_ref": reference,
    }
    response = await client.post("/v1/interactions", json=body, headers=admin)
    assert response.status_code == 201, response.text
    interaction_id: str = response.json()["id"]
    return interaction_id


async def _pending_offer(
    connection: asyncpg.Connection, interaction_id: str
) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await connection.fetchrow(
        "SELECT id, agent_id, replica_id FROM offers"
        " WHERE interaction_id = $1::uuid AND state = 'pending'",
        interaction_id,
    )
    return row


async def test_a_dead_replica_s_desks_leave_routing_and_their_offers_return_at_once(
    app: FastAPI, client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    await _billing(client, admin)
    mei = await _agent(client, admin, "mei")
    dead = uuid.uuid4()
    await present_desk(connection, mei, lease=dead)
    await connection.execute(
        "UPDATE agents SET connection_id = gen_random_uuid() WHERE id = $1", mei
    )
    call = await _call(client, admin, "CA-1")

    async def offered_to_mei() -> bool:
        offer = await _pending_offer(connection, call)
        return offer is not None and offer["agent_id"] == mei

    await _until(offered_to_mei)
    offer = await _pending_offer(connection, call)
    assert offer is not None
    assert offer["replica_id"] == dead
    waiting_since = await connection.fetchval(
        "SELECT waiting_since FROM interactions WHERE id = $1::uuid", call
    )

    await _end(connection, dead)

    async def returned() -> bool:
        state = await connection.fetchval("SELECT state FROM offers WHERE id = $1", offer["id"])
        return bool(state != "pending")

    await _until(returned)  # long before its deadline (120 s)
    ended = await connection.fetchrow("SELECT state, reason FROM offers WHERE id = $1", offer["id"])
    assert (ended["state"], ended["reason"]) == ("withdrawn", "its desk's server stopped")
    interaction = await connection.fetchrow(
        "SELECT state, waiting_since FROM interactions WHERE id = $1::uuid", call
    )
    assert (interaction["state"], interaction["waiting_since"]) == ("queued", waiting_since)
    agent = await connection.fetchrow(
        "SELECT state, state_reason, connection_id FROM agents WHERE id = $1", mei
    )
    # Offline as a closed socket leaves it, not away: the offer was never shown to anyone.
    assert (agent["state"], agent["state_reason"]) == ("offline", "its desk's server stopped")
    assert agent["connection_id"] is None
    released = await connection.fetchval(
        "SELECT desks_released_at FROM replicas WHERE id = $1", dead
    )
    assert released is not None

    # The call goes to a desk that is there.
    lin = await _agent(client, admin, "lin")
    await present_desk(connection, lin)

    async def offered_to_lin() -> bool:
        offer = await _pending_offer(connection, call)
        return offer is not None and offer["agent_id"] == lin

    await _until(offered_to_lin)
    # And no offer row was made for a desk under a lease that had ended.
    late = await connection.fetchval(
        "SELECT count(*) FROM offers o JOIN replicas r ON r.id = o.replica_id"
        " WHERE o.created_at >= r.lease_until"
    )
    assert late == 0


async def test_no_offer_lands_for_a_desk_whose_replica_s_lease_lapsed_after_it_was_read(
    app: FastAPI, client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    """The directory read Mei while her replica's lease was live; it lapsed before the write:
    the write skips her, and the next read leaves her out."""
    await _billing(client, admin)
    await app.state.matcher.stop()  # the test runs the pass
    mei = await _agent(client, admin, "mei")
    dead = uuid.uuid4()
    await present_desk(connection, mei, lease=dead)
    directory = AgentDirectory()
    await directory.refresh(connection)
    assert [agent.id for agent in directory.kept(SILENCE)] == [mei]
    call = await _call(client, admin, "CA-2")
    await _end(connection, dead)

    result = await run_pass(
        connection, Events(), directory, QueueBook(), OfferWriter(), silence=SILENCE
    )

    assert (result.offers, result.skipped) == (0, 1)
    assert await _pending_offer(connection, call) is None
    assert await AgentDirectory().routable(connection, SILENCE) == []


async def test_an_offer_through_a_lapsed_lease_that_times_out_sends_nobody_away(
    app: FastAPI, client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    """Should the deadline come first (the lapse's sweep found the agent locked, say), the
    offer times out, but its agent, whose desk never showed it, stays where she was."""
    await _billing(client, admin)
    mei = await _agent(client, admin, "mei")
    dead = uuid.uuid4()
    await present_desk(connection, mei, lease=dead)
    call = await _call(client, admin, "CA-3")

    async def offered() -> bool:
        return await _pending_offer(connection, call) is not None

    await _until(offered)
    await app.state.matcher.stop()  # the test runs the sweep
    await _end(connection, dead)
    await connection.execute(
        "UPDATE offers SET deadline = clock_timestamp() WHERE interaction_id = $1::uuid", call
    )

    async with connection.transaction():
        assert await time_out_offers(connection, Events()) == 1

    state = await connection.fetchval("SELECT state FROM agents WHERE id = $1", mei)
    assert state == "available"
