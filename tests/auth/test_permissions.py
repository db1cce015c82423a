"""Who may do what: agents, supervisors, admins and gateway keys."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.auth.models import GatewayKey, User

STAFF_ONLY = "this needs one of the roles: supervisor, admin"
ADMIN_ONLY = "this needs one of the roles: admin"
ANY_USER = "this needs one of the roles: agent, supervisor, admin"
NEW_USER = {"username": "sneaky", "display_name": "Sneaky", "role": "admin", "password": "p" * 12}


def _forbidden(response: httpx.Response, detail: str) -> None:
    assert response.status_code == 403, response.text
    assert response.json() == {"error": "forbidden", "detail": detail}


async def _counts(app: FastAPI) -> tuple[int, int]:
    async with app.state.sessions() as session:
        users = (await session.execute(select(func.count()).select_from(User))).scalar_one()
        keys = (await session.execute(select(func.count()).select_from(GatewayKey))).scalar_one()
        return users, keys


async def _user_id(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    response = await client.get("/v1/auth/me", headers=headers)
    assert response.status_code == 200, response.text
    user_id: str = response.json()["id"]
    return user_id


# Agents


async def test_an_agent_cannot_list_or_read_users(
    client: httpx.AsyncClient, agent_user: dict[str, str], admin: dict[str, str]
) -> None:
    admin_id = await _user_id(client, admin)

    _forbidden(await client.get("/v1/users", headers=agent_user), STAFF_ONLY)
    _forbidden(await client.get(f"/v1/users/{admin_id}", headers=agent_user), STAFF_ONLY)


async def test_an_agent_cannot_create_or_change_users(
    client: httpx.AsyncClient, agent_user: dict[str, str], app: FastAPI
) -> None:
    agent_id = await _user_id(client, agent_user)
    before = await _counts(app)

    _forbidden(await client.post("/v1/users", json=NEW_USER, headers=agent_user), ADMIN_ONLY)
    _forbidden(
        await client.patch(f"/v1/users/{agent_id}", json={"role": "admin"}, headers=agent_user),
        ADMIN_ONLY,
    )
    _forbidden(
        await client.patch(
            f"/v1/users/{agent_id}", json={"display_name": "Me"}, headers=agent_user
        ),
        ADMIN_ONLY,
    )

    assert await _counts(app) == before
    me = (await client.get("/v1/auth/me", headers=agent_user)).json()
    assert (me["role"], me["display_name"]) == ("agent", "Alex")


async def test_an_agent_cannot_list_create_or_revoke_gateway_keys(
    client: httpx.AsyncClient, agent_user: dict[str, str], admin: dict[str, str], app: FastAPI
) -> None:
    created = await client.post("/v1/gateway-keys", json={"name": "gw"}, headers=admin)
    before = await _counts(app)

    _forbidden(await client.get("/v1/gateway-keys", headers=agent_user), ADMIN_ONLY)
    _forbidden(
        await client.post("/v1/gateway-keys", json={"name": "mine"}, headers=agent_user),
        ADMIN_ONLY,
    )
    _forbidden(
        await client.delete(f"/v1/gateway-keys/{created.json()['id']}", headers=agent_user),
        ADMIN_ONLY,
    )

    assert await _counts(app) == before
    listed = (await client.get("/v1/gateway-keys", headers=admin)).json()["items"]
    assert [k["revoked_at"] for k in listed] == [None]


# Supervisors


async def test_a_supervisor_can_read_users(
    client: httpx.AsyncClient, supervisor: dict[str, str], admin: dict[str, str]
) -> None:
    admin_id = await _user_id(client, admin)

    listed = await client.get("/v1/users", headers=supervisor)
    one = await client.get(f"/v1/users/{admin_id}", headers=supervisor)

    assert listed.status_code == 200
    assert listed.json()["total"] == 2
    assert one.status_code == 200
    assert one.json()["role"] == "admin"


async def test_a_supervisor_cannot_create_or_change_users(
    client: httpx.AsyncClient, supervisor: dict[str, str], admin: dict[str, str], app: FastAPI
) -> None:
    supervisor_id = await _user_id(client, supervisor)
    admin_id = await _user_id(client, admin)
    before = await _counts(app)

    _forbidden(await client.post("/v1/users", json=NEW_USER, headers=supervisor), ADMIN_ONLY)
    _forbidden(
        await client.patch(
            f"/v1/users/{supervisor_id}", json={"role": "admin"}, headers=supervisor
        ),
        ADMIN_ONLY,
    )
    _forbidden(
        await client.patch(f"/v1/users/{admin_id}", json={"is_active": False}, headers=supervisor),
        ADMIN_ONLY,
    )

    assert await _counts(app) == before
    assert (await client.get("/v1/auth/me", headers=supervisor)).json()["role"] == "supervisor"
    assert (await client.get("/v1/auth/me", headers=admin)).status_code == 200


async def test_a_supervisor_cannot_touch_gateway_keys(
    client: httpx.AsyncClient, supervisor: dict[str, str], app: FastAPI
) -> None:
    _forbidden(await client.get("/v1/gateway-keys", headers=supervisor), ADMIN_ONLY)
    _forbidden(
        await client.post("/v1/gateway-keys", json={"name": "mine"}, headers=supervisor),
        ADMIN_ONLY,
    )
    _forbidden(
        await client.delete(f"/v1/gateway-keys/{uuid.uuid4()}", headers=supervisor), ADMIN_ONLY
    )
    assert (await _counts(app))[1] == 0


# Gateway keys


@pytest.mark.parametrize(
    ("method", "path", "detail"),
    [
        ("GET", "/v1/auth/me", ANY_USER),
        ("POST", "/v1/auth/logout", ANY_USER),
        ("GET", "/v1/users", STAFF_ONLY),
        ("GET", "/v1/users/{admin_id}", STAFF_ONLY),
        ("POST", "/v1/users", ADMIN_ONLY),
        ("PATCH", "/v1/users/{admin_id}", ADMIN_ONLY),
        ("GET", "/v1/gateway-keys", ADMIN_ONLY),
        ("POST", "/v1/gateway-keys", ADMIN_ONLY),
    ],
)
async def test_a_gateway_key_cannot_call_user_endpoints(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    gateway_key: dict[str, str],
    app: FastAPI,
    method: str,
    path: str,
    detail: str,
) -> None:
    admin_id = await _user_id(client, admin)
    body = {"POST": {"name": "another", **NEW_USER}, "PATCH": {"is_active": False}}.get(method)
    before = await _counts(app)

    response = await client.request(
        method, path.format(admin_id=admin_id), json=body, headers=gateway_key
    )

    _forbidden(response, detail)
    assert await _counts(app) == before
    assert (await client.get("/v1/auth/me", headers=admin)).status_code == 200


async def test_only_a_gateway_key_or_an_admin_passes_the_gateway_check(
    client: httpx.AsyncClient,
    gateway_route: str,
    gateway_key: dict[str, str],
    admin: dict[str, str],
    supervisor: dict[str, str],
    agent_user: dict[str, str],
) -> None:
    assert (await client.get(gateway_route, headers=gateway_key)).status_code == 200
    assert (await client.get(gateway_route, headers=admin)).status_code == 200
    for refused in (supervisor, agent_user):
        _forbidden(
            await client.get(gateway_route, headers=refused),
            "this needs a gateway key (or an admin)",
        )
    assert (await client.get(gateway_route)).status_code == 401


# Nobody


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/auth/me"),
        ("POST", "/v1/auth/logout"),
        ("GET", "/v1/users"),
        ("POST", "/v1/users"),
        ("GET", "/v1/users/{some_id}"),
        ("PATCH", "/v1/users/{some_id}"),
        ("GET", "/v1/gateway-keys"),
        ("POST", "/v1/gateway-keys"),
        ("DELETE", "/v1/gateway-keys/{some_id}"),
    ],
)
async def test_every_auth_endpoint_but_login_needs_a_token(
    client: httpx.AsyncClient, app: FastAPI, method: str, path: str
) -> None:
    body = {"POST": {"name": "x", **NEW_USER}, "PATCH": {"display_name": "x"}}.get(method)

    response = await client.request(
        method, path.format(some_id=uuid.uuid4()), json=body, headers={}
    )

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"] == "not_authenticated"
    assert await _counts(app) == (0, 0)


async def test_a_forbidden_request_is_not_a_404_in_disguise(
    client: httpx.AsyncClient, agent_user: dict[str, str]
) -> None:
    """The role check comes before the look-up, so an agent cannot probe which ids exist."""
    _forbidden(await client.get(f"/v1/users/{uuid.uuid4()}", headers=agent_user), STAFF_ONLY)
