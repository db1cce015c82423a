"""A customer's open complaints reach the agent: in the screen pop of their next call (read by
the offer's own statement, whether the call is offered at once or by a pass, and alike when the
offer is replayed), and in routing, where a queue may offer the customer to the complaint's
owner first (ahead of their last agent, only while the owner qualifies and has room).

Real sockets and a real database; the complaints are written with SQL, as the complaints
service leaves them (a step, an owner, its deadlines: running, paused or ended)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app.auth.models import Role
from app.desk import screen_pop
from app.tickets.open_complaints import SHOWN, OpenComplaint
from tests.desk.conftest import Center, Desk
from tests.support import (
    CountedPasses,
    create_billing_queue,
    create_user_directly,
    login,
    served_in_loop,
    until_the_directory_holds,
)

Headers = dict[str, str]
PASSWORD = "correct horse battery"
ROUTED = ["at once", "by a pass"]


@dataclass(frozen=True)
class Clock:
    """A deadline of a complaint: due this long from now; paused or ended, or running."""

    due_in: timedelta
    paused: bool = False
    ended: bool = False


async def complaint(
    connection: asyncpg.Connection,
    customer_id: str,
    reference: str,
    *,
    step: str = "investigate",
    owner: uuid.UUID | None = None,
    raised_ago: timedelta = timedelta(days=1),
    clocks: Sequence[Clock] = (),
    overdue: bool = False,
) -> datetime:
    """A complaint of the customer, as the service would leave it; when it was raised."""
    complaint_id, now = uuid.uuid4(), datetime.now(UTC)
    raised_at = now - raised_ago
    await connection.execute(
        "INSERT INTO complaints (id, reference, customer_id, channel, raised_by, raised_at, step,"
        " owner_agent_id, severity, tier, summary, original_message, overdue)"
        " VALUES ($1, $2, $3::text::uuid, 'voice', 'agent:test', $4, $5, $6, 'major', 'gold',"
        " $7, 'As the customer said it.', $8)",
        complaint_id,
        reference,
        customer_id,
        raised_at,
        step,
        owner,
        f"Summary of {reference}",
        overdue,
    )
    for clock in clocks:
        await connection.execute(
            "INSERT INTO complaint_deadlines (complaint_id, clock, started_at, due_at,"
            " paused_since, ended_at) VALUES ($1, 'investigate', $2, $3, $4, $5)",
            complaint_id,
            raised_at,
            now + clock.due_in,
            now if clock.paused else None,
            now if clock.ended else None,
        )
    return raised_at


@dataclass
class Floor:
    """The app served in the test's loop (its matcher leads, so a test may wait for it to have
    read an agent and see an arrival offered at once), a `billing` queue needing billing 2."""

    center: Center
    connection: asyncpg.Connection

    async def agent(self, name: str, billing: int) -> tuple[Headers, uuid.UUID]:
        headers = await self.center.agent(name, billing=billing)
        me = await self.center.http.get("/v1/agents/me", headers=headers)
        return headers, uuid.UUID(me.json()["id"])

    async def queue(self, **settings: Any) -> dict[str, Any]:
        queues = await self.center.http.get("/v1/queues", headers=self.center.admin)
        [queue] = queues.json()["items"]
        if not settings:
            return dict(queue)
        patched = await self.center.http.patch(
            f"/v1/queues/{queue['id']}", json=settings, headers=self.center.admin
        )
        assert patched.status_code == 200, patched.text
        return dict(patched.json())

    async def handled(self, desk: Desk, **call: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """A call offered to the desk's agent, accepted and completed (the agent is now the
        customer's last): the call, and its offer."""
        interaction = await self.center.call(**call)
        offer = await desk.next("offer")
        assert offer["interaction_id"] == interaction["id"]
        await desk.send(type="accept", offer_id=offer["offer_id"])
        await desk.next("assignment")
        await desk.send(type="complete", interaction_id=interaction["id"], disposition="done")
        await desk.next("ack")
        return interaction, offer

    async def until_read(self, *agents: uuid.UUID) -> None:
        """Until the leading matcher has read these agents as they are: an arrival is weighed
        against them at once."""
        for agent_id in agents:
            await until_the_directory_holds(self.center.app, self.connection, str(agent_id))


async def set_state(desk: Desk, state: str) -> None:
    await desk.send(type="set_state", state=state)
    assert (await desk.next("ack"))["of"] == "set_state"


@pytest.fixture
async def floor(app: FastAPI, connection: asyncpg.Connection) -> AsyncIterator[Floor]:
    await create_user_directly(app, "boss", Role.admin, PASSWORD)
    async with served_in_loop(app) as base_url, httpx.AsyncClient(base_url=base_url) as http:
        admin = await login(http, "boss", PASSWORD)
        await create_billing_queue(
            http,
            admin,
            sticky_seconds=3600,
            required_skills=[{"skill": "billing", "level": 2}],
        )
        ws_url = base_url.replace("http://", "ws://")
        yield Floor(Center(http=http, admin=admin, ws_url=ws_url, app=app), connection)


