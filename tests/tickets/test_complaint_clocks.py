"""A complaint's deadlines, stored as the service moves it, counted on its queue's business hours
and holidays, with the clock injected: a complaint raised late on Christmas Eve is due after
the holiday and the weekend; a reply's wait for the customer is paused and its open time added;
a step ended late is stored as missed."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.auth.models import Role
from app.core.db import unit_of_work
from app.customers.models import Customer, Tier
from app.tickets import acts, service, work
from app.tickets.models import Complaint, ComplaintCategory, ComplaintDeadline
from app.tickets.schemas import ActionRecords, ComplaintRaise
from app.tickets.workflow import Action, Actor
from tests.queues.times import WORKDAYS, utc
from tests.tickets.conftest import customer

pytestmark = pytest.mark.asyncio

Headers = dict[str, str]
SUPERVISOR = acts.Who(Actor.supervisor, "user:test-supervisor")
PARIS_HOURS = {
    "timezone": "Europe/Paris",
    "weekly": {day: [{"opens": "09:00", "closes": "17:00"}] for day in WORKDAYS},
}
CHRISTMAS = {"closed_dates": [{"date": "2026-12-25", "name": "Christmas"}]}


async def nothing_to_tell(*_: Any, **__: Any) -> str | None:
    return None  # no interaction to write on: everything is read out


class Clocked:
    """The service at chosen moments, one unit of work per step, as requests would be."""

    def __init__(self, app: FastAPI, complaint_id: uuid.UUID | None = None) -> None:
        self.app = app
        self.complaint_id = complaint_id

    async def raise_at(
        self, now: datetime, customer_id: str, queue_id: str, owner: str | None = None
    ) -> None:
        async with unit_of_work(self.app.state.sessions) as session:
            body = ComplaintRaise(
                customer_id=uuid.UUID(customer_id),
                queue_id=uuid.UUID(queue_id),
                summary="Engineer never came",
                original_message="Nobody came on the 23rd",
                remedy_sought="A new appointment and compensation",
                severity="critical",
                owner_agent_id=None if owner is None else uuid.UUID(owner),
            )
            complaint = await service.raise_complaint(session, body, SUPERVISOR, self._at(now))
            self.complaint_id = complaint.id

    async def act_at(self, now: datetime, action: Action, **records: Any) -> None:
        async with unit_of_work(self.app.state.sessions) as session:
            complaint = await session.get(Complaint, self.complaint_id, with_for_update=True)
            assert complaint is not None
            await service.act(
                session, complaint, action, ActionRecords(**records), SUPERVISOR, self._at(now)
            )

    async def said_at(self, now: datetime) -> None:
        async with unit_of_work(self.app.state.sessions) as session:
            complaint = await session.get(Complaint, self.complaint_id)
            assert complaint is not None
            await work.acknowledgement_said(session, complaint, SUPERVISOR, now)

    async def note_at(self, now: datetime, text: str) -> None:
        async with unit_of_work(self.app.state.sessions) as session:
            complaint = await session.get(Complaint, self.complaint_id)
            assert complaint is not None
            await work.add_note(session, complaint, text, [], SUPERVISOR, now)

    async def clocks(self) -> dict[str, list[ComplaintDeadline]]:
        async with unit_of_work(self.app.state.sessions) as session:
            rows = await session.scalars(
                select(ComplaintDeadline)
                .where(ComplaintDeadline.complaint_id == self.complaint_id)
                .order_by(ComplaintDeadline.id)
            )
            found: dict[str, list[ComplaintDeadline]] = {}
            for row in rows:
                found.setdefault(row.clock, []).append(row)
            return found

    async def complaint(self) -> Complaint:
        async with unit_of_work(self.app.state.sessions) as session:
            complaint = await session.get(Complaint, self.complaint_id)
            assert complaint is not None
            return complaint

    async def category(self) -> uuid.UUID:
        async with unit_of_work(self.app.state.sessions) as session:
            row = ComplaintCategory(kind="complaint", name=f"visits-{uuid.uuid4().hex[:6]}")
            session.add(row)
            await session.flush()
            return row.id

    @staticmethod
    def _at(now: datetime) -> acts.Context:
        return acts.Context(now=now, notices=nothing_to_tell, link_base="http://cc.test")


async def paris_queue(client: httpx.AsyncClient, admin: Headers) -> str:
    body = {"name": "repairs", "business_hours": PARIS_HOURS, "holidays": CHRISTMAS}
    made = await client.post("/v1/queues", json=body, headers=admin)
    assert made.status_code == 201, made.text
    queue_id: str = made.json()["id"]
    return queue_id


async def test_deadlines_skip_the_evening_the_holiday_and_the_weekend_and_pause_for_the_answer(
    app: FastAPI, client: httpx.AsyncClient, admin: Headers, agent: Headers
) -> None:
    queue_id = await paris_queue(client, admin)
    customer_id = await customer(client, admin)  # gold
    owner = (await client.get("/v1/agents/me", headers=agent)).json()["id"]
    clocked = Clocked(app)
    # Thursday 24 December, 16:30 in Paris (UTC+1): half an hour before closing.
    await clocked.raise_at(utc(2026, 12, 24, 15, 30), customer_id, queue_id, owner)
    [accept] = (await clocked.clocks())["accept"]
    # A gold customer's critical complaint: 2 business hours to acknowledge and confirm.
    # 30 minutes on Thursday; Friday is Christmas, then the weekend; 1 h 30 on Monday.
    assert accept.due_at == utc(2026, 12, 28, 9, 30)
    complaint = await clocked.complaint()
    assert "Monday 28 December 2026, 10:30 (Europe/Paris)" in complaint.acknowledgement

    await clocked.said_at(utc(2026, 12, 28, 9, 0))
    await clocked.act_at(
        utc(2026, 12, 28, 9, 0), Action.confirm, category_id=await clocked.category()
    )
    clocks = await clocked.clocks()
    assert clocks["accept"][0].ended_at == utc(2026, 12, 28, 9, 0)  # met
    # Investigate, 16 h from Monday 10:00: 7 h Monday, 8 h Tuesday, 1 h Wednesday.
    assert clocks["investigate"][0].due_at == utc(2026, 12, 30, 9, 0)
    # The resolution, 24 h: 7 + 8 + 8, and one hour on Thursday 31st.
    assert clocks["reply"][0].due_at == utc(2026, 12, 31, 9, 0)

    # The reply goes out on Tuesday at noon; the customer answers on Wednesday at 11:00.
    await clocked.note_at(utc(2026, 12, 29, 10, 0), "The visit was never booked")
    await clocked.act_at(
        utc(2026, 12, 29, 11, 0),
        Action.send_reply,
        assessment="The booking system lost the visit",
        reply="A new visit is booked for 4 January, with 50 EUR off your bill.",
        actions_taken="Visit rebooked; credit applied",
    )
    paused = (await clocked.clocks())["reply"][0]
    assert paused.paused_since == utc(2026, 12, 29, 11, 0)
    complaint = await clocked.complaint()
    # Deemed accepted at the close of the 10th business day after Tuesday 29th (30, 31
    # December, 1, 4-8, 11, 12 January: Friday 1 January is open in this calendar).
    assert complaint.answer_due_at == utc(2027, 1, 12, 16, 0)

    await clocked.act_at(
        utc(2026, 12, 30, 10, 0), Action.customer_rejects, answer="4 January is too late"
    )
    clocks = await clocked.clocks()
    # Paused 5 open hours on Tuesday and 2 on Wednesday: the deadline moves 7 business hours,
    # from Thursday 10:00 to Thursday 17:00 (a deadline used up at closing stays there).
    assert clocks["reply"][0].due_at == utc(2026, 12, 31, 16, 0)
    assert clocks["reply"][0].paused_since is None
    # Investigate again, from Wednesday 11:00: 6 h Wednesday, 8 h Thursday, 2 h Friday.
    assert clocks["investigate"][1].due_at == utc(2027, 1, 1, 10, 0)


async def test_a_step_ended_after_its_deadline_is_stored_as_missed_and_flags_overdue(
    app: FastAPI, client: httpx.AsyncClient, admin: Headers, make_user: Any
) -> None:
    queue_id = await paris_queue(client, admin)
    customer_id = await customer(client, admin, tier="platinum")
    clocked = Clocked(app)
    await clocked.raise_at(utc(2026, 12, 28, 8, 0), customer_id, queue_id)  # Mon 09:00 Paris
    [accept] = (await clocked.clocks())["accept"]
    assert accept.due_at == utc(2026, 12, 28, 9, 0)  # platinum, critical: 1 business hour
    await clocked.said_at(utc(2026, 12, 28, 13, 0))
    await clocked.act_at(
        utc(2026, 12, 28, 13, 0), Action.confirm, category_id=await clocked.category()
    )
    clocks = await clocked.clocks()
    assert clocks["accept"][0].ended_at is not None
    assert clocks["accept"][0].ended_at > clocks["accept"][0].due_at  # missed
    supervisor = await make_user(Role.supervisor)
    shown = await client.get(f"/v1/complaints/{clocked.complaint_id}", headers=supervisor)
    met = {d["clock"]: d["met"] for d in shown.json()["deadlines"]}
    assert met == {"accept": False, "investigate": None, "reply": None}


async def test_a_customer_of_another_tier_gets_the_policys_other_deadline(
    app: FastAPI, client: httpx.AsyncClient, admin: Headers
) -> None:
    queue_id = await paris_queue(client, admin)
    lead = await customer(client, admin, name="Lee", tier="lead")
    clocked = Clocked(app)
    await clocked.raise_at(utc(2026, 12, 28, 8, 0), lead, queue_id)
    [accept] = (await clocked.clocks())["accept"]
    assert accept.due_at == utc(2026, 12, 28, 12, 0)  # lead, critical: 4 business hours
    async with unit_of_work(app.state.sessions) as session:
        # A later change of tier moves no deadline: the complaint keeps the tier it had.
        found = await session.get(Customer, uuid.UUID(lead))
        assert found is not None
        found.tier = Tier.platinum
    assert (await clocked.complaint()).tier == "lead"
