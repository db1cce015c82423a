"""Logging in and out, and what a bearer token is good for."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy import func, select, update

from app.auth.models import AccessToken, Role, User
from app.core import security
from app.core.events import Event
from app.core.settings import Settings
from app.main import create_app
from tests.conftest import UserFactory
from tests.support import create_user_directly, login

PASSWORD = "correct horse battery"  # the password make_user gives everyone
VAGUE = {"error": "not_authenticated", "detail": "wrong username or password"}


async def _login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/v1/auth/login", json={"username": username, "password": password})


async def _token_count(app: FastAPI) -> int:
    async with app.state.sessions() as session:
        count: int = (
            await session.execute(select(func.count()).select_from(AccessToken))
        ).scalar_one()
        return count


async def _events(app: FastAPI, kind: str) -> list[Event]:
    async with app.state.sessions() as session:
        return list((await session.execute(select(Event).where(Event.kind == kind))).scalars())


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_login_returns_a_token_its_expiry_and_the_user(
    client: httpx.AsyncClient, make_user: UserFactory, settings: Settings
) -> None:
    await make_user(Role.supervisor, username="sam")
    before = datetime.now(UTC)

    response = await _login(client, "sam", PASSWORD)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["access_token"].startswith("cct_")
    assert len(body["access_token"]) > 30
    assert body["token_type"] == "bearer"
    expires_at = datetime.fromisoformat(body["expires_at"])
    ttl = timedelta(minutes=settings.token_ttl_minutes)
    assert before + ttl - timedelta(seconds=5) <= expires_at <= datetime.now(UTC) + ttl
    user: dict[str, Any] = body["user"]
    assert set(user) == {"id", "username", "display_name", "role", "is_active", "created_at"}
    assert user["username"] == "sam"
    assert user["role"] == "supervisor"
    assert user["is_active"] is True


async def test_each_login_gives_a_new_token(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    await make_user(Role.admin, username="ada")
    first = (await _login(client, "ada", PASSWORD)).json()["access_token"]
    second = (await _login(client, "ada", PASSWORD)).json()["access_token"]
    assert first != second


async def test_login_writes_a_logged_in_event(
    client: httpx.AsyncClient, make_user: UserFactory, app: FastAPI
) -> None:
    await make_user(Role.supervisor, username="sam")  # logs in once itself
    user_id = (await _login(client, "sam", PASSWORD)).json()["user"]["id"]

    events = [e for e in await _events(app, "user.logged_in") if e.subject_id == user_id]
    assert len(events) == 2
    assert all(e.actor == f"user:{user_id}" for e in events)


@pytest.mark.parametrize(
    ("username", "password"),
    [
        pytest.param("sam", "wrong password", id="wrong-password"),
        pytest.param("sam", PASSWORD.upper(), id="password-is-case-sensitive"),
        pytest.param("nobody", PASSWORD, id="unknown-user"),
    ],
)
async def test_a_failed_login_is_a_vague_401(
    client: httpx.AsyncClient,
    make_user: UserFactory,
    app: FastAPI,
    username: str,
    password: str,
) -> None:
    await make_user(Role.supervisor, username="sam")
    tokens_before = await _token_count(app)
    logins_before = len(await _events(app, "user.logged_in"))

    response = await _login(client, username, password)

    assert response.status_code == 401
    assert response.json() == VAGUE
    assert response.headers["www-authenticate"] == "Bearer"
    assert await _token_count(app) == tokens_before
    assert len(await _events(app, "user.logged_in")) == logins_before


async def test_a_deactivated_user_gets_the_same_vague_401(
    client: httpx.AsyncClient, make_user: UserFactory, admin: dict[str, str]
) -> None:
    await make_user(Role.supervisor, username="sam")
    user_id = (await _login(client, "sam", PASSWORD)).json()["user"]["id"]
    deactivated = await client.patch(
        f"/v1/users/{user_id}", json={"is_active": False}, headers=admin
    )
    assert deactivated.status_code == 200, deactivated.text

    response = await _login(client, "sam", PASSWORD)

    assert response.status_code == 401
    assert response.json() == VAGUE


async def test_unknown_and_deactivated_users_cost_a_password_check(
    client: httpx.AsyncClient,
    make_user: UserFactory,
    admin: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Skipping the argon2 check for them would let response times tell who exists."""
    await make_user(Role.supervisor, username="sam")
    user_id = (await _login(client, "sam", PASSWORD)).json()["user"]["id"]
    await client.patch(f"/v1/users/{user_id}", json={"is_active": False}, headers=admin)
    checked: list[str] = []
    real_verify = security.verify_password

    def spy(password_hash: str, password: str) -> bool:
        checked.append(password)
        return real_verify(password_hash, password)

    monkeypatch.setattr(security, "verify_password", spy)

    assert (await _login(client, "nobody", "guess one")).status_code == 401
    assert (await _login(client, "sam", "guess two")).status_code == 401
    assert checked == ["guess one", "guess two"]


