"""Gateway keys: machine clients' credentials, shown once, stored as a digest, revocable."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.auth.models import GatewayKey
from app.core import security
from app.core.settings import Settings


async def _create(
    client: httpx.AsyncClient, headers: dict[str, str], name: str = "sip-gateway-1"
) -> httpx.Response:
    return await client.post("/v1/gateway-keys", json={"name": name}, headers=headers)


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _stored(app: FastAPI, key_id: str) -> GatewayKey:
    async with app.state.sessions() as session:
        key: GatewayKey | None = await session.get(GatewayKey, uuid.UUID(key_id))
        assert key is not None
        return key


async def _key_count(app: FastAPI) -> int:
    async with app.state.sessions() as session:
        count: int = (
            await session.execute(select(func.count()).select_from(GatewayKey))
        ).scalar_one()
        return count


async def _events(
    client: httpx.AsyncClient, headers: dict[str, str], kind: str
) -> list[dict[str, Any]]:
    response = await client.get("/v1/events", params={"kind": kind}, headers=headers)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["items"]
    return events


async def test_admin_creates_a_key_shown_once(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await _create(client, admin)

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {
        "id",
        "name",
        "key_prefix",
        "created_at",
        "revoked_at",
        "last_used_at",
        "key",
    }
    assert body["name"] == "sip-gateway-1"
    assert body["key"].startswith("cck_")
    assert len(body["key"]) > 30
    assert body["key_prefix"] == body["key"][:10]
    assert body["revoked_at"] is None
    assert body["last_used_at"] is None


async def test_only_the_digest_of_a_key_is_stored(
    client: httpx.AsyncClient, admin: dict[str, str], app: FastAPI, settings: Settings
) -> None:
    body = (await _create(client, admin)).json()
    secret: str = body["key"]

    stored = await _stored(app, body["id"])

    assert stored.key_digest == security.digest_secret(secret, settings.secret_key)
    assert secret not in stored.key_digest
    assert secret[4:] not in stored.key_digest
    assert stored.key_prefix == secret[:10]
    columns = [getattr(stored, c.key) for c in GatewayKey.__table__.columns]
    assert all(secret not in str(value) for value in columns)


async def test_the_listing_never_shows_a_key(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    first = (await _create(client, admin, "sip-gateway-1")).json()
    second = (await _create(client, admin, "mail-relay")).json()

    response = await client.get("/v1/gateway-keys", headers=admin)

    assert response.status_code == 200
    listed = response.json()["items"]
    assert [k["name"] for k in listed] == ["mail-relay", "sip-gateway-1"]
    assert all("key" not in k for k in listed)
    assert first["key"] not in response.text
    assert second["key"] not in response.text
    assert {k["key_prefix"] for k in listed} == {first["key_prefix"], second["key_prefix"]}


async def test_a_taken_name_is_a_409(
    client: httpx.AsyncClient, admin: dict[str, str], app: FastAPI
) -> None:
    assert (await _create(client, admin)).status_code == 201

    response = await _create(client, admin)

    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    assert "sip-gateway-1" in response.json()["detail"]
    assert await _key_count(app) == 1
    assert len(await _events(client, admin, "gateway_key.created")) == 1


async def test_racing_creates_of_one_name_make_one_key_and_409s(
    client: httpx.AsyncClient, admin: dict[str, str], app: FastAPI
) -> None:
    responses = await asyncio.gather(*(_create(client, admin) for _ in range(4)))

    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
    assert await _key_count(app) == 1
    assert len(await _events(client, admin, "gateway_key.created")) == 1


@pytest.mark.parametrize("name", ["", "   ", "n" * 101])
async def test_a_bad_name_is_a_422_naming_it(
    client: httpx.AsyncClient, admin: dict[str, str], app: FastAPI, name: str
) -> None:
    response = await _create(client, admin, name)

    assert response.status_code == 422
    assert [f["field"] for f in response.json()["fields"]] == ["name"]
    assert await _key_count(app) == 0


async def test_creating_a_key_records_who_made_it(
    client: httpx.AsyncClient, admin: dict[str, str], app: FastAPI
) -> None:
    admin_id = (await client.get("/v1/auth/me", headers=admin)).json()["id"]

    body = (await _create(client, admin)).json()

    assert str((await _stored(app, body["id"])).created_by) == admin_id
    events = await _events(client, admin, "gateway_key.created")
    assert [(e["subject_id"], e["actor"], e["payload"]) for e in events] == [
        (body["id"], f"user:{admin_id}", {"name": "sip-gateway-1"})
    ]
    assert body["key"] not in str(events)


async def test_a_key_authenticates_as_a_gateway(
    client: httpx.AsyncClient, admin: dict[str, str], gateway_route: str
) -> None:
    body = (await _create(client, admin)).json()

    response = await client.get(gateway_route, headers=_bearer(body["key"]))

    assert response.status_code == 200, response.text
    assert response.json() == {"actor": f"gateway:{body['id']}", "name": "sip-gateway-1"}


async def test_last_used_at_is_set_when_the_key_is_used(
    client: httpx.AsyncClient, admin: dict[str, str], app: FastAPI, gateway_route: str
) -> None:
    body = (await _create(client, admin)).json()
    before = datetime.now(UTC)

    assert (await client.get(gateway_route, headers=_bearer(body["key"]))).status_code == 200

    last_used = (await _stored(app, body["id"])).last_used_at
    assert last_used is not None
    assert before - timedelta(seconds=1) <= last_used <= datetime.now(UTC)
    listed = (await client.get("/v1/gateway-keys", headers=admin)).json()["items"]
    assert listed[0]["last_used_at"] is not None


async def test_revoking_a_key_stops_it_authenticating(
    client: httpx.AsyncClient, admin: dict[str, str], app: FastAPI, gateway_route: str
) -> None:
    body = (await _create(client, admin)).json()
    key = _bearer(body["key"])
    assert (await client.get(gateway_route, headers=key)).status_code == 200

    response = await client.delete(f"/v1/gateway-keys/{body['id']}", headers=admin)

    assert response.status_code == 200, response.text
    assert response.json()["revoked_at"] is not None
    assert "key" not in response.json()
    refused = await client.get(gateway_route, headers=key)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert refused.json()["error"] == "not_authenticated"
    listed = (await client.get("/v1/gateway-keys", headers=admin)).json()["items"]
    assert [k["revoked_at"] for k in listed] == [response.json()["revoked_at"]]
    assert await _key_count(app) == 1  # kept, for the record


async def test_revoking_twice_keeps_the_first_revocation(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = (await _create(client, admin)).json()
    first = await client.delete(f"/v1/gateway-keys/{body['id']}", headers=admin)

    second = await client.delete(f"/v1/gateway-keys/{body['id']}", headers=admin)

    assert second.status_code == 200
    assert second.json()["revoked_at"] == first.json()["revoked_at"]
    revoked = await _events(client, admin, "gateway_key.revoked")
    assert [e["subject_id"] for e in revoked] == [body["id"]]


async def test_revoking_one_key_leaves_the_others(
    client: httpx.AsyncClient, admin: dict[str, str], gateway_route: str
) -> None:
    doomed = (await _create(client, admin, "old-gateway")).json()
    kept = (await _create(client, admin, "new-gateway")).json()

    await client.delete(f"/v1/gateway-keys/{doomed['id']}", headers=admin)

    assert (await client.get(gateway_route, headers=_bearer(kept["key"]))).status_code == 200


async def test_revoking_an_unknown_key_is_a_404(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    missing = uuid.uuid4()

    response = await client.delete(f"/v1/gateway-keys/{missing}", headers=admin)

    assert response.status_code == 404
    assert response.json() == {
        "error": "gateway_key_not_found",
        "detail": f"no gateway key with id {missing}",
    }


async def test_a_user_token_is_not_a_gateway_key(
    client: httpx.AsyncClient, admin: dict[str, str], gateway_route: str
) -> None:
    """A user's token stays a user's token even if someone sends it with the key prefix."""
    token = admin["Authorization"].removeprefix("Bearer ")
    forged = "cck_" + token.removeprefix("cct_")

    response = await client.get(gateway_route, headers=_bearer(forged))

    assert response.status_code == 401
