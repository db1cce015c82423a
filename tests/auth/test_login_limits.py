"""Failed logins are limited per username and per address, counted in PostgreSQL, and password
hashing never holds up the event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.auth.models import LoginFailure, Role
from app.core import security
from app.core.settings import Settings
from app.main import create_app
from tests.conftest import UserFactory

PASSWORD = "correct horse battery"  # the password make_user gives everyone
PER_USER, PER_ADDRESS = 10, 25


@pytest.fixture
def settings() -> Settings:
    return Settings(
        environment="test",
        load_demo=False,
        password_hashing="fast",
        login_failures_per_user=PER_USER,
        login_failures_per_address=PER_ADDRESS,
    )


@asynccontextmanager
async def client_of(app: FastAPI, address: str = "127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@asynccontextmanager
async def another_replica(settings: Settings, database_url: str) -> AsyncIterator[FastAPI]:
    replica = create_app(settings, database_url)
    async with replica.router.lifespan_context(replica):
        yield replica


async def _login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/v1/auth/login", json={"username": username, "password": password})


async def _failures(app: FastAPI) -> int:
    async with app.state.sessions() as session:
        counted: int = (
            await session.execute(select(func.count()).select_from(LoginFailure))
        ).scalar_one()
        return counted


def _locked_out(response: httpx.Response, whose: str) -> int:
    """The seconds a 429 asks to wait, after checking that it says why."""
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["error"] == "too_many_login_failures"
    assert body["detail"].startswith(f"too many failed logins {whose} ")
    retry_after = int(response.headers["retry-after"])
    assert f"try again in {retry_after} s" in body["detail"]
    return retry_after


async def test_thirty_wrong_passwords_then_the_right_one_is_refused(
    app: FastAPI, client: httpx.AsyncClient, make_user: UserFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_user(Role.supervisor, username="sam")
    checked: list[str] = []
    real_verify = security.verify_password

    def spy(password_hash: str, password: str) -> bool:
        checked.append(password)
        return real_verify(password_hash, password)

    monkeypatch.setattr(security, "verify_password", spy)

    answers = [(await _login(client, "sam", f"guess {i}")).status_code for i in range(30)]
    right = await _login(client, "SAM", PASSWORD)

    assert answers == [401] * PER_USER + [429] * (30 - PER_USER)
    assert 0 < _locked_out(right, "for this username") <= 900
    assert len(checked) == PER_USER, "a refused attempt costs no hash and counts for nothing"
    assert await _failures(app) == PER_USER


async def test_another_user_logs_in_while_one_is_locked_out(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    await make_user(Role.supervisor, username="sam")
    await make_user(Role.agent, username="kim")
    for i in range(PER_USER):
        assert (await _login(client, "sam", f"guess {i}")).status_code == 401
    _locked_out(await _login(client, "sam", PASSWORD), "for this username")

    assert (await _login(client, "kim", PASSWORD)).status_code == 200


async def test_a_right_password_forgets_the_usernames_failures(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    await make_user(Role.supervisor, username="sam")
    for _ in range(2):
        for i in range(PER_USER - 1):
            assert (await _login(client, "sam", f"typo {i}")).status_code == 401
        assert (await _login(client, "sam", PASSWORD)).status_code == 200


async def test_an_address_that_tries_many_usernames_is_refused_and_others_are_not(
    app: FastAPI, make_user: UserFactory
) -> None:
    await make_user(Role.supervisor, username="sam")
    async with client_of(app, "203.0.113.7") as spraying, client_of(app, "198.51.100.2") as office:
        for i in range(PER_ADDRESS):
            assert (await _login(spraying, f"user{i}", "password1")).status_code == 401
        refused = await _login(spraying, "sam", PASSWORD)
        elsewhere = await _login(office, "sam", PASSWORD)

    _locked_out(refused, "from this address")
    assert elsewhere.status_code == 200


async def test_replicas_on_one_database_share_the_counts(
    app: FastAPI, make_user: UserFactory, settings: Settings, database_url: str
) -> None:
    await make_user(Role.supervisor, username="sam")
    async with (
        another_replica(settings, database_url) as second,
        client_of(app) as first_client,
        client_of(second) as second_client,
    ):
        for i in range(PER_USER):
            replica = first_client if i % 2 else second_client
            assert (await _login(replica, "sam", f"guess {i}")).status_code == 401
        on_first = await _login(first_client, "sam", PASSWORD)
        on_second = await _login(second_client, "sam", PASSWORD)

    _locked_out(on_first, "for this username")
    _locked_out(on_second, "for this username")


async def test_the_window_passing_lets_the_user_in_again(
    make_user: UserFactory, settings: Settings, database_url: str
) -> None:
    await make_user(Role.supervisor, username="sam")
    short = settings.model_copy(
        update={"login_failure_window_seconds": 1.0, "login_failures_per_user": 3}
    )
    async with another_replica(short, database_url) as app, client_of(app) as client:
        for i in range(3):
            assert (await _login(client, "sam", f"guess {i}")).status_code == 401
        last_failure = time.monotonic()
        assert _locked_out(await _login(client, "sam", PASSWORD), "for this username") == 1
        for _ in range(200):  # 10 s at most
            answer = await _login(client, "sam", PASSWORD)
            if answer.status_code != 429:
                break
            await asyncio.sleep(0.05)
        let_in = time.monotonic()

    assert answer.status_code == 200, answer.text
    assert let_in - last_failure >= 0.9, "let in before the window had passed"


async def test_many_bad_logins_at_once_hash_a_few_at_a_time_off_the_event_loop(
    client: httpx.AsyncClient,
    make_user: UserFactory,
    admin: dict[str, str],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each verification is held until the test lets go: while 20 logins wait on them, other
    requests are served, and no more than CC_PASSWORD_HASH_CONCURRENCY hashes run at once."""
    let_go = threading.Event()
    lock = threading.Lock()
    inside = 0
    most_at_once = 0

    loop = asyncio.get_running_loop()
    all_turns_taken = asyncio.Event()

    def held_verify(password_hash: str, password: str) -> bool:
        nonlocal inside, most_at_once
        with lock:
            inside += 1
            most_at_once = max(most_at_once, inside)
            if inside == settings.password_hash_concurrency:
                loop.call_soon_threadsafe(all_turns_taken.set)
        try:
            let_go.wait(timeout=20)
            return False
        finally:
            with lock:
                inside -= 1

    monkeypatch.setattr(security, "verify_password", held_verify)
    logins = [asyncio.create_task(_login(client, f"user{i}", "password1")) for i in range(20)]
    try:
        async with asyncio.timeout(10):
            await all_turns_taken.wait()
            served = await client.get("/v1/auth/me", headers=admin)
        assert served.status_code == 200, "the loop served a request while the hashes ran"
        assert not any(login.done() for login in logins)
    finally:
        let_go.set()
        answers = await asyncio.gather(*logins)

    assert [answer.status_code for answer in answers] == [401] * 20
    assert most_at_once == settings.password_hash_concurrency
