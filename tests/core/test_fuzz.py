"""No request, however malformed, makes the API answer a 5xx: schemathesis on its own OpenAPI.

Schemathesis's command line, run as a client would run it, reads /openapi.json from the app
served on a loopback port and sends what it makes of it: the documented examples, the edges of
every field (the longest string, the largest integer and one past them, a NUL character), random
valid and invalid values, and chains of calls that create what they then change and delete. It
fails on any 5xx (`not_a_server_error`), with a curl line for each.

It runs twice: logged in as an admin (who may call every operation), then with no token at
all (every operation must refuse cleanly before it reads anything). Deterministic
(`--generation-deterministic`: the same cases on every run) and bounded by MAX_EXAMPLES per
operation and phase, which keeps it to about 45 s on two cores (for some 110 operations). The
time limits below are a hung run's guard, several times that, not a speed target.

What it does not reach, and why:
- the desk's websocket (/v1/desk/ws) is no HTTP operation, so not in the OpenAPI document:
  tests/desk/test_desk_input.py sends it what the database could not hold;
- /docs, /redoc, /openapi.json and the docs' assets are FastAPI's own pages, left out of the
  document: tests/core/test_openapi.py fetches them.
Nothing else is left out. Two things keep the admin able to log in again (a logout, or a
password changed by the fuzzer, ends its token; schemathesis then logs in again): every
`user_id` in a path is that of another user, a supervisor the fuzzer may change at will, so the
admin's own password is never changed under it.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.auth.models import Role
from tests.support import LiveServer, create_user_directly, login

MAX_EXAMPLES = 6
ADMIN, PASSWORD = "fuzz-admin", "correct horse battery"
PHASES_WITHOUT_A_TOKEN = "examples,fuzzing"
RUN_LIMIT_S = 240  # one schemathesis run; the test's own limit is two of them and some

# Log in by ourselves, never by schemathesis's own guess (it would sign a user up and log in as
# that user, and with no token given it tried and failed in its own code).
NO_GUESSED_LOGIN = """
[auth]
auto-signup = false
"""
LOGIN = f"""{NO_GUESSED_LOGIN}
[auth.dynamic.openapi.HTTPBearer]
path = "/v1/auth/login"
payload = {{ username = "{ADMIN}", password = "{PASSWORD}" }}
extract_selector = "/access_token"
"""


async def fuzz(server: LiveServer, folder: Path, config: str, *options: str) -> None:
    """One schemathesis run against `server`; fails with its report if anything did."""
    (folder / "schemathesis.toml").write_text(config)
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--no-color",
        "--config-file",
        str(folder / "schemathesis.toml"),
        "run",
        f"{server.base_url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--generation-deterministic",
        "--workers",
        "1",
        *options,
    ]
    run = await asyncio.create_subprocess_exec(
        *command, cwd=folder, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    report, _ = await asyncio.wait_for(run.communicate(), timeout=RUN_LIMIT_S)
    assert run.returncode == 0, report.decode(errors="replace")


@pytest.fixture
async def supervisor_id(app: FastAPI, client: httpx.AsyncClient) -> str:
    """The admin the fuzzer logs in as, and the supervisor it may change (every path's
    `user_id`)."""
    await create_user_directly(app, ADMIN, Role.admin, PASSWORD)
    await create_user_directly(app, "sam", Role.supervisor, PASSWORD)
    admin = await login(client, ADMIN, PASSWORD)
    users = (await client.get("/v1/users", params={"role": "supervisor"}, headers=admin)).json()
    return str(users["items"][0]["id"])


@pytest.mark.timeout(2 * RUN_LIMIT_S + 60)
async def test_no_request_is_answered_with_a_5xx(
    live_server: LiveServer, supervisor_id: str, tmp_path: Path
) -> None:
    as_admin = f'{LOGIN}\n[parameters]\n"path.user_id" = "{supervisor_id}"\n'
    await fuzz(live_server, tmp_path, as_admin)
    await fuzz(live_server, tmp_path, NO_GUESSED_LOGIN, "--phases", PHASES_WITHOUT_A_TOKEN)
