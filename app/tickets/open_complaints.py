"""A customer's open complaints, as the agent sees them with every offer (the screen pop's
`open_complaints`) and as routing weighs them (a queue's `complaint_owner_first`).

Open is any step but an ending (`models.OPEN_STEPS`, the predicate of the partial index
ix_complaints_customer_open: the very text, so PostgreSQL may use the index). A customer with
none costs the pop one probe of that index, which finds nothing.

The pop's read is a select list over the offered interaction `i` (`COLUMNS`), read by the
statement that writes the offer and by a replayed offer's read alike (app/desk/screen_pop.py);
it comes back as an array of rows, as the history does, so its timestamps decode to datetimes.
Routing's read is `OWNERS`: for each customer, the owner of the open complaint whose running
deadline is soonest. Intake's look-up (app/interactions/identify.py `LOOK_UP`) reads the same
owner for one arriving customer; it cannot import this module (interactions sits below
tickets), so it keeps the same ordering in its own text, and tests hold both to it
(tests/desk/test_open_complaints.py routes by the look-up and by a pass).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.tickets.deadlines import Severity
from app.tickets.models import OPEN_STEPS
from app.tickets.workflow import STEP_NUMBERS, Step

SHOWN = 10  # open complaints in a pop, newest first: more than a handful is a case for a lead

# A complaint's soonest running deadline (paused while the customer has the reply, ended when
# its step ended): what the agent must beat, and what orders the owners routing prefers.
DUE = """(
    SELECT min(d.due_at) FROM complaint_deadlines d
    WHERE d.complaint_id = k.id AND d.ended_at IS NULL AND d.paused_since IS NULL
)"""


class OpenComplaint(BaseModel):
    """One of the customer's open complaints, in the screen pop."""

    id: uuid.UUID
    reference: str = Field(description="What the customer quotes: C-2026-004217")
    step: Step = Field(description="The step it is at: intake, accept, investigate, reply, improve")
    step_number: int = Field(description="The step's number, 1-5")
    summary: str
    severity: Severity
    owner_agent_id: uuid.UUID | None = Field(description="The agent who owns it; null: none yet")
    owner: str | None = Field(description="The owner's display name; null: no owner")
    due_at: datetime | None = Field(
        description="Its soonest running deadline; null: none running (the customer has the "
        "reply, or it is at intake)"
    )
    overdue: bool = Field(description="A deadline of it passed unmet")
    raised_at: datetime


COLUMNS = f"""
    ARRAY(
        SELECT ROW(k.id, k.reference, k.step, k.summary, k.severity, k.owner_agent_id,
                   u.display_name, {DUE}, k.overdue, k.raised_at)
        FROM complaints k
        LEFT JOIN agents a ON a.id = k.owner_agent_id
        LEFT JOIN users u ON u.id = a.user_id
        WHERE k.customer_id = i.customer_id AND k.{OPEN_STEPS}
        ORDER BY k.raised_at DESC, k.id DESC
        LIMIT {SHOWN}
    ) AS open_complaints
"""  # noqa: S608 - constants only, no outside text


def from_row(row: Mapping[str, Any]) -> list[OpenComplaint]:
    """The customer's open complaints, newest first, from a row holding `COLUMNS`."""
    return [
        OpenComplaint(
            id=id_,
            reference=reference,
            step=step,
            step_number=STEP_NUMBERS[Step(step)],
            summary=summary,
            severity=Severity(severity),
            owner_agent_id=owner_agent_id,
            owner=owner,
            due_at=due_at,
            overdue=overdue,
            raised_at=raised_at,
        )
        for (
            id_,
            reference,
            step,
            summary,
            severity,
            owner_agent_id,
            owner,
            due_at,
            overdue,
            raised_at,
        ) in row["open_complaints"]
    ]


# For each customer of $1 with an open complaint that has an owner, that owner and the
# complaint's reference: of several, the complaint whose running deadline is soonest (then
# one with none running, newest first). Routing offers the customer's work to that owner
# first where the queue says so (`complaint_owner_first`).
OWNERS = f"""
    SELECT DISTINCT ON (k.customer_id) k.customer_id, k.owner_agent_id, k.reference
    FROM complaints k
    WHERE k.customer_id = ANY($1::uuid[]) AND k.{OPEN_STEPS} AND k.owner_agent_id IS NOT NULL
    ORDER BY k.customer_id, {DUE} NULLS LAST, k.raised_at DESC, k.id
"""  # noqa: S608 - constants only, no outside text
