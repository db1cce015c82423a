"""A supervisor moves waiting work to another queue or offers it to a named agent, and changes
its priority: each over HTTP against a live server, the agents on real desk sockets."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg

from app.supervisor.ledger import Ledger
from app.supervisor.ledger_reads import seed_ledger
from tests.desk.conftest import Center
from tests.supervisor.conftest import Supervisor, agent_id


async def test_queued_work_moved_to_another_queue_keeps_its_place_and_is_offered_there(
    center: Center, sue: Supervisor
) -> None:
    claims_id = await sue.queue("claims", claims=1)
    # Only a claims agent is at work: billing's call waits.
    kit_desk = await center.available(await center.agent("kit", claims=2))
    call = await center.call()
    before = await sue.interaction(call["id"])
    assert before["state"] == "queued"

    moved = await sue.post(f"/interactions/{call['id']}/move", to_queue="claims", reason="claim")

    assert moved.status_code == 200, moved.text
    after = moved.json()["interaction"]
    assert (after["queue_id"], after["transferred_from"]) == (claims_id, before["queue_id"])
    assert after["needs"] == [{"skill": "claims", "level": 1}]
    assert after["waiting_since"] == before["waiting_since"]
    assert moved.json()["offer_id"] is None
    offer = await kit_desk.next("offer")  # the matcher, woken, offers it in its new queue
    assert offer["interaction_id"] == call["id"]
    [event] = await sue.events("interaction.moved", call["id"])
    assert event["actor"] == sue.actor
    payload = event["payload"]
    assert payload.pop("waited_seconds") >= 0
    assert payload == {
        "from_queue_id": before["queue_id"],
        "to_queue_id": claims_id,
        "channel": "voice",
        "reason": "claim",
    }


async def test_offered_work_moved_to_another_queue_is_withdrawn_from_its_agent(
    center: Center, sue: Supervisor
) -> None:
    await sue.queue("claims", claims=1)
    mei_desk = await center.available(await center.agent("mei", billing=4))
    call = await center.call()
    offer = await mei_desk.next("offer")

    moved = await sue.post(f"/interactions/{call['id']}/move", to_queue="claims", reason="claim")

    assert moved.status_code == 200, moved.text
    assert moved.json()["interaction"]["state"] == "queued"
    withdrawn = await mei_desk.next("offer_withdrawn")
    assert (withdrawn["offer_id"], withdrawn["reason"]) == (
        offer["offer_id"],
        "moved by a supervisor",
    )
    [ended] = await sue.events("offer.withdrawn", offer["offer_id"])
    assert ended["actor"] == sue.actor
    # It waits again, as after any offer that ended, then moves: the log says both.
    requeued = await sue.events("interaction.queued", call["id"])
    assert requeued[-1]["payload"]["from"] == "offered"
    assert requeued[-1]["id"] < (await sue.events("interaction.moved", call["id"]))[0]["id"]


async def test_waiting_work_offered_to_a_named_agent_goes_through_the_offer_writer(
    center: Center, sue: Supervisor
) -> None:
    mei_desk = await center.available(await center.agent("mei", billing=5))
    bo = await center.agent("bo", billing=2)
    bo_id = await agent_id(center, bo)
    bo_desk = await center.available(bo)
    call = await center.call()
    first = await mei_desk.next("offer")  # routing's choice: the better proficiency

    moved = await sue.post(
        f"/interactions/{call['id']}/move", to_agent_id=bo_id, reason="Bo knows the account"
    )

    assert moved.status_code == 200, moved.text
    assert moved.json()["interaction"]["state"] == "offered"
    assert (await mei_desk.next("offer_withdrawn"))["offer_id"] == first["offer_id"]
    offer = await bo_desk.next("offer")
    assert offer["offer_id"] == moved.json()["offer_id"]
    assert offer["screen_pop"]["routing"]["reason"] == "Bo knows the account"
    offered = (await sue.events("interaction.offered", call["id"]))[-1]
    assert offered["actor"] == sue.actor
    assert offered["payload"]["directed"] is True
    assert offered["payload"]["reason"] == "Bo knows the account"
    assert offered["payload"]["agent_id"] == bo_id
    await bo_desk.send(type="accept", offer_id=offer["offer_id"])
    assert (await bo_desk.next("assignment"))["interaction"]["id"] == call["id"]


async def test_an_offer_to_a_named_agent_is_refused_when_it_cannot_take_it(
    center: Center, sue: Supervisor
) -> None:
    bo = await center.agent("bo", billing=2)
    bo_id = await agent_id(center, bo)
    bo_desk = await center.available(bo)
    held = await center.call()
    offer = await bo_desk.next("offer")
    await bo_desk.send(type="accept", offer_id=offer["offer_id"])
    await bo_desk.next("assignment")
    waiting = await center.call()  # Bo has no room: it waits
    cai_id = await agent_id(center, await center.agent("cai", vip=3))
    dee = await center.agent("dee", vip=3)
    dee_id = await agent_id(center, dee)
    await center.available(dee)

    async def refused(agent: str, interaction: str = waiting["id"]) -> tuple[int, str, str]:
        response = await sue.post(
            f"/interactions/{interaction}/move", to_agent_id=agent, reason="try"
        )
        return response.status_code, response.json().get("error"), response.json().get("detail")

    status, error, detail = await refused(bo_id)
    assert (status, error) == (409, "agent_cannot_take_it")
    assert detail.startswith("no room for a voice: it holds 1 call(s), 0 chat(s), 0 email(s)")
    status, error, detail = await refused(cai_id)
    assert (status, detail) == (
        409,
        "the agent is offline: only an agent in routing is offered work",
    )
    status, error, detail = await refused(dee_id)
    assert (status, detail) == (
        409,
        "the agent lacks skills the interaction needs: billing 2 (holds 0)",
    )
    status, error, detail = await refused(bo_id, held["id"])
    assert (status, error) == (409, "not_waiting")
    assert detail.startswith("cannot offer it to an agent: the interaction is assigned")
    status, error, detail = await refused(str(uuid.uuid4()))
    assert (status, error) == (404, "agent_not_found")
    assert (await sue.interaction(waiting["id"]))["state"] == "queued"  # untouched by each


async def test_a_move_names_what_is_wrong(center: Center, sue: Supervisor) -> None:
    call = await center.call()
    path = f"/interactions/{call['id']}/move"
    both = await sue.post(path, to_queue="billing", to_agent_id=str(uuid.uuid4()), reason="x")
    assert both.status_code == 422, both.text
    assert "either to_queue or to_agent_id" in both.json()["detail"]
    neither = await sue.post(path, reason="x")
    assert neither.status_code == 422, neither.text
    unknown_queue = await sue.post(path, to_queue="nowhere", reason="x")
    assert unknown_queue.status_code == 422, unknown_queue.text
    assert unknown_queue.json()["fields"][0]["field"] == "to_queue"
    same = await sue.post(path, to_queue="billing", reason="x")
    assert (same.status_code, same.json()["detail"]) == (
        409,
        "the interaction waits in that queue already",
    )
    gone = await sue.post(f"/interactions/{uuid.uuid4()}/move", to_queue="billing", reason="x")
    assert (gone.status_code, gone.json()["error"]) == (404, "interaction_not_found")


async def test_a_raised_priority_is_served_first_by_the_next_pass(
    center: Center, sue: Supervisor
) -> None:
    first = await center.call(external_ref="call-first")
    second = await center.call(external_ref="call-second")

    raised = await sue.post(f"/interactions/{second['id']}/priority", priority=50, reason="VIP")

    assert raised.status_code == 200, raised.text
    assert raised.json()["priority"] == 50
    [event] = await sue.events("interaction.priority_changed", second["id"])
    assert event["actor"] == sue.actor
    assert event["payload"] == {
        "queue_id": second["queue_id"],
        "from": 0,
        "to": 50,
        "reason": "VIP",
    }
    # Without it the first call, waiting longer, would go first.
    desk = await center.available(await center.agent("mei", billing=4))
    assert (await desk.next("offer"))["interaction_id"] == second["id"]
    assert (await sue.interaction(first["id"]))["state"] == "queued"


async def test_a_priority_change_is_refused_clearly(center: Center, sue: Supervisor) -> None:
    call = await center.call()
    path = f"/interactions/{call['id']}/priority"
    same = await sue.post(path, priority=0, reason="x")
    assert (same.status_code, same.json()["error"]) == (409, "nothing_to_change")
    too_high = await sue.post(path, priority=1001, reason="x")
    assert too_high.status_code == 422, too_high.text
    no_reason = await sue.post(path, priority=5)
    assert no_reason.status_code == 422, no_reason.text
    abandoned = await center.http.post(
        f"/v1/interactions/{call['id']}/abandon", headers=center.admin
    )
    assert abandoned.status_code == 200, abandoned.text
    ended = await sue.post(path, priority=5, reason="x")
    assert (ended.status_code, ended.json()["error"]) == (409, "not_waiting")


async def test_the_figures_count_a_move_out_of_one_queue_and_into_the_other(
    center: Center, sue: Supervisor, connection: asyncpg.Connection
) -> None:
    """The ledger (app/supervisor/ledger.py) folds the events a move really writes: the wait
    ends `transferred` in the queue it left and joins the other, offered or not."""
    claims_id = await sue.queue("claims", claims=1)
    mei_desk = await center.available(await center.agent("mei", billing=4))
    offered, queued = await center.call(), await center.call()
    await mei_desk.next("offer")  # the first is offered, the second waits
    for call in (offered, queued):
        response = await sue.post(f"/interactions/{call['id']}/move", to_queue="claims", reason="x")
        assert response.status_code == 200, response.text

    book, moment = Ledger(), datetime.now(UTC)
    await seed_ledger(
        connection, book, moment, await connection.fetchval("SELECT max(id) FROM events")
    )
    billing = book.periods(uuid.UUID(offered["queue_id"]), moment).today.tally
    claims = book.periods(uuid.UUID(claims_id), moment).today.tally
    assert (billing.offered, billing.transferred, billing.answered) == (2, 2, 0)
    assert (claims.offered, claims.transferred) == (2, 0)
