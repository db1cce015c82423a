"""A supervisor that stops reading delays no other supervisor, and is closed with the
documented code once its own session's queue is full."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import asyncpg
import pytest

from app.core import socket_session
from app.core.hub import asyncpg_dsn
from app.core.socket_session import TOO_SLOW, CloseCode, Limits
from tests.core.test_socket_session import read_until_closed, stuck_client_socket
from tests.desk.conftest import Center
from tests.supervisor.conftest import Frame, open_watch, supervisor_headers

QUEUES = 300  # queues whose every frame changes each round: a few hundred kilobytes a round
ROUNDS = 150  # far more than it takes to fill the stuck supervisor's buffers and queue
# Queues as an admin's import would leave them: billing's settings under long names.
MANY_QUEUES = """
    INSERT INTO queues (id, name, description, sl_target_percent, sl_target_seconds,
                        abandon_policy, offer_timeout_seconds, tier_weights, aging_factor,
                        wrap_up_seconds, created_at, updated_at)
    SELECT gen_random_uuid(), 'bulk ' || n || ' ' || repeat('x', 50), '', sl_target_percent,
           sl_target_seconds, abandon_policy, offer_timeout_seconds, tier_weights, aging_factor,
           wrap_up_seconds, now(), now()
    FROM queues, generate_series(1, $1) n WHERE name = 'billing'
"""
# Every bulk queue's target moved, and the event that says so, as another replica would.
MOVE_TARGETS = (
    "UPDATE queues SET sl_target_seconds = $1 WHERE name LIKE 'bulk %'",
    "INSERT INTO events (kind, subject_type, subject_id, actor, payload)"
    " VALUES ('queue.updated', 'queue', $1, 'test', '{}'::jsonb)",
)


def moved_to(target: int) -> Callable[[Frame], bool]:
    """A queue frame with the target of the round."""
    return lambda f: f["type"] == "queue" and f["queue"]["sl_target_seconds"] == target


async def test_a_supervisor_that_stops_reading_delays_no_other_and_is_closed(
    center_here: Center, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    center = center_here
    # Sends never time out here: the stuck socket is closed by its full queue, and a fast
    # supervisor held up behind it would miss its deadline below rather than be let go.
    monkeypatch.setattr(socket_session, "LIMITS", Limits(send_timeout=120.0))
    board = center.app.state.live_board
    log = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await log.execute(MANY_QUEUES, QUEUES)
        await log.execute(MOVE_TARGETS[1], str(uuid.uuid4()))
        # Sue's screen stops reading after the handshake: a one-frame client buffer, a small
        # kernel buffer, no compression (the frames would shrink to nothing).
        sue = await open_watch(
            center,
            await supervisor_headers(center, "sue"),
            sock=await stuck_client_socket(center.ws_url),
            max_queue=1,
            compression=None,
        )
        sam = await open_watch(center, await supervisor_headers(center, "sam"))
        await sam.next("ready", within=20)
        for target in range(1000, 1000 + ROUNDS):
            moved = time.monotonic()
            async with log.transaction():
                await log.execute(MOVE_TARGETS[0], target)
                await log.execute(MOVE_TARGETS[1], str(uuid.uuid4()))
            await sam.until(moved_to(target), within=60)
            # A round of 300 queues takes seconds on a loaded machine; a sam held
            # behind sue would wait for sue's send timeout (120 s here) or its closing.
            assert time.monotonic() - moved < 30.0, "sam's frames waited for sue"
            if board.watching == 1:
                break  # sue's socket was closed
        else:
            pytest.fail("the supervisor that stopped reading was never closed")
    finally:
        await log.close()

    _, closed = await read_until_closed(sue.socket)
    assert (closed.code, closed.reason) == (CloseCode.TRY_AGAIN_LATER, TOO_SLOW.reason)
    await sam.socket.close()
