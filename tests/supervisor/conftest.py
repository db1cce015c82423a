"""A live center with desks (tests/desk's), and a supervisor who acts on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.auth.models import Role
from tests.desk.conftest import Center, center  # noqa: F401 - the fixture, shared
from tests.desk.test_desk_protocol import desks_left  # noqa: F401 - the fixture, shared
from tests.support import create_user_directly, login

Headers = dict[str, str]


@dataclass
class Supervisor:
    center: Center
    headers: Headers
    user_id: str

    @property
    def actor(self) -> str:
        return f"user:{self.user_id}"

    async def post(self, path: str, **body: Any) -> httpx.Response:
        return await self.center.http.post(f"/v1/supervisor{path}", json=body, headers=self.headers)

    async def events(self, kind: str, subject_id: str) -> list[dict[str, Any]]:
        """The log's events of `kind` about `subject_id`, oldest first."""
        response = await self.center.http.get(
            "/v1/events", params={"kind": kind, "subject_id": subject_id}, headers=self.headers
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def interaction(self, interaction_id: str) -> dict[str, Any]:
        response = await self.center.http.get(
            f"/v1/interactions/{interaction_id}", headers=self.headers
        )
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    async def queue(self, name: str, **skills: int) -> str:
        """A new queue requiring `skills`: its id."""
        for skill in skills:
            await self.center.http.post(
                "/v1/skills", json={"name": skill}, headers=self.center.admin
            )
        body = {
            "name": name,
            "offer_timeout_seconds": 5,
            "wrap_up_seconds": 0,
            "required_skills": [{"skill": s, "level": lvl} for s, lvl in skills.items()],
        }
        response = await self.center.http.post("/v1/queues", json=body, headers=self.center.admin)
        assert response.status_code == 201, response.text
        queue_id: str = response.json()["id"]
        return queue_id


async def agent_id(live: Center, headers: Headers) -> str:
    """The id of the agent logged in with `headers`."""
    me = await live.http.get("/v1/agents/me", headers=headers)
    assert me.status_code == 200, me.text
    found: str = me.json()["id"]
    return found


@pytest.fixture
async def sue(center: Center) -> Supervisor:  # noqa: F811 - the desk's fixture, used
    await create_user_directly(center.app, "sue", Role.supervisor, "correct horse battery")
    headers = await login(center.http, "sue", "correct horse battery")
    me = await center.http.get("/v1/auth/me", headers=headers)
    assert me.status_code == 200, me.text
    return Supervisor(center, headers, me.json()["id"])