@pytest.mark.parametrize("typed", ["Mixed.Case", "mixed.case", "MIXED.CASE", "  mixed.CASE "])
async def test_the_username_is_case_insensitive(
    client: httpx.AsyncClient, make_user: UserFactory, typed: str
) -> None:
    await make_user(Role.admin, username="Mixed.Case")

    response = await _login(client, typed, PASSWORD)

    assert response.status_code == 200, response.text
    assert response.json()["user"]["username"] == "Mixed.Case"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": PASSWORD}, "username"),
        ({"username": "sam"}, "password"),
        ({"username": "", "password": PASSWORD}, "username"),
        ({"username": "sam", "password": ""}, "password"),
        ({"username": "s" * 65, "password": PASSWORD}, "username"),
    ],
)
async def test_a_malformed_login_names_the_field(
    client: httpx.AsyncClient, body: dict[str, str], field: str
) -> None:
    response = await client.post("/v1/auth/login", json=body)
    assert response.status_code == 422
    assert response.json()["error"] == "validation_error"
    assert [f["field"] for f in response.json()["fields"]] == [field]


async def test_an_outdated_hash_is_upgraded_on_login_and_still_works(
    client: httpx.AsyncClient, make_user: UserFactory, app: FastAPI
) -> None:
    await make_user(Role.supervisor, username="sam")
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    async with app.state.sessions() as session, session.begin():
        await session.execute(update(User).where(User.username == "sam").values(password_hash=weak))
    assert security.password_needs_rehash(weak)

    first = await _login(client, "sam", PASSWORD)

    assert first.status_code == 200, first.text
    async with app.state.sessions() as session:
        stored = (
            await session.execute(select(User.password_hash).where(User.username == "sam"))
        ).scalar_one()
    assert stored != weak
    assert not security.password_needs_rehash(stored)
    assert security.verify_password(stored, PASSWORD)
    second = await _login(client, "sam", PASSWORD)
    assert second.status_code == 200, second.text
    assert (await _login(client, "sam", "not the password")).status_code == 401


async def test_me_is_the_logged_in_user(client: httpx.AsyncClient, make_user: UserFactory) -> None:
    headers = await make_user(Role.supervisor, username="sam")

    response = await client.get("/v1/auth/me", headers=headers)

    assert response.status_code == 200, response.text
    assert response.json()["username"] == "sam"
    assert response.json()["role"] == "supervisor"


async def test_an_agent_can_see_itself(
    client: httpx.AsyncClient, agent_user: dict[str, str]
) -> None:
    response = await client.get("/v1/auth/me", headers=agent_user)
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "agent"


async def test_no_header_is_a_401_with_a_bearer_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/auth/me")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["error"] == "not_authenticated"
    assert "Authorization: Bearer" in body["detail"]


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic c2FtOnBhc3N3b3Jk",
        "Bearer",
        "Bearer garbage",
        "Bearer cct_not-a-real-token",
        "Bearer cck_not-a-real-key",
    ],
)
async def test_a_bad_or_unknown_token_is_a_401(
    client: httpx.AsyncClient, authorization: str
) -> None:
    response = await client.get("/v1/auth/me", headers={"Authorization": authorization})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"] == "not_authenticated"


