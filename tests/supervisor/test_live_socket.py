"""The supervisor's live socket with a real websocket client against a live server: the snapshot,
frames while interactions flow, coalescing, resume, and who may open it."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import datetime

import pytest
import websockets

from app.core.settings import Settings
from app.core.socket_session import BAD_TICKET, CloseCode
from app.main import create_app
from app.supervisor import board, live
from tests.core.test_socket_session import read_until_closed
from tests.desk.conftest import Center
from tests.supervisor.conftest import open_watch, queue_named, supervisor_headers
from tests.support import served_in_loop


async def test_the_snapshot_shows_the_line_the_agents_and_then_ready(center: Center) -> None:
    mei = await center.agent("mei", billing=4)
    desk = await center.desk(mei)
    await desk.send(type="set_state", state="away", reason="training")
    await desk.next("ack")
    await center.call(contact={"kind": "phone", "value": "+86 138 0013 8001"})
    sue = await supervisor_headers(center)

    watch = await open_watch(center, sue)
    snapshot = await watch.next("snapshot")
    ready = await watch.next("ready")

    billing = queue_named(snapshot, "billing")
    assert billing["waiting"]["total"] == 1
    assert billing["waiting"]["by_channel"]["voice"] == 1
    assert sum(billing["waiting"]["by_tier"].values()) == 1
    assert billing["longest_wait_s"] is not None
    assert billing["longest_wait_s"] >= 0
    assert billing["agents"] == {"available": 0, "busy": 0, "wrap_up": 0, "away": 1, "offline": 0}
    assert billing["sl_target_seconds"] > 0
    assert billing["time_zone"]
    (agent,) = [a for a in snapshot["agents"] if a["name"] == "Mei"]
    assert (agent["state"], agent["reason"], agent["interactions"]) == ("away", "training", [])
    assert ready["event_id"] >= snapshot["event_id"] > 0
    assert ready["heartbeat_seconds"] > 0


async def test_a_queued_interaction_shows_in_its_queues_frame(center: Center) -> None:
    """How soon it shows is the benchmark's fan-out figure (docs/benchmarks.md)."""
    watch = await open_watch(center, await supervisor_headers(center))
    await watch.next("ready")

    await center.call()
    frame = await watch.until(
        lambda f: f["type"] == "queue" and f["queue"]["waiting"]["total"] == 1, within=5
    )
    assert frame["queue"]["name"] == "billing"
    assert frame["queue"]["waiting"]["by_channel"]["voice"] == 1
    assert frame["queue"]["today"]["offered"] == 1  # the ledger's count, folded in the window
    assert frame["queue"]["by_interval"][-1]["offered"] == 1


async def test_many_changes_of_a_queue_come_as_few_frames_the_last_with_the_final_count(
    center: Center,
) -> None:
    watch = await open_watch(center, await supervisor_headers(center))
    await watch.next("ready")

    calls = 40
    started = time.monotonic()
    await asyncio.gather(
        *(
            center.call(contact={"kind": "phone", "value": f"+86 138 0013 {8100 + n}"})
            for n in range(calls)
        )
    )
    await watch.until(
        lambda f: f["type"] == "queue" and f["queue"]["waiting"]["total"] == calls, within=5
    )
    frames = watch.queue_frames("billing")
    spread = frames[-1][0] - started
    # One frame a window (0.5 s) at most, give or take the first and the read's own time.
    assert len(frames) <= spread / board.WINDOW + 2, [f["queue"]["waiting"] for _, f in frames]
    assert len(frames) < calls / 4
    # A frame of the queue computed at most once a window (its `at`, the server's clock).
    computed = [datetime.fromisoformat(frame["at"]) for _, frame in frames]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(computed)]
    assert all(gap >= 0.95 * board.WINDOW for gap in gaps), gaps


async def test_a_resume_sends_only_what_changed_since_its_event_id(center: Center) -> None:
    created = await center.http.post(
        "/v1/queues",
        json={"name": "sales", "required_skills": [{"skill": "vip", "level": 1}]},
        headers=center.admin,
    )
    assert created.status_code == 201, created.text
    sue = await supervisor_headers(center)
    first = await open_watch(center, sue)
    snapshot = await first.next("snapshot")
    assert {q["name"] for q in snapshot["queues"]} == {"billing", "sales"}
    await first.next("ready")
    await center.desk(await center.agent("mei", billing=4))  # a change after the snapshot
    seen = (await first.until(lambda f: f["type"] == "agent" and f["agent"]["name"] == "Mei"))[
        "event_id"
    ]
    await first.socket.close()

    await center.call()  # billing changes while sue is away; sales does not
    watching = await open_watch(center, sue)  # to know the board has read the call
    await watching.until(  # in its snapshot, or in a frame after it if the read came later
        lambda f: (
            (f["type"] == "snapshot" and queue_named(f, "billing")["waiting"]["total"] == 1)
            or (
                f["type"] == "queue"
                and f["queue"]["name"] == "billing"
                and f["queue"]["waiting"]["total"] == 1
            )
        )
    )

    again = await open_watch(center, sue, last_event_id=seen)
    ready = await again.next("ready")
    caught_up = again.frames[:-1]
    assert "snapshot" not in [f["type"] for f in caught_up]
    queues = {f["queue"]["name"]: f for f in caught_up if f["type"] == "queue"}
    assert set(queues) == {"billing"}  # sales did not change since
    assert queues["billing"]["queue"]["waiting"]["total"] == 1
    assert all(f["event_id"] >= seen for f in caught_up)
    assert ready["event_id"] >= queues["billing"]["event_id"] > seen


async def test_a_resume_from_before_the_board_began_gets_a_snapshot(
    center_here: Center, settings: Settings, database_url: str
) -> None:
    sue = await supervisor_headers(center_here)
    first = await open_watch(center_here, sue)
    await first.next("snapshot")
    seen = (await first.next("ready"))["event_id"]
    await center_here.call()  # a change the replica started next did not hear

    # Another replica, started after that event: its board cannot tell what changed since.
    replica = create_app(settings, database_url)
    async with replica.router.lifespan_context(replica), served_in_loop(replica) as url:
        other = Center(center_here.http, center_here.admin, url.replace("http", "ws", 1), replica)
        watch = await open_watch(other, sue, last_event_id=seen)
        snapshot = await watch.receive()
        assert snapshot["type"] == "snapshot"
        assert queue_named(snapshot, "billing")["waiting"]["total"] == 1
        assert (await watch.receive())["type"] == "ready"
        await watch.socket.close()


async def test_agents_and_unknown_tickets_are_refused(center: Center) -> None:
    mei = await center.agent("mei", billing=4)
    refused = await center.http.post("/v1/supervisor/tickets", headers=mei)
    assert refused.status_code == 403

    desk_ticket = await center.ticket(mei)  # an agent's ticket does not open the floor
    cases = [
        (f"?ticket={desk_ticket}", live.NOT_STAFF),
        ("", live.NO_TICKET),
        ("?ticket=ccs_not-a-ticket-anyone-was-given", BAD_TICKET),
    ]
    for query, closing in cases:
        async with websockets.connect(f"{center.ws_url}/v1/supervisor/ws{query}") as socket:
            _, closed = await read_until_closed(socket)
        assert (closed.code, closed.reason) == (CloseCode.REFUSED, closing.reason)


@pytest.mark.parametrize("role_of", ["supervisor", "admin"])
async def test_supervisors_and_admins_open_it(center: Center, role_of: str) -> None:
    headers = center.admin if role_of == "admin" else await supervisor_headers(center)
    watch = await open_watch(center, headers)
    await watch.next("snapshot")
    await watch.next("ready")
