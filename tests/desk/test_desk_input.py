"""A desk message PostgreSQL could not hold is a validation_error, never a try_again.

`try_again` says the database was busy: a client retries it, and a NUL character or an event id
past a bigint would have failed on every retry.
"""

from __future__ import annotations

import uuid

import pytest

from app.core.inputs import BIGINT_MAX
from tests.desk.conftest import Center


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"type": "set_state", "state": "away", "reason": "lunch\u0000"}, "set_state.reason"),
        ({"type": "hello", "last_event_id": BIGINT_MAX + 1}, "hello.last_event_id"),
        (
            {"type": "reply", "interaction_id": str(uuid.uuid4()), "text": "Hello\u0000"},
            "reply.text",
        ),
    ],
)
async def test_a_value_the_database_cannot_hold_is_a_validation_error(
    center: Center, message: dict[str, object], field: str
) -> None:
    desk = await center.available(await center.agent("mei", billing=4))

    await desk.send(**message)

    error = await desk.next("error")
    assert error["error"] == "validation_error"
    assert error["detail"].startswith(f"{field}: ")
    await desk.send(type="set_state", state="away", reason="lunch")  # the desk carries on
    assert (await desk.next("ack"))["of"] == "set_state"
