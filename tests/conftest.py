"""A real PostgreSQL for the whole run, and a fresh database (built by the migrations) per test.

With DATABASE_URL set, the tests use that server (they need CREATEDB); otherwise they start an
embedded server in a temporary folder of their own, so two runs at once never share one.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import structlog
from fastapi import FastAPI
from fastapi.dependencies import models as fastapi_dependencies
from sqlalchemy.engine import make_url

from app.auth.models import Role
from app.core import migrate, pg
from app.core.embedded import EmbeddedPostgres, create_database_if_missing
from app.core.logging import configure_logging
from app.core.settings import Settings
from app.main import create_app
from tests.support import LiveServer, create_user_directly, login

# The `browser` fixture (headless chromium) for the tests of pages, wherever they are.
pytest_plugins = ("tests.browser",)


@dataclass(frozen=True)
class PostgresServer:
    """How to reach the test server: an admin DSN and a SQLAlchemy URL for any database."""

    admin_dsn: str
    url_template: str

    def url(self, database: str) -> str:
        return self.url_template.replace("{database}", database)

    def dsn(self, database: str) -> str:
        """A plain libpq DSN (for asyncpg) to `database`."""
        return self.url(database).replace("postgresql+asyncpg://", "postgresql://", 1)


def _external_server(database_url: str) -> PostgresServer:
    url = make_url(Settings(DATABASE_URL=database_url).database_url or "")
    template = url.set(database="DATABASENAME").render_as_string(hide_password=False)
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return PostgresServer(
        admin_dsn=admin, url_template=template.replace("DATABASENAME", "{database}")
    )


# FastAPI keeps the endpoint and dependency callables it has classified in lru_caches of 4,096
# entries each (`fastapi.dependencies.models`, 0.16x), and with them the app they close over:
# a worker that has run some hundred tests held about 130 apps, millions of objects, and each
# full garbage collection then stopped it for 2-3 s, longer than a replica's lease (2.5 s):
# a test's live server lost its lease now and then (1012). A server makes one app; tests make
# one each, so they forget them after each test.
FASTAPI_CACHES = [f for f in vars(fastapi_dependencies).values() if hasattr(f, "cache_clear")]


def forget_the_apps_fastapi_keeps() -> None:
    for cached in FASTAPI_CACHES:
        cached.cache_clear()


@pytest.fixture(autouse=True)
def _apps_forgotten_after_each_test() -> Iterator[None]:
    yield
    forget_the_apps_fastapi_keeps()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    external = os.environ.get("DATABASE_URL")
    if external:
        yield _external_server(external)
        return
    folder = Path(tempfile.mkdtemp(prefix="cc-test-", dir=_memory_backed_folder()))
    embedded = EmbeddedPostgres(folder / "pg", delete_on_stop=True)
    asyncio.run(_trade_durability_for_speed(embedded.admin_dsn()))
    try:
        yield PostgresServer(
            admin_dsn=embedded.admin_dsn(), url_template=embedded.url("{database}")
        )
    finally:
        embedded.stop()
        shutil.rmtree(folder, ignore_errors=True)


# Every test copies the template database, about 500 files. On this project's machines (ext4 on
# a virtual disk) creating a file costs 0.35 ms, so a copy took 340 ms of every test's set-up;
# in memory it takes 15 ms. A throw-away server loses nothing by living there.
MEMORY_FOLDER = Path("/dev/shm")  # noqa: S108 - mkdtemp makes a private folder there
MEMORY_NEEDED = 2 * 1024**3  # the template, a database per worker and their WAL, with room


def _memory_backed_folder() -> Path | None:
    """MEMORY_FOLDER when it is writable with room, else the usual temp folder (None)."""
    try:
        room = shutil.disk_usage(MEMORY_FOLDER).free
    except OSError:
        return None
    writable = os.access(MEMORY_FOLDER, os.W_OK | os.X_OK)
    return MEMORY_FOLDER if writable and room >= MEMORY_NEEDED else None


async def _trade_durability_for_speed(admin_dsn: str) -> None:
    """A throw-away test server needs no crash safety: skip the fsyncs, copy databases as files."""
    connection = await asyncpg.connect(admin_dsn)
    try:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            await connection.execute(f"ALTER SYSTEM SET {setting} = off")
        await connection.execute("SELECT pg_reload_conf()")
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def template_database(postgres_server: PostgresServer) -> Iterator[str]:
    """One database migrated to head; every test copies it (CREATE DATABASE ... TEMPLATE)."""
    name = f"cc_template_{secrets.token_hex(4)}"
    asyncio.run(create_database_if_missing(postgres_server.admin_dsn, name))
    migrate.upgrade(postgres_server.url(name))
    yield name
    asyncio.run(_drop_database(postgres_server.admin_dsn, name))


async def _copy_database(admin_dsn: str, template: str, name: str) -> None:
    connection = await asyncpg.connect(admin_dsn)
    try:
        # FILE_COPY (PostgreSQL 15+) copies a small database far faster than the WAL_LOG default.
        strategy = " STRATEGY FILE_COPY" if connection.get_server_version().major >= 15 else ""
        await connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"{strategy}')
    finally:
        await connection.close()


async def _drop_database(admin_dsn: str, name: str) -> None:
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture
async def database_url(
    postgres_server: PostgresServer, template_database: str
) -> AsyncIterator[str]:
    """A database of this test's own, at the latest migration, dropped afterwards."""
    name = f"cc_test_{secrets.token_hex(6)}"
    await _copy_database(postgres_server.admin_dsn, template_database, name)
    yield postgres_server.url(name)
    await _drop_database(postgres_server.admin_dsn, name)


