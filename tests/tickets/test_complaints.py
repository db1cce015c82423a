"""Complaints through the API, every path and every refusal: raised from a call and resolved;
rejected at step 2; returned from step 4; reopened after closing (and not after the window);
each refusal names what is wrong (the step, who may, the records missing); the history reads
back as a timeline that nothing here can change."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.tickets.conftest import COMPLAINTS, Desk

pytestmark = pytest.mark.asyncio

REFERENCE = re.compile(r"C-\d{4}-\d{6}")


async def at_investigate(desk: Desk) -> dict[str, Any]:
    """A complaint raised from the agent's call, acknowledged aloud and confirmed: at step 3."""
    complaint = await desk.raise_complaint()
    said = await desk.http.post(
        f"{COMPLAINTS}/{complaint['id']}/acknowledgement", json={"said": True}, headers=desk.agent
    )
    assert said.status_code == 200, said.text
    billing = await desk.category("complaint", "billing")
    return await desk.moved(complaint, "confirm", category_id=billing, severity="major")


async def at_reply(desk: Desk) -> dict[str, Any]:
    return await at_reply_from(desk, await at_investigate(desk))


async def test_a_complaint_from_a_call_goes_through_the_five_steps_to_closed(desk: Desk) -> None:
    complaint = await desk.raise_complaint()
    assert REFERENCE.fullmatch(complaint["reference"])
    # Raised with its remedy sought: step 1's records are all there, so it is at step 2.
    assert (complaint["step"], complaint["step_number"]) == ("accept", 2)
    assert complaint["owner_agent_id"] == desk.agent_id
    assert complaint["customer_id"] == desk.customer_id
    assert complaint["channel"] == "voice"
    assert complaint["interaction_ids"] == [desk.interaction_id]
    # A call carries no writing: the acknowledgement waits for the agent to read it out.
    assert complaint["reference"] in complaint["acknowledgement"]
    assert complaint["acknowledged_at"] is None
    billing = await desk.category("complaint", "billing")
    refused = await desk.act(complaint, "confirm", category_id=billing, severity="major")
    assert refused.status_code == 422
    assert refused.json()["fields"] == [
        {"field": "acknowledged_at", "problem": "needed"},
        {"field": "acknowledgement", "problem": "needed"},
    ]
    said = await desk.http.post(
        f"{COMPLAINTS}/{complaint['reference']}/acknowledgement",
        json={"said": True},
        headers=desk.agent,
    )
    assert said.json()["acknowledged_by"] == "read_out"
    investigating = await desk.moved(complaint, "confirm", category_id=billing, severity="major")
    assert investigating["step"] == "investigate"
    assert [d["clock"] for d in investigating["deadlines"]] == ["accept", "investigate", "reply"]
    assert investigating["deadlines"][0]["met"] is True

    replied = await at_reply_from(desk, investigating)
    assert replied["step"] == "reply"
    assert replied["answer_due_at"] is not None
    accepted = await desk.moved(
        replied, "customer_accepts", answer="Thanks, that is fine", satisfaction=4
    )
    assert (accepted["step"], accepted["satisfaction"], accepted["accepted"]) == (
        "improve",
        4,
        True,
    )
    root = await desk.category("root_cause", "payment run retried")
    closed = await desk.moved(
        accepted,
        "close",
        desk.supervisor,
        root_cause_id=root,
        corrective_action="Make the payment run idempotent per customer and month",
        action_owner="Billing platform team",
    )
    assert closed["step"] == "closed"
    assert closed["closed_at"] is not None
    assert [a["owner"] for a in closed["corrective_actions"]] == ["Billing platform team"]
    clocks = {d["clock"]: d for d in closed["deadlines"]}
    assert all(d["ended_at"] is not None for d in clocks.values())
    assert clocks["reply"]["ended_at"] == replied["replied_at"]

    timeline = await desk.http.get(f"{COMPLAINTS}/{complaint['id']}/timeline", headers=desk.agent)
    kinds = [(e["kind"], e["payload"].get("action")) for e in timeline.json()["items"]]
    assert kinds == [
        ("complaint.raised", None),
        ("complaint.moved", "complete_intake"),
        ("complaint.acknowledged", None),
        ("complaint.moved", "confirm"),
        ("complaint.noted", None),
        ("complaint.moved", "send_reply"),
        ("complaint.moved", "customer_accepts"),
        ("complaint.corrective_action", None),
        ("complaint.moved", "close"),
    ]
    actors = {e["actor"] for e in timeline.json()["items"]}
    assert len(actors) == 2  # the agent and the supervisor, each named


async def at_reply_from(desk: Desk, complaint: dict[str, Any]) -> dict[str, Any]:
    missing = await desk.act(complaint, "send_reply", reply="Refunded.")
    assert missing.status_code == 422
    assert {f["field"] for f in missing.json()["fields"]} == {
        "assessment",
        "notes",
        "actions_taken",
    }
    noted = await desk.http.post(
        f"{COMPLAINTS}/{complaint['id']}/notes",
        json={"text": "Two debits on 3 March", "evidence": ["statement-2026-03.pdf"]},
        headers=desk.agent,
    )
    assert noted.status_code == 201, noted.text
    return await desk.moved(
        complaint,
        "send_reply",
        assessment="A retried payment run",
        reply="We have refunded the second payment.",
        actions_taken="Refund issued",
    )


