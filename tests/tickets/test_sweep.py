"""The deadline sweep with an injected clock, on a Paris office (Monday to Friday, 09:00-17:00)
closed on Whit Monday, 2 June 2031: the owner is warned once, the complaint escalates once, and
neither before its time (evenings, the weekend and the holiday count no time); two sweeps at
once do each once; a reply nobody answers is deemed accepted after the policy's business days
and not before; a clock paused while the customer has the reply never escalates.

Moments are in 2031 (Paris is UTC+2 then): the app's own sweep, on the real clock, never
reaches them.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.core.db import unit_of_work
from app.tickets import acts, service, work
from app.tickets.deadlines import Severity
from app.tickets.models import Complaint, ComplaintCategory
from app.tickets.schemas import ActionRecords, ComplaintRaise
from app.tickets.sweep import ComplaintSweep, Swept
from app.tickets.workflow import Action, Actor
from tests.queues.times import WORKDAYS, utc
from tests.support import held_by
from tests.tickets.conftest import customer

pytestmark = pytest.mark.asyncio

Headers = dict[str, str]

OFFICE = {
    "timezone": "Europe/Paris",
    "weekly": {day: [{"opens": "09:00", "closes": "17:00"}] for day in WORKDAYS},
}
WHIT_MONDAY = {"closed_dates": [{"date": "2031-06-02", "name": "Whit Monday"}]}
NOTHING = Swept()


def paris(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of 2031 on the Paris clock (summer time: UTC+2), in UTC."""
    return utc(2031, month, day, hour - 2, minute)


@dataclass
class Office:
    """An agent holding a call of a gold customer on the Paris queue."""

    app: FastAPI
    agent_id: uuid.UUID
    interaction_id: uuid.UUID

    @property
    def who(self) -> acts.Who:
        return acts.Who(Actor.agent, f"agent:{self.agent_id}", self.agent_id)

    def context(self, now: datetime) -> acts.Context:
        return acts.Context(now=now, notices=self.app.state.customer_notices, link_base="")

    async def raise_complaint(self, now: datetime) -> uuid.UUID:
        data = ComplaintRaise(
            interaction_id=self.interaction_id,
            summary="Charged twice for the May bill",
            original_message="You took the May payment twice.",
            remedy_sought="Refund the second payment",
            severity=Severity.major,
        )
        async with unit_of_work(self.app.state.sessions) as session:
            complaint = await service.raise_complaint(session, data, self.who, self.context(now))
        return complaint.id

    async def replied(self, complaint_id: uuid.UUID, confirmed: datetime, sent: datetime) -> None:
        """The complaint acknowledged aloud and confirmed at `confirmed`, its reply sent at
        `sent`: at step 4, its reply clock paused."""
        async with unit_of_work(self.app.state.sessions) as session:
            category = ComplaintCategory(kind="complaint", name="billing")
            session.add(category)
            await session.flush()
            complaint = await service.find(session, str(complaint_id), lock=True)
            await work.acknowledgement_said(session, complaint, self.who, confirmed)
            confirm = ActionRecords(category_id=category.id, severity=Severity.major)
            await service.act(
                session, complaint, Action.confirm, confirm, self.who, self.context(confirmed)
            )
            await work.add_note(session, complaint, "Two debits", [], self.who, sent)
            reply = ActionRecords(
                assessment="A payment run retried",
                reply="We refunded the second payment.",
                actions_taken="Refund issued",
            )
            await service.act(
                session, complaint, Action.send_reply, reply, self.who, self.context(sent)
            )

    def sweep(self, now: datetime) -> ComplaintSweep:
        """A replica's sweep whose clock shows `now`."""
        return sweep_at(self.app, lambda: now)


def sweep_at(app: FastAPI, clock: Callable[[], datetime]) -> ComplaintSweep:
    return ComplaintSweep(
        app.state.sessions,
        notices=app.state.customer_notices,
        link_base="",
        hub=app.state.hub,
        now=clock,
    )


@pytest.fixture
async def office(app: FastAPI, client: httpx.AsyncClient, admin: Headers, agent: Headers) -> Office:
    # The queue held_by raises its interaction on, made first with the office's calendar.
    queue = {"name": "served", "business_hours": OFFICE, "holidays": WHIT_MONDAY}
    made = await client.post("/v1/queues", json=queue, headers=admin)
    assert made.status_code == 201, made.text
    customer_id = await customer(client, admin)  # gold: a major complaint's accept takes 4 h
    interaction_id = await held_by(app, client, admin, agent, customer_id, channel="voice")
    me = await client.get("/v1/agents/me", headers=agent)
    return Office(app, uuid.UUID(me.json()["id"]), uuid.UUID(interaction_id))


