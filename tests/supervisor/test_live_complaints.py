"""Escalated and overdue complaints on the supervisor's live socket: one comes when the deadline
sweep escalates it, and goes (both flags false) when its late clock ends."""

from __future__ import annotations

import uuid

import asyncpg

from app.core.hub import asyncpg_dsn
from app.core.pg import now
from app.tickets import sweep
from tests.desk.conftest import Center
from tests.supervisor.conftest import open_watch, supervisor_headers
from tests.tickets.conftest import customer

# The complaint's running clocks past their time, as the hours passing would leave them.
PAST_DUE = (
    "UPDATE complaint_deadlines SET due_at = now() - interval '1 minute'"
    " WHERE complaint_id = $1 AND ended_at IS NULL"
)
# Its late clock ended and the event of it, as a step taken would leave them.
CLOCK_ENDED = (
    "UPDATE complaint_deadlines SET ended_at = now() WHERE complaint_id = $1 AND ended_at IS NULL",
    "INSERT INTO events (kind, subject_type, subject_id, actor, payload)"
    " VALUES ('complaint.moved', 'complaint', $1, 'test', '{}'::jsonb)",
)


async def test_an_escalated_complaint_shows_then_leaves_when_its_clock_ends(
    center_here: Center, database_url: str
) -> None:
    center = center_here
    customer_id = await customer(center.http, center.admin)
    raised = await center.http.post(
        "/v1/complaints",
        json={
            "customer_id": customer_id,
            "summary": "Charged twice",
            "original_message": "You took the May payment twice.",
            "remedy_sought": "Refund",
        },
        headers=center.admin,
    )
    assert raised.status_code == 201, raised.text
    complaint = raised.json()
    watch = await open_watch(center, await supervisor_headers(center))
    snapshot = await watch.next("snapshot")
    assert snapshot["complaints"] == []  # not late yet
    await watch.next("ready")

    log = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await log.execute(PAST_DUE, uuid.UUID(complaint["id"]))
        state = center.app.state
        assert await sweep.escalate(state.sessions, now(), hub=state.hub) == 1
        late = await watch.until(lambda f: f["type"] == "complaint")
        assert late["complaint"]["reference"] == complaint["reference"]
        assert (late["complaint"]["escalated"], late["complaint"]["overdue"]) == (True, True)
        assert late["complaint"]["due_at"] is not None

        async with log.transaction():
            await log.execute(CLOCK_ENDED[0], uuid.UUID(complaint["id"]))
            await log.execute(CLOCK_ENDED[1], complaint["id"])
        gone = await watch.until(lambda f: f["type"] == "complaint")
        assert (gone["complaint"]["escalated"], gone["complaint"]["overdue"]) == (False, False)
    finally:
        await log.close()
        await watch.socket.close()

    again = await open_watch(center, await supervisor_headers(center, "sam"))
    assert (await again.next("snapshot"))["complaints"] == []
    await again.socket.close()