@pytest.fixture
def settings() -> Settings:
    return Settings(
        environment="test", load_demo=False, default_phone_region="CN", password_hashing="fast"
    )


@pytest.fixture
async def app(settings: Settings, database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(settings, database_url)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


UserFactory = Callable[..., Awaitable[dict[str, str]]]


@pytest.fixture
def make_user(app: FastAPI, client: httpx.AsyncClient) -> UserFactory:
    """Create a user straight in the database and log in: returns its Authorization header."""

    async def factory(role: Role = Role.admin, username: str | None = None) -> dict[str, str]:
        name = username or f"{role.value}-{uuid.uuid4().hex[:8]}"
        password = "correct horse battery"
        await create_user_directly(app, name, role, password)
        return await login(client, name, password)

    return factory


@pytest.fixture
async def admin(make_user: UserFactory) -> dict[str, str]:
    return await make_user(Role.admin)


@pytest.fixture
async def supervisor(make_user: UserFactory) -> dict[str, str]:
    return await make_user(Role.supervisor)


@pytest.fixture
async def agent(make_user: UserFactory) -> dict[str, str]:
    return await make_user(Role.agent)


@pytest.fixture
async def connection(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own, outside the app's pools, with the hot path's codecs
    (app.core.pg): for reading and arranging what the test checks."""
    opened = await pg.connect(database_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def live_server(settings: Settings, database_url: str) -> Iterator[LiveServer]:
    """The API served by uvicorn in a thread on a loopback port, for real sockets."""
    with LiveServer.running(settings, database_url) as server:
        yield server


@pytest.fixture(scope="session", autouse=True)
def loggers_never_cached() -> Iterator[None]:
    """No logger is cached in tests: one bound while `configure_logging`'s configuration holds
    (a `log_lines` test, an in-process CLI) would keep it for the rest of the run, out of reach
    of `structlog.testing.capture_logs` in later tests, which then depend on their order."""
    configure = structlog.configure

    def uncached(**settings: Any) -> None:
        configure(**{**settings, "cache_logger_on_first_use": False})

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(structlog, "configure", uncached)
        yield


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The rendered log lines (ours and the libraries', at DEBUG) written during the test:
    the very formatter, redaction included, that `serve` writes to stderr. For the tests that
    no secret reaches a log."""
    root = logging.getLogger()
    level = root.level
    before = structlog.get_config()
    configure_logging("DEBUG")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(root.handlers[0].formatter)
    root.addHandler(handler)
    # A server started with `access_log=False` earlier in the run (tests/core/http_receiver.py)
    # stops uvicorn's access lines from reaching the root for good: they are read here again.
    access = logging.getLogger("uvicorn.access")
    propagates = access.propagate
    access.propagate = True
    try:
        yield stream
    finally:
        access.propagate = propagates
        root.removeHandler(handler)
        root.setLevel(level)
        structlog.configure(**before)