async def clocks_of(app: FastAPI, complaint_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    async with app.state.pg.acquire() as connection:
        rows = await connection.fetch(
            "SELECT clock, due_at, warned_at, escalated_at, paused_since, ended_at"
            " FROM complaint_deadlines WHERE complaint_id = $1 ORDER BY id",
            complaint_id,
        )
    return {row["clock"]: dict(row) for row in rows}


async def events_of(app: FastAPI, complaint_id: uuid.UUID, *kinds: str) -> list[dict[str, Any]]:
    async with app.state.pg.acquire() as connection:
        rows = await connection.fetch(
            "SELECT kind, actor, payload::text AS payload FROM events"
            " WHERE subject_type = 'complaint' AND subject_id = $1 AND kind = ANY($2::text[])"
            " ORDER BY id",
            str(complaint_id),
            list(kinds),
        )
    return [{"kind": r["kind"], "actor": r["actor"], "payload": _json(r["payload"])} for r in rows]


def _json(text: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(text)
    return loaded


async def overdue(app: FastAPI, complaint_id: uuid.UUID) -> bool:
    async with unit_of_work(app.state.sessions) as session:
        complaint = await session.get(Complaint, complaint_id)
        assert complaint is not None
        return complaint.overdue


WARNED = "complaint.deadline_warning"
ESCALATED = "complaint.escalated"


async def test_the_owner_is_warned_then_the_complaint_escalates_each_once_and_on_time(
    office: Office,
) -> None:
    complaint_id = await office.raise_complaint(paris(5, 30, 16))  # Friday 30 May, 16:00
    # Its accept clock has 4 business hours: Friday 16:00-17:00, nothing over the weekend nor
    # on Whit Monday, then Tuesday 09:00-12:00: due Tuesday 3 June 12:00, warned at 11:00.
    accept = (await clocks_of(office.app, complaint_id))["accept"]
    assert accept["due_at"] == paris(6, 3, 12)

    for quiet in (
        paris(5, 30, 16, 30),
        paris(5, 31, 12),  # Saturday
        paris(6, 2, 11),  # Whit Monday: an hour before noon, had the office opened
        paris(6, 2, 12),
        paris(6, 3, 10, 59),
    ):
        assert await office.sweep(quiet).sweep_once() == NOTHING, quiet
    assert await events_of(office.app, complaint_id, WARNED, ESCALATED) == []

    assert await office.sweep(paris(6, 3, 11)).sweep_once() == Swept(warned=1)
    assert await office.sweep(paris(6, 3, 11, 30)).sweep_once() == NOTHING
    assert await office.sweep(paris(6, 3, 11, 59)).sweep_once() == NOTHING
    assert not await overdue(office.app, complaint_id)

    assert await office.sweep(paris(6, 3, 12)).sweep_once() == Swept(escalated=1)
    assert await office.sweep(paris(6, 3, 15)).sweep_once() == NOTHING

    accept = (await clocks_of(office.app, complaint_id))["accept"]
    assert (accept["warned_at"], accept["escalated_at"]) == (paris(6, 3, 11), paris(6, 3, 12))
    assert await overdue(office.app, complaint_id)
    warning, escalation = await events_of(office.app, complaint_id, WARNED, ESCALATED)
    assert (warning["kind"], escalation["kind"]) == (WARNED, ESCALATED)
    assert warning["actor"] == escalation["actor"] == "system"
    assert warning["payload"] == {
        "reference": warning["payload"]["reference"],
        "step": "accept",
        "clock": "accept",
        "due_at": paris(6, 3, 12).isoformat(),
        "owner_agent_id": str(office.agent_id),
        "agent_id": str(office.agent_id),
        "warn_minutes": 60,
    }
    assert warning["payload"]["reference"].startswith("C-2031-")
    assert escalation["payload"]["warned_at"] == paris(6, 3, 11).isoformat()


async def test_a_deadline_first_swept_after_it_passed_escalates_without_a_warning(
    office: Office,
) -> None:
    complaint_id = await office.raise_complaint(paris(5, 30, 16))
    assert await office.sweep(paris(6, 3, 14)).sweep_once() == Swept(escalated=1)
    assert [e["kind"] for e in await events_of(office.app, complaint_id, WARNED, ESCALATED)] == [
        ESCALATED
    ]


async def test_sweeps_of_several_replicas_at_once_warn_and_escalate_each_clock_once(
    office: Office,
) -> None:
    complaints = [await office.raise_complaint(paris(5, 30, 16)) for _ in range(5)]
    for moment, done in ((paris(6, 3, 11), "warned"), (paris(6, 3, 12), "escalated")):
        swept = await asyncio.gather(*(office.sweep(moment).sweep_once() for _ in range(4)))
        assert sum(getattr(each, done) for each in swept) == 5
    for complaint_id in complaints:
        kinds = [e["kind"] for e in await events_of(office.app, complaint_id, WARNED, ESCALATED)]
        assert kinds == [WARNED, ESCALATED]


async def test_a_complaint_given_to_another_owner_after_its_warning_warns_the_new_owner(
    office: Office, client: httpx.AsyncClient, admin: Headers
) -> None:
    complaint_id = await office.raise_complaint(paris(5, 30, 16))
    assert await office.sweep(paris(6, 3, 11)).sweep_once() == Swept(warned=1)
    body = {"username": "bo", "display_name": "Bo", "skills": []}
    bo = (await client.post("/v1/agents", json=body, headers=admin)).json()["id"]
    supervisor = acts.Who(Actor.supervisor, "user:test-supervisor")
    async with unit_of_work(office.app.state.sessions) as session:
        complaint = await service.find(session, str(complaint_id), lock=True)
        given, at = ActionRecords(owner_agent_id=uuid.UUID(bo)), office.context(paris(6, 3, 11, 10))
        await service.act(session, complaint, Action.assign, given, supervisor, at)

    # Bo has 50 minutes left on the accept clock, and was told of none of them.
    assert await office.sweep(paris(6, 3, 11, 15)).sweep_once() == Swept(warned=1)
    assert await office.sweep(paris(6, 3, 11, 20)).sweep_once() == NOTHING
    first, second = await events_of(office.app, complaint_id, WARNED)
    assert (first["payload"]["agent_id"], second["payload"]["agent_id"]) == (
        str(office.agent_id),
        bo,
    )


async def test_a_clock_whose_complaint_is_being_changed_waits_for_the_next_sweep(
    office: Office,
) -> None:
    held, free = [await office.raise_complaint(paris(5, 30, 16)) for _ in range(2)]
    async with office.app.state.pg.acquire() as connection, connection.transaction():
        # Someone is acting on `held` (an action locks its complaint first).
        await connection.execute("SELECT FROM complaints WHERE id = $1 FOR UPDATE", held)
        assert await office.sweep(paris(6, 3, 11)).sweep_once() == Swept(warned=1)
    assert await office.sweep(paris(6, 3, 11, 1)).sweep_once() == Swept(warned=1)
    for complaint_id in (held, free):
        assert len(await events_of(office.app, complaint_id, WARNED)) == 1


async def test_an_unanswered_reply_is_deemed_accepted_after_the_policys_business_days(
    office: Office,
) -> None:
    complaint_id = await office.raise_complaint(paris(5, 29, 10))  # Thursday 29 May
    await office.replied(complaint_id, confirmed=paris(5, 29, 11), sent=paris(5, 30, 10))
    # Ten business days after Friday 30 May, Whit Monday not one of them: Tuesday 3 June is
    # the first, Monday 16 June the tenth; the customer has until it closes, 17:00.
    for early in (paris(6, 13, 17), paris(6, 15, 12), paris(6, 16, 16, 59)):
        assert (await office.sweep(early).sweep_once()).deemed == 0, early

    assert (await office.sweep(paris(6, 16, 17)).sweep_once()).deemed == 1
    assert (await office.sweep(paris(6, 16, 17, 5)).sweep_once()).deemed == 0

    async with unit_of_work(office.app.state.sessions) as session:
        complaint = await session.get(Complaint, complaint_id)
        assert complaint is not None
        assert (complaint.step, complaint.accepted) == ("improve", True)
        assert complaint.answered_at == paris(6, 16, 17)
    (moved,) = [
        e
        for e in await events_of(office.app, complaint_id, "complaint.moved")
        if e["payload"]["action"] == "deemed_accepted"
    ]
    assert moved["actor"] == "system"
    assert (moved["payload"]["from"], moved["payload"]["to"]) == ("reply", "improve")
    clocks = await clocks_of(office.app, complaint_id)
    assert clocks["reply"]["ended_at"] == paris(5, 30, 10)  # met: when the reply went


async def test_a_reply_clock_paused_while_the_customer_has_the_reply_never_escalates(
    office: Office,
) -> None:
    complaint_id = await office.raise_complaint(paris(5, 29, 10))
    await office.replied(complaint_id, confirmed=paris(5, 29, 11), sent=paris(5, 30, 10))
    reply = (await clocks_of(office.app, complaint_id))["reply"]
    # 40 business hours from Thursday 11:00, had it run: Friday 6 June 11:00.
    assert reply["paused_since"] == paris(5, 30, 10)
    assert reply["due_at"] == paris(6, 6, 11)

    swept = await office.sweep(paris(6, 12, 12)).sweep_once()

    assert (swept.warned, swept.escalated) == (0, 0)
    reply = (await clocks_of(office.app, complaint_id))["reply"]
    assert (reply["warned_at"], reply["escalated_at"]) == (None, None)
    assert not await overdue(office.app, complaint_id)
