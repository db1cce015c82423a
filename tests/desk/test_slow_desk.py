"""A desk that stops reading delays no other desk, and is closed with the documented code."""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Any

import asyncpg
import pytest

from app.core import socket_session
from app.core.hub import asyncpg_dsn
from app.core.socket_session import TOO_FAR_BEHIND, CloseCode, Limits
from tests.core.test_socket_session import read_until_closed, stuck_client_socket
from tests.desk.conftest import Center

# Events as another replica would write them: a call's progress, for one agent's desk each.
PROGRESS = (
    "INSERT INTO events (kind, subject_type, subject_id, actor, payload)"
    " VALUES ('interaction.progress', 'interaction', $1, 'test', $2::jsonb)"
)
BATCH = 20  # events for each desk per round
BULKY = 20_000  # characters of each of the stuck desk's events: a few hundred fill its buffers
ROUNDS = 500  # far more than it takes: the stuck desk's 1,000 unsent events close it


async def _agent_id(center: Center, headers: dict[str, str]) -> str:
    me: dict[str, Any] = (await center.http.get("/v1/agents/me", headers=headers)).json()
    return str(me["id"])


async def test_a_desk_that_stops_reading_delays_no_other_and_is_closed(
    center: Center, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The send timeout is set far beyond tom's patience (10 s a frame), so that a tom held up
    # behind mei would miss his frames, not get them late; mei is closed by the hub's bound.
    monkeypatch.setattr(socket_session, "LIMITS", Limits(send_timeout=120.0))
    mei_headers = await center.agent("mei", billing=4)
    tom_headers = await center.agent("tom", billing=4)
    mei_id, tom_id = await _agent_id(center, mei_headers), await _agent_id(center, tom_headers)
    # Mei's console stops reading after its ready frame: no recv, a one-frame buffer, no
    # compression (the bulky frames would shrink to nothing), a small kernel buffer.
    mei = await center.desk(
        mei_headers, sock=await stuck_client_socket(center.ws_url), max_queue=1, compression=None
    )
    tom = await center.desk(tom_headers)
    log = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        bulky = json.dumps({"agent_id": mei_id, "note": secrets.token_hex(BULKY // 2)})
        meis_call, toms_call = str(uuid.uuid4()), str(uuid.uuid4())
        sent = 0
        for _ in range(ROUNDS):
            rows = []
            for n in range(sent, sent + BATCH):
                rows += [(meis_call, bulky), (toms_call, json.dumps({"agent_id": tom_id, "n": n}))]
            await log.executemany(PROGRESS, rows)
            for n in range(sent, sent + BATCH):  # every one of tom's, in order, in time
                assert (await tom.next("interaction_update"))["detail"]["n"] == n
            sent += BATCH
            if await log.fetchval("SELECT connection_id IS NULL FROM agents WHERE id = $1", mei_id):
                break  # mei's socket was closed and she left routing
        else:
            pytest.fail("the desk that stopped reading was never closed")

        await log.execute(PROGRESS, toms_call, json.dumps({"agent_id": tom_id, "n": sent}))
        assert (await tom.next("interaction_update"))["detail"]["n"] == sent
    finally:
        await log.close()

    # Mei reads again: what the server had sent, then the close frame with its code.
    _, closed = await read_until_closed(mei.socket)
    assert (closed.code, closed.reason) == (CloseCode.TRY_AGAIN_LATER, TOO_FAR_BEHIND.reason)
