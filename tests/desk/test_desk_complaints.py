"""Complaints on the desk: the owner's desk hears of a deadline near and passed (live, from
another replica's sweep, and replayed), another agent's desk does not; an agent raises a
complaint from the call it holds and is answered with its reference, or an error."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from app.core.db import unit_of_work
from app.tickets import acts, service
from app.tickets.models import Complaint, ComplaintCategory, ComplaintNote
from app.tickets.schemas import ActionRecords, ComplaintRaise
from app.tickets.sweep import ComplaintSweep, Swept
from app.tickets.workflow import Action, Actor
from tests.desk.conftest import Center
from tests.queues.times import utc

SUPERVISOR = acts.Who(Actor.supervisor, "user:supervisor")


async def agent_id(center: Center, headers: dict[str, str]) -> uuid.UUID:
    me = await center.http.get("/v1/agents/me", headers=headers)
    return uuid.UUID(me.json()["id"])


async def complaint_of(
    center: Center, customer_id: uuid.UUID, owner: uuid.UUID, now: datetime
) -> str:
    """A complaint a supervisor recorded for the customer and gave `owner`, at `now`. With
    no queue it counts around the clock: a gold customer's major one is to be accepted within
    4 hours, its owner warned an hour before."""
    data = ComplaintRaise(
        customer_id=customer_id,
        owner_agent_id=owner,
        summary="Parcel never arrived",
        original_message="My parcel never came.",
        remedy_sought="Send it again",
    )
    app = center.app
    context = acts.Context(now=now, notices=app.state.customer_notices, link_base="")
    async with unit_of_work(app.state.sessions) as session:
        complaint = await service.raise_complaint(session, data, SUPERVISOR, context)
    return str(complaint.id)


async def sweep(center: Center, now: datetime) -> Swept:
    """The sweep of the test's own app: another replica than the live server the desks use."""
    app = center.app
    at = ComplaintSweep(
        app.state.sessions,
        notices=app.state.customer_notices,
        link_base="",
        hub=app.state.hub,
        now=lambda: now,
    )
    return await at.sweep_once()


async def test_only_the_owners_desk_hears_of_its_complaints_deadline_near_and_passed(
    center: Center,
) -> None:
    mei, ana = await center.agent("mei", billing=4), await center.agent("ana", billing=4)
    meis_desk, anas_desk = await center.desk(mei), await center.desk(ana)
    made = await center.http.post(
        "/v1/customers", json={"name": "Li Wei", "tier": "gold"}, headers=center.admin
    )
    customer_id = uuid.UUID(made.json()["id"])
    meis = await complaint_of(center, customer_id, await agent_id(center, mei), utc(2031, 6, 3, 8))
    anas = await complaint_of(
        center, customer_id, await agent_id(center, ana), utc(2031, 6, 3, 8, 30)
    )

    assert await sweep(center, utc(2031, 6, 3, 11)) == Swept(warned=1)  # mei's
    assert await sweep(center, utc(2031, 6, 3, 11, 30)) == Swept(warned=1)  # ana's
    assert await sweep(center, utc(2031, 6, 3, 12)) == Swept(escalated=1)  # mei's

    warning = await meis_desk.next("complaint_deadline")
    passed = await meis_desk.next("complaint_deadline")
    assert (warning["complaint_id"], warning["escalated"]) == (meis, False)
    assert (passed["complaint_id"], passed["escalated"]) == (meis, True)
    assert (warning["clock"], warning["step"]) == ("accept", "accept")
    assert warning["due_at"] == "2031-06-03T12:00:00Z"
    assert re.fullmatch(r"C-2031-\d{6}", warning["reference"])
    # Mei's warning was logged before ana's: had ana's desk been sent it, it would come first.
    heard = await anas_desk.next("complaint_deadline")
    assert (heard["complaint_id"], heard["escalated"]) == (anas, False)

    # A desk reconnecting after a drop is told what it missed, once each.
    again = await center.desk(mei, last_event_id=0)
    replayed = [f for f in again.frames if f["type"] == "complaint_deadline"]
    assert [(f["event_id"], f["escalated"]) for f in replayed] == [
        (warning["event_id"], False),
        (passed["event_id"], True),
    ]


