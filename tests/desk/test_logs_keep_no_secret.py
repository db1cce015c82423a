"""No secret in any log line: a whole run of a real `contactcenter serve`, at INFO, read back.

The secrets a run handles: login tokens (in Authorization headers, and in the deprecated
`?token=` of a desk's URL), a gateway key, a socket ticket (in the desk's URL, where uvicorn's
access log and its websocket lines print it). Each one's random part must be absent from
every line; the lines that carried them must be there, blanked.
"""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import httpx
import websockets

from app.core.logging import BLANK, redact
from app.core.security import new_secret
from app.core.socket_session import CloseCode
from tests.core.test_socket_session import read_until_closed
from tests.routing.test_replicas import (
    AgentSpec,
    _create_admin,
    _create_agent,
    _dsn,
    _login,
    _setup_center,
    replicas_running,
)

QUEUE = {
    "name": "billing",
    "offer_timeout_seconds": 30,
    "wrap_up_seconds": 0,
    "required_skills": [{"skill": "billing", "level": 1}],
}


async def _desk_until(url: str, kind: str, *messages: dict[str, object]) -> dict[str, object]:
    """Open a desk, say hello and `messages`, and return the first frame of `kind`."""
    async with websockets.connect(url) as socket:
        for message in ({"type": "hello", "last_event_id": None}, *messages):
            await socket.send(json.dumps(message))
        while True:
            frame: dict[str, object] = json.loads(await socket.recv())
            if frame["type"] == kind:
                return frame


async def test_a_whole_server_run_logs_no_token_key_or_ticket(
    database_url: str, tmp_path: Path
) -> None:
    await _create_admin(database_url, "boss")
    async with replicas_running(database_url, tmp_path, ["only"], CC_LOG_LEVEL="INFO") as run:
        server = run["only"]
        connection = await asyncpg.connect(_dsn(database_url))
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            admin = await _login(http, "boss")
            await _setup_center(http, connection, admin, QUEUE)
            _, mei = await _create_agent(http, admin, AgentSpec("mei", 1, 0, 3))
            created = await http.post("/v1/gateway-keys", json={"name": "pbx"}, headers=admin)
            key = created.json()["key"]
            token = mei["Authorization"].removeprefix("Bearer ")
            ws = server.ws_url + "/v1/desk/ws"

            await _desk_until(f"{ws}?token={token}", "ready")  # the deprecated way
            issued = await http.post("/v1/desk/tickets", headers=mei)
            ticket = issued.json()["ticket"]
            async with websockets.connect(f"{ws}?ticket={ticket}") as socket:
                await socket.send(json.dumps({"type": "hello", "last_event_id": None}))
                await socket.send(json.dumps({"type": "set_state", "state": "available"}))
                call = {
                    "channel": "voice",
                    "queue": "billing",
                    "contact": {"kind": "phone", "value": "+86 138 0013 8000"},
                }
                posted = await http.post(
                    "/v1/interactions", json=call, headers={"Authorization": f"Bearer {key}"}
                )
                assert posted.status_code == 201, posted.text
                while json.loads(await socket.recv())["type"] != "offer":
                    pass
            # The ticket again (refused), and a token where no token belongs.
            async with websockets.connect(f"{ws}?ticket={ticket}") as spent:
                _, closed = await read_until_closed(spent)
            assert closed.code == CloseCode.REFUSED
            refused = await http.get(f"/v1/agents/me?token={token}&api_key={key}", headers=mei)
            assert refused.status_code == 200
        await connection.close()
    log = server.log_path.read_text(errors="replace")

    for secret in (admin["Authorization"].removeprefix("Bearer "), token, key, ticket):
        assert secret[4:] not in log, f"a secret ({secret[:4]}...) is in the log"
    assert f"/v1/desk/ws?token={BLANK}" in log  # the lines were written, blanked
    assert f"/v1/desk/ws?ticket={BLANK}" in log
    assert f"/v1/agents/me?token={BLANK}&api_key={BLANK}" in log


def test_every_kind_of_secret_is_blanked_wherever_it_stands() -> None:
    token, key, ticket = (new_secret(prefix) for prefix in ("cct", "cck", "ccs"))
    line = (
        f'GET /v1/x?token={token}&limit=5&signing_key=abc "Authorization: Bearer {token}"'
        f" key={key} ws?ticket={ticket}#frag"
    )
    blanked = redact(line)
    for secret in (token, key, ticket, "abc"):
        assert secret not in blanked
    assert "limit=5" in blanked  # what is not secret stays
    assert f"?token={BLANK}&limit=5&signing_key={BLANK}" in blanked