# --- the screen pop --------------------------------------------------------------------------


@pytest.mark.parametrize("routed", ROUTED)
async def test_an_open_complaint_shows_in_the_pop_of_the_customers_next_call(
    floor: Floor, routed: str
) -> None:
    center = floor.center
    mei, mei_id = await floor.agent("mei", billing=4)
    _, ben_id = await floor.agent("ben", billing=4)  # owns a complaint; never at a desk
    desk = await center.available(mei)
    first, first_offer = await floor.handled(desk)
    assert first_offer["screen_pop"]["open_complaints"] == []  # a first contact has none
    customer = first["customer_id"]
    owned = await complaint(
        floor.connection,
        customer,
        "C-2026-000012",
        owner=ben_id,
        raised_ago=timedelta(days=2),
        clocks=[
            Clock(timedelta(hours=-20), ended=True),  # its step 2's, met and ended
            Clock(timedelta(hours=1), paused=True),  # not counting now
            Clock(timedelta(hours=5)),  # the soonest running
            Clock(timedelta(days=3)),
        ],
    )
    waiting = await complaint(
        floor.connection,
        customer,
        "C-2026-000014",
        step="reply",
        clocks=[Clock(timedelta(hours=2), paused=True)],  # the customer has the reply
        overdue=True,
    )
    for ending, reference in (("closed", "C-2026-000010"), ("rejected", "C-2026-000011")):
        await complaint(floor.connection, customer, reference, step=ending, owner=ben_id)
    other = await center.http.post(
        "/v1/customers", json={"name": "Someone Else"}, headers=center.admin
    )
    assert other.status_code == 201, other.text
    await complaint(floor.connection, other.json()["id"], "C-2026-000013")

    if routed == "at once":
        await floor.until_read(mei_id)
        call = await center.call(customer_id=customer)
        assert call["offered_to"] == str(mei_id)
    else:
        await set_state(desk, "away")
        call = await center.call(customer_id=customer)
        assert call["offered_to"] is None  # nobody available: it waits for a pass
        await set_state(desk, "available")
    offer = await desk.next("offer")
    assert offer["interaction_id"] == call["id"]

    shown = [OpenComplaint.model_validate(c) for c in offer["screen_pop"]["open_complaints"]]
    assert [(c.reference, c.step, c.step_number, c.severity) for c in shown] == [
        ("C-2026-000014", "reply", 4, "major"),  # newest first
        ("C-2026-000012", "investigate", 3, "major"),
    ]
    assert [(c.owner_agent_id, c.owner) for c in shown] == [(None, None), (ben_id, "Ben")]
    assert [c.overdue for c in shown] == [True, False]
    assert [c.raised_at for c in shown] == [waiting, owned]
    assert shown[0].due_at is None  # paused: no deadline runs
    assert shown[1].due_at == owned + timedelta(days=2, hours=5)
    assert shown[1].summary == "Summary of C-2026-000012"
    # Reloaded, the desk gets the offer again with its pop read afresh: the same.
    again = await center.desk(mei, last_event_id=0)
    [replayed] = [f for f in again.frames if f["type"] == "offer"]
    assert replayed["screen_pop"] == offer["screen_pop"]


async def test_a_complaint_raised_over_the_api_shows_in_the_pop_of_the_next_call(
    floor: Floor,
) -> None:
    """The complaints service's own rows: Mei raises a complaint from the call she took (she
    owns it; with its remedy it is at step 2, its clock running), and the customer's next
    call shows it."""
    center = floor.center
    mei, mei_id = await floor.agent("mei", billing=4)
    desk = await center.available(mei)
    first, _ = await floor.handled(desk)
    body = {
        "interaction_id": first["id"],
        "summary": "Charged twice for November",
        "original_message": "You took the money twice.",
        "remedy_sought": "The second charge back",
    }
    raised = await center.http.post("/v1/complaints", json=body, headers=mei)
    assert raised.status_code == 201, raised.text
    complaint_out = raised.json()
    running = [d["due_at"] for d in complaint_out["deadlines"] if d["ended_at"] is None]

    await floor.until_read(mei_id)
    call = await center.call(customer_id=first["customer_id"])
    assert call["offered_to"] == str(mei_id)
    offer = await desk.next("offer")

    [shown] = [OpenComplaint.model_validate(c) for c in offer["screen_pop"]["open_complaints"]]
    assert (shown.id, shown.reference) == (
        uuid.UUID(complaint_out["id"]),
        complaint_out["reference"],
    )
    assert (shown.step, shown.step_number, shown.owner) == ("accept", 2, "Mei")
    assert shown.due_at == min(datetime.fromisoformat(due) for due in running)


