"""Fixtures for the auth tests."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from app.auth import service
from app.auth.dependencies import Gateway
from app.auth.models import Role
from app.auth.schemas import UserCreate
from app.core.db import unit_of_work
from app.core.events import SYSTEM_ACTOR
from tests.support import login


@pytest.fixture
async def agent_user(app: FastAPI, client: httpx.AsyncClient) -> dict[str, str]:
    """A user with the agent role, made by the auth service alone (no agents row).

    The permission checks look only at the role, so this keeps the auth tests apart from
    app/agents (the shared `agent` fixture goes through the agents service).
    """
    body = UserCreate(
        username="agent-alex", display_name="Alex", role=Role.agent, password="agent password"
    )
    async with unit_of_work(app.state.sessions) as session:
        await service.create_user(session, body, actor=SYSTEM_ACTOR, allow_agent=True)
    return await login(client, "agent-alex", "agent password")


@pytest.fixture
def gateway_route(app: FastAPI) -> str:
    """A test-only route guarded by `Gateway`, the dependency meant for the gateway webhooks."""

    async def whoami(principal: Gateway) -> dict[str, str]:
        return {"actor": principal.actor, "name": principal.name}

    app.add_api_route("/test-only/gateway", whoami, methods=["GET"])
    return "/test-only/gateway"


@pytest.fixture
async def gateway_key(client: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, str]:
    """An Authorization header carrying a fresh gateway key."""
    response = await client.post("/v1/gateway-keys", json={"name": "sip-gw"}, headers=admin)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['key']}"}