async def test_an_agent_raises_a_complaint_from_the_call_it_holds(center: Center) -> None:
    mei = await center.agent("mei", billing=4)
    desk = await center.available(mei)
    call = await center.call(subject="Parcel")
    offer = await desk.next("offer")
    await desk.send(type="accept", offer_id=offer["offer_id"])
    await desk.next("assignment")

    await desk.send(
        type="raise_complaint",
        interaction_id=call["id"],
        summary="Parcel never arrived",
        original_message="My parcel never came and nobody called back.",
        remedy_sought="Send it again",
        severity="critical",
    )
    ack = await desk.next("ack")

    assert ack["of"] == "raise_complaint"
    detail = ack["detail"]
    assert re.fullmatch(r"C-\d{4}-\d{6}", detail["reference"])
    # A call carries no writing: the acknowledgement waits for mei to read it out.
    assert (detail["step"], detail["acknowledged_by"]) == ("accept", None)
    assert detail["reference"] in detail["acknowledgement"]
    read = await center.http.get(f"/v1/complaints/{detail['complaint_id']}", headers=center.admin)
    complaint = read.json()
    assert complaint["reference"] == detail["reference"]
    assert complaint["owner_agent_id"] == str(await agent_id(center, mei))
    assert (complaint["interaction_ids"], complaint["severity"]) == ([call["id"]], "critical")


async def test_raising_a_complaint_from_a_call_not_held_is_refused_as_the_api_refuses(
    center: Center,
) -> None:
    desk = await center.desk(await center.agent("mei", billing=4))
    waiting = await center.call()  # queued: mei never held it (and is not available)
    complaint = {
        "type": "raise_complaint",
        "summary": "Parcel never arrived",
        "original_message": "It never came.",
    }

    await desk.send(**complaint, interaction_id=waiting["id"])
    refused = await desk.next("error")
    await desk.send(**complaint, interaction_id=str(uuid.uuid4()))
    unknown = await desk.next("error")
    await desk.send(**complaint | {"summary": ""}, interaction_id=waiting["id"])
    invalid = await desk.next("error")

    assert (refused["of"], refused["error"]) == ("raise_complaint", "forbidden")
    assert (unknown["of"], unknown["error"]) == ("raise_complaint", "validation_error")
    assert "no interaction" in unknown["detail"]
    assert invalid["error"] == "validation_error"
    assert "summary" in invalid["detail"]
    listed = await center.http.get("/v1/complaints", headers=center.admin)
    assert listed.json()["total"] == 0


async def test_the_owners_desk_hears_the_customer_send_the_reply_back(center: Center) -> None:
    mei = await center.agent("mei", billing=4)
    desk = await center.desk(mei)
    made = await center.http.post(
        "/v1/customers", json={"name": "Li Wei", "tier": "gold"}, headers=center.admin
    )
    customer_id = uuid.UUID(made.json()["id"])
    complaint_id = await complaint_of(
        center, customer_id, await agent_id(center, mei), utc(2031, 6, 3, 8)
    )
    app = center.app
    context = acts.Context(now=utc(2031, 6, 3, 9), notices=app.state.customer_notices, link_base="")
    customer = acts.Who(Actor.customer, f"customer:{customer_id}")
    steps: list[tuple[acts.Who, Action, dict[str, Any]]] = [
        (SUPERVISOR, Action.confirm, {"category_id": None, "severity": "major"}),
        (
            SUPERVISOR,
            Action.send_reply,
            {"assessment": "lost", "reply": "Resent", "actions_taken": "r"},
        ),
        (customer, Action.customer_rejects, {"answer": "It never came again"}),
    ]
    async with unit_of_work(app.state.sessions) as session:
        complaint = await session.get(Complaint, uuid.UUID(complaint_id))
        assert complaint is not None
        complaint.acknowledged_at, complaint.acknowledged_by = utc(2031, 6, 3, 8), "read_out"
        category = ComplaintCategory(kind="complaint", name="delivery")
        session.add(category)
        session.add(ComplaintNote(complaint_id=complaint.id, author="t", text="courier lost it"))
        await session.flush()
        for who, action, records in steps:
            if action is Action.confirm:
                records = {**records, "category_id": category.id}
            await service.act(session, complaint, action, ActionRecords(**records), who, context)

    updates = [await desk.next("complaint_update") for _ in range(4)]
    assert [(u["action"], u["step"]) for u in updates] == [
        ("complete_intake", "accept"),
        ("confirm", "investigate"),
        ("send_reply", "reply"),
        ("customer_rejects", "investigate"),
    ]
    assert updates[-1]["actor"] == f"customer:{customer_id}"
    assert {u["complaint_id"] for u in updates} == {complaint_id}