async def test_a_complaint_rejected_at_step_2_tells_the_reason_and_ends(desk: Desk) -> None:
    complaint = await desk.raise_complaint()
    by_agent = await desk.act(complaint, "reject", reason="not ours")
    assert by_agent.status_code == 403
    assert "supervisor" in by_agent.json()["detail"]
    no_reason = await desk.act(complaint, "reject", desk.supervisor)
    assert no_reason.status_code == 422
    rejected = await desk.moved(
        complaint, "reject", desk.supervisor, reason="The charge was made by another company"
    )
    assert rejected["step"] == "rejected"
    assert rejected["rejected_reason"] == "The charge was made by another company"
    assert [d["ended_at"] is not None for d in rejected["deadlines"]] == [True]
    again = await desk.act(complaint, "confirm", desk.supervisor, category_id=None)
    assert again.status_code == 409
    work = await desk.http.post(
        f"{COMPLAINTS}/{complaint['id']}/notes", json={"text": "more"}, headers=desk.agent
    )
    assert work.status_code == 409


async def test_a_reply_the_customer_does_not_accept_goes_back_to_step_3_on_the_same_clock(
    desk: Desk,
) -> None:
    replied = await at_reply(desk)
    reply_clock = next(d for d in replied["deadlines"] if d["clock"] == "reply")
    assert reply_clock["paused_since"] is not None
    no_answer = await desk.act(replied, "customer_rejects")
    assert no_answer.status_code == 422
    returned = await desk.moved(
        replied, "customer_rejects", answer="42.00 is not what I paid twice: it was 44.00"
    )
    assert returned["step"] == "investigate"
    assert returned["accepted"] is False
    clocks = [d for d in returned["deadlines"] if d["ended_at"] is None]
    assert sorted(d["clock"] for d in clocks) == ["investigate", "reply"]
    resumed = next(d for d in clocks if d["clock"] == "reply")
    assert resumed["paused_since"] is None
    # The demo queue has no hours: the pause's open time is its wall time.
    assert resumed["due_at"] > reply_clock["due_at"]
    # The second reply is a new step 4, with a fresh link and answer wait.
    again = await desk.moved(
        returned,
        "send_reply",
        reply="You are right: we have refunded 44.00.",
        actions_taken="Refund corrected",
    )
    assert again["step"] == "reply"


async def test_a_closed_complaint_reopens_within_the_window_and_not_after(desk: Desk) -> None:
    replied = await at_reply(desk)
    accepted = await desk.moved(replied, "customer_accepts", answer="ok", satisfaction=5)
    closed = await desk.moved(
        accepted,
        "close",
        desk.supervisor,
        corrective_action="Alert on duplicate debits",
        action_owner="Billing",
        root_cause_id=await desk.category("root_cause", "duplicate run"),
    )
    by_agent = await desk.act(closed, "reopen", reason="customer called again")
    assert by_agent.status_code == 403
    reopened = await desk.moved(closed, "reopen", desk.supervisor, reason="Charged again in April")
    assert reopened["step"] == "investigate"
    assert reopened["closed_at"] is None
    replied = await desk.moved(
        reopened, "send_reply", reply="Refunded April too.", actions_taken="Refund"
    )
    accepted = await desk.moved(replied, "customer_accepts", answer="ok", satisfaction=3)
    closed = await desk.moved(accepted, "close", desk.supervisor)  # its corrective action stands
    long_ago = datetime.now(UTC) - timedelta(days=31)
    async with desk.app.state.pg.acquire() as connection:
        await connection.execute(
            "UPDATE complaints SET closed_at = $2 WHERE id = $1::text::uuid", closed["id"], long_ago
        )
    late = await desk.act(closed, "reopen", desk.supervisor, reason="again")
    assert late.status_code == 409
    assert "raise a new one" in late.json()["detail"]


async def test_refusals_name_the_step_the_actor_or_the_owner(desk: Desk) -> None:
    complaint = await desk.raise_complaint()
    jump = await desk.act(complaint, "send_reply", reply="x", actions_taken="y")
    assert jump.status_code == 409
    assert jump.json()["detail"] == "send_reply is taken at investigate, not at accept"
    close = await desk.act(complaint, "close", root_cause_id=None)
    assert close.status_code in (403, 409)
    other = await desk.another_agent()
    theirs = await desk.act(complaint, "confirm", other, severity="minor")
    assert theirs.status_code == 403
    assert (
        await desk.http.get(f"{COMPLAINTS}/{complaint['id']}", headers=other)
    ).status_code == 403
    listed = await desk.http.get(COMPLAINTS, headers=other)
    assert listed.json()["total"] == 0
    unknown = await desk.act(complaint, "escalate")
    assert unknown.status_code == 422
    extra = await desk.act(complaint, "confirm", colour="red")
    assert extra.status_code == 422
    wrong_step_record = await desk.http.patch(
        f"{COMPLAINTS}/{complaint['id']}", json={"assessment": "early"}, headers=desk.agent
    )
    assert wrong_step_record.status_code == 409
    assert wrong_step_record.json()["detail"] == "assessment is not kept at accept"