async def test_the_pop_shows_the_newest_open_complaints_only(floor: Floor) -> None:
    """Read as a replayed pop is (`screen_pop.read`): the newest `SHOWN`, newest first."""
    call = await floor.center.call()  # nobody at a desk: it waits
    raised = [
        await complaint(
            floor.connection,
            call["customer_id"],
            f"C-2026-{n:06d}",
            step=("intake", "accept", "investigate", "reply", "improve")[n % 5],
            raised_ago=timedelta(hours=n),
        )
        for n in range(1, SHOWN + 3)
    ]

    pop = await screen_pop.read(floor.connection, uuid.UUID(call["id"]), screen_pop.routing_of({}))

    assert [c.raised_at for c in pop.open_complaints] == raised[:SHOWN]
    assert [c.step_number for c in pop.open_complaints[:5]] == [2, 3, 4, 5, 1]


# --- routing: the complaint's owner first ------------------------------------------------------


@dataclass
class Served:
    """The customer, whom Ben served last, with Mei's desk (open, not available yet) and Ben's
    (available)."""

    customer: str
    mei: Desk
    ben: Desk
    mei_id: uuid.UUID
    ben_id: uuid.UUID


async def ben_served_them(floor: Floor, mei_billing: int = 4) -> Served:
    """Ben handled the customer's call (he is their last agent, and the queue is sticky); Mei
    owns the customer's open complaint due soonest, Ben one due later though raised since, and
    one closed."""
    center = floor.center
    mei, mei_id = await floor.agent("mei", billing=mei_billing)
    ben, ben_id = await floor.agent("ben", billing=4)
    ben_desk = await center.available(ben)
    first, _ = await floor.handled(ben_desk)
    customer: str = first["customer_id"]
    soon, later = [Clock(timedelta(hours=2))], [Clock(timedelta(days=1))]
    await complaint(
        floor.connection,
        customer,
        "C-2026-000012",
        owner=mei_id,
        raised_ago=timedelta(days=3),
        clocks=soon,
    )
    await complaint(floor.connection, customer, "C-2026-000013", owner=ben_id, clocks=later)
    await complaint(floor.connection, customer, "C-2026-000014", owner=ben_id, step="closed")
    return Served(customer, await center.desk(mei), ben_desk, mei_id, ben_id)


@pytest.mark.parametrize("routed", ROUTED)
async def test_the_complaints_owner_gets_the_customers_call_ahead_of_their_last_agent(
    floor: Floor, routed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    passes = CountedPasses.installed(monkeypatch)  # every pass from here on, counted
    assert (await floor.queue(complaint_owner_first=True))["complaint_owner_first"] is True
    served = await ben_served_them(floor)

    if routed == "at once":
        await set_state(served.mei, "available")
        await floor.until_read(served.mei_id, served.ben_id)
        call = await floor.center.call(customer_id=served.customer)
        assert call["offered_to"] == str(served.mei_id)
    else:
        await set_state(served.ben, "away")
        call = await floor.center.call(customer_id=served.customer)
        assert call["offered_to"] is None  # nobody available: it waits for a pass
        # Both available before a pass weighs them (one under way, woken by the call, ends
        # first): a pass between the two would rightly give it to Ben.
        await passes.hold()
        await set_state(served.ben, "available")
        await set_state(served.mei, "available")
        passes.let_go()

    offer = await served.mei.next("offer")
    assert offer["interaction_id"] == call["id"]
    assert offer["screen_pop"]["routing"]["reason"] == "complaint owner: C-2026-000012"


@pytest.mark.parametrize("case", ["off by default", "owner not qualified", "owner has no room"])
async def test_otherwise_the_customers_last_agent_gets_it(floor: Floor, case: str) -> None:
    if case == "off by default":
        assert (await floor.queue())["complaint_owner_first"] is False
    else:
        await floor.queue(complaint_owner_first=True)
    served = await ben_served_them(floor, mei_billing=1 if case == "owner not qualified" else 4)
    await set_state(served.mei, "available")
    if case == "owner has no room":  # Mei takes another customer's call while Ben is away
        await set_state(served.ben, "away")
        await floor.center.call(contact={"kind": "phone", "value": "+86 139 0013 9000"})
        offer = await served.mei.next("offer")
        await served.mei.send(type="accept", offer_id=offer["offer_id"])
        await served.mei.next("assignment")
        await set_state(served.ben, "available")
    await floor.until_read(served.mei_id, served.ben_id)

    call = await floor.center.call(customer_id=served.customer)

    assert call["offered_to"] == str(served.ben_id)
    offer = await served.ben.next("offer")
    assert offer["interaction_id"] == call["id"]
    assert offer["screen_pop"]["routing"]["reason"].startswith("sticky: last agent")
