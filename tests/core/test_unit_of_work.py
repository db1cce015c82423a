"""A 2xx means written: the request's transaction commits before its response leaves."""

from __future__ import annotations

import asyncpg
import httpx
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from app.auth.models import Role
from tests.conftest import PostgresServer
from tests.support import LiveServer, create_user_directly


async def test_what_a_response_reports_is_already_committed(
    app: FastAPI, live_server: LiveServer, postgres_server: PostgresServer, database_url: str
) -> None:
    await create_user_directly(app, "boss", Role.admin, "correct horse battery")
    database = make_url(database_url).database or ""
    watcher = await asyncpg.connect(postgres_server.dsn(database))
    try:
        async with httpx.AsyncClient(base_url=live_server.base_url) as http:
            for attempt in range(20):
                login = await http.post(
                    "/v1/auth/login", json={"username": "boss", "password": "correct horse battery"}
                )
                assert login.status_code == 200
                # Another connection, at once: the token must already be there to be seen.
                tokens = await watcher.fetchval("SELECT count(*) FROM access_tokens")
                assert tokens == attempt + 1
                headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
                created = await http.post(
                    "/v1/skills", json={"name": f"skill-{attempt}"}, headers=headers
                )
                assert created.status_code == 201, created.text
    finally:
        await watcher.close()