async def test_the_history_cannot_be_edited_or_deleted(desk: Desk) -> None:
    complaint = await desk.raise_complaint()
    path = f"{COMPLAINTS}/{complaint['id']}/timeline"
    for method in ("PUT", "PATCH", "DELETE", "POST"):
        response = await desk.http.request(method, path, json={}, headers=desk.admin)
        assert response.status_code == 405, method
    deleted = await desk.http.delete(f"{COMPLAINTS}/{complaint['id']}", headers=desk.admin)
    assert deleted.status_code == 405
    # A correction is a new entry that keeps what was there before.
    changed = await desk.http.patch(
        f"{COMPLAINTS}/{complaint['id']}", json={"severity": "critical"}, headers=desk.agent
    )
    assert changed.status_code == 200, changed.text
    timeline = (await desk.http.get(path, headers=desk.agent)).json()["items"]
    assert timeline[-1]["kind"] == "complaint.recorded"
    assert timeline[-1]["payload"]["before"] == {"severity": "major"}
    assert timeline[-1]["payload"]["after"] == {"severity": "critical"}


async def test_references_count_up_and_read_as_a_customer_says_them(desk: Desk) -> None:
    first = await desk.raise_complaint()
    second = await desk.raise_complaint(summary="Rude on the phone")
    year, number = first["reference"].split("-")[1:]
    assert second["reference"] == f"C-{year}-{int(number) + 1:06d}"
    for said in (f"c {year} {int(number)}", f"C{year}{number}", first["reference"].lower()):
        found = await desk.http.get(f"{COMPLAINTS}/{said}", headers=desk.agent)
        assert found.status_code == 200, said
        assert found.json()["id"] == first["id"]
    nonsense = await desk.http.get(f"{COMPLAINTS}/not-a-reference", headers=desk.agent)
    assert nonsense.status_code == 404


async def test_an_agent_raises_only_from_its_own_interactions(desk: Desk) -> None:
    other = await desk.another_agent()
    body = {
        "interaction_id": desk.interaction_id,
        "summary": "s",
        "original_message": "m",
    }
    refused = await desk.http.post(COMPLAINTS, json=body, headers=other)
    assert refused.status_code == 403
    no_interaction = await desk.http.post(
        COMPLAINTS,
        json={**body, "interaction_id": None, "customer_id": desk.customer_id},
        headers=other,
    )
    assert no_interaction.status_code == 422
    # A supervisor records a letter for the customer; without a remedy it stays at step 1.
    letter = await desk.http.post(
        COMPLAINTS,
        json={
            "customer_id": desk.customer_id,
            "channel": "letter",
            "summary": "Letter about the March bill",
            "original_message": "Dear Sir, ...",
            "owner_agent_id": desk.agent_id,
        },
        headers=desk.supervisor,
    )
    assert letter.status_code == 201, letter.text
    assert (letter.json()["step"], letter.json()["channel"]) == ("intake", "letter")
    missing = await desk.act(letter.json(), "complete_intake")
    assert missing.status_code == 422
    assert [f["field"] for f in missing.json()["fields"]] == ["remedy_sought"]
    done = await desk.moved(letter.json(), "complete_intake", remedy_sought="An apology")
    assert done["step"] == "accept"


async def test_an_admin_edits_the_policy_and_new_clocks_follow_it(desk: Desk) -> None:
    policy = (await desk.http.get(f"{COMPLAINTS}/policy", headers=desk.admin)).json()
    assert policy["deadlines"]["durations"]["major"]["gold"]["accept"] == "PT4H"
    policy["deadlines"]["durations"]["major"]["gold"]["accept"] = "PT30M"
    by_supervisor = await desk.http.put(
        f"{COMPLAINTS}/policy", json=policy, headers=desk.supervisor
    )
    assert by_supervisor.status_code == 403
    saved = await desk.http.put(f"{COMPLAINTS}/policy", json=policy, headers=desk.admin)
    assert saved.status_code == 200, saved.text
    complaint = await desk.raise_complaint()  # a gold customer's major complaint
    [accept] = complaint["deadlines"]
    started = datetime.fromisoformat(accept["started_at"])
    assert datetime.fromisoformat(accept["due_at"]) - started == timedelta(minutes=30)

    gap = {
        **policy,
        "deadlines": {"durations": {"major": policy["deadlines"]["durations"]["major"]}},
    }
    refused = await desk.http.put(f"{COMPLAINTS}/policy", json=gap, headers=desk.admin)
    assert refused.status_code == 422
    assert "minor" in refused.text
    nowhere = await desk.http.put(
        f"{COMPLAINTS}/policy", json={**policy, "queue_id": str(uuid.uuid4())}, headers=desk.admin
    )
    assert nowhere.status_code == 422, nowhere.text
    assert "queue_id" in nowhere.text