async def test_logout_revokes_this_token_and_no_other(
    client: httpx.AsyncClient, make_user: UserFactory, app: FastAPI
) -> None:
    await make_user(Role.supervisor, username="sam")
    desk = _bearer((await _login(client, "sam", PASSWORD)).json()["access_token"])
    phone = _bearer((await _login(client, "sam", PASSWORD)).json()["access_token"])
    tokens_before = await _token_count(app)

    response = await client.post("/v1/auth/logout", headers=desk)

    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get("/v1/auth/me", headers=desk)).status_code == 401
    assert (await client.post("/v1/auth/logout", headers=desk)).status_code == 401
    assert (await client.get("/v1/auth/me", headers=phone)).status_code == 200
    assert await _token_count(app) == tokens_before - 1


async def test_logout_needs_a_token(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/auth/logout")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_an_expired_token_is_refused(
    client: httpx.AsyncClient, make_user: UserFactory, app: FastAPI, settings: Settings
) -> None:
    headers = await make_user(Role.admin, username="ada")
    secret = headers["Authorization"].removeprefix("Bearer ")
    digest = security.digest_secret(secret, settings.secret_key)
    assert (await client.get("/v1/auth/me", headers=headers)).status_code == 200

    async with app.state.sessions() as session, session.begin():
        result = await session.execute(
            update(AccessToken)
            .where(AccessToken.token_digest == digest)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        assert result.rowcount == 1

    response = await client.get("/v1/auth/me", headers=headers)

    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    assert "expired" in response.json()["detail"]


async def test_a_token_is_stored_only_as_its_keyed_digest(
    client: httpx.AsyncClient, make_user: UserFactory, app: FastAPI, settings: Settings
) -> None:
    await make_user(Role.supervisor, username="sam")
    body = (await _login(client, "sam", PASSWORD)).json()
    secret: str = body["access_token"]

    async with app.state.sessions() as session:
        rows = (
            await session.execute(
                select(AccessToken).where(AccessToken.user_id == body["user"]["id"])
            )
        ).scalars()
        digests = {row.token_digest for row in rows}

    expected = hmac.new(settings.secret_key.encode(), secret.encode(), hashlib.sha256).hexdigest()
    assert expected in digests
    assert all(secret not in digest and secret[4:] not in digest for digest in digests)


async def test_a_token_made_under_another_server_key_is_refused(
    client: httpx.AsyncClient, make_user: UserFactory, app: FastAPI, settings: Settings
) -> None:
    headers = await make_user(Role.admin, username="ada")
    app.state.settings = settings.model_copy(update={"secret_key": "a-different-secret-key"})
    try:
        response = await client.get("/v1/auth/me", headers=headers)
    finally:
        app.state.settings = settings
    assert response.status_code == 401


async def test_logins_and_new_users_at_once_never_wait_on_each_other(
    settings: Settings, database_url: str
) -> None:
    """A request creating a user waits for a hashing turn; a login holds one. Neither may wait
    for what the other holds: with one ORM connection and one turn, a login whose turn waited
    for the ORM's connection, held by a creation waiting for the turn, answered 500 after the
    pool's 30 s."""
    tight = settings.model_copy(
        update={"db_pool_size": 1, "db_max_overflow": 0, "password_hash_concurrency": 1}
    )
    app = create_app(tight, database_url)
    async with app.router.lifespan_context(app):
        await create_user_directly(app, "boss", Role.admin, PASSWORD)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            admin = await login(http, "boss", PASSWORD)

            async def new_user(n: int) -> int:
                body = {
                    "username": f"sup{n}",
                    "display_name": f"Sup {n}",
                    "role": "supervisor",
                    "password": PASSWORD,
                }
                return (await http.post("/v1/users", json=body, headers=admin)).status_code

            async def log_in() -> int:
                return (await _login(http, "boss", PASSWORD)).status_code

            async with asyncio.timeout(20):
                answers = await asyncio.gather(
                    *(job for n in range(6) for job in (new_user(n), log_in()))
                )

    assert sorted(answers) == [200] * 6 + [201] * 6
