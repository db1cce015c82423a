"""What the complaints tests share: a customer, an interaction an agent holds, categories, and
a complaint walked to a given step through the API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.auth.models import Role
from tests.conftest import UserFactory
from tests.support import held_by

Headers = dict[str, str]
COMPLAINTS = "/v1/complaints"


@dataclass
class Desk:
    """An agent with a customer's interaction in hand, and the staff around it."""

    app: FastAPI
    http: httpx.AsyncClient
    admin: Headers
    supervisor: Headers
    agent: Headers
    agent_id: str
    customer_id: str
    interaction_id: str
    make_user: UserFactory

    async def raise_complaint(self, **fields: Any) -> dict[str, Any]:
        body = {
            "interaction_id": self.interaction_id,
            "summary": "Charged twice for the March bill",
            "original_message": "You took the March payment twice from my account.",
            "remedy_sought": "Refund the second payment",
            **fields,
        }
        response = await self.http.post(COMPLAINTS, json=body, headers=self.agent)
        assert response.status_code == 201, response.text
        complaint: dict[str, Any] = response.json()
        return complaint

    async def act(
        self, complaint: dict[str, Any], action: str, as_: Headers | None = None, **records: Any
    ) -> httpx.Response:
        path = f"{COMPLAINTS}/{complaint['id']}/actions/{action}"
        return await self.http.post(path, json=records, headers=as_ or self.agent)

    async def moved(
        self, complaint: dict[str, Any], action: str, as_: Headers | None = None, **records: Any
    ) -> dict[str, Any]:
        response = await self.act(complaint, action, as_, **records)
        assert response.status_code == 200, response.text
        moved: dict[str, Any] = response.json()
        return moved

    async def category(self, kind: str, name: str) -> str:
        body = {"kind": kind, "name": name}
        made = await self.http.post(f"{COMPLAINTS}/categories", json=body, headers=self.admin)
        assert made.status_code == 201, made.text
        category_id: str = made.json()["id"]
        return category_id

    async def another_agent(self) -> Headers:
        return await self.make_user(Role.agent)


async def customer(
    http: httpx.AsyncClient, admin: Headers, name: str = "Ada Byron", **fields: Any
) -> str:
    body = {"name": name, "tier": "gold", **fields}
    made = await http.post("/v1/customers", json=body, headers=admin)
    assert made.status_code == 201, made.text
    customer_id: str = made.json()["id"]
    return customer_id


@pytest.fixture
def holding(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: Headers,
    supervisor: Headers,
    agent: Headers,
    make_user: UserFactory,
) -> Callable[[str], Awaitable[Desk]]:
    """A desk whose agent holds an interaction of a new customer on the channel given."""

    async def build(channel: str) -> Desk:
        customer_id = await customer(client, admin)
        interaction_id = await held_by(app, client, admin, agent, customer_id, channel=channel)
        me = await client.get("/v1/agents/me", headers=agent)
        return Desk(
            app=app,
            http=client,
            admin=admin,
            supervisor=supervisor,
            agent=agent,
            agent_id=me.json()["id"],
            customer_id=customer_id,
            interaction_id=interaction_id,
            make_user=make_user,
        )

    return build


@pytest.fixture
async def desk(holding: Callable[[str], Awaitable[Desk]]) -> Desk:
    """The agent holds a call: what the customer is told waits to be read out."""
    return await holding("voice")
