"""The migrations build the schema the models describe, both ways, and from several replicas."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from app.core import definitions, migrate
from app.core.embedded import create_database_if_missing
from app.models import metadata
from tests.conftest import PostgresServer
from tests.core.test_definitions import assert_rules_are_the_files

ROOT = Path(__file__).resolve().parents[2]


def test_an_installed_copy_carries_the_migrations_and_every_package() -> None:
    """pyproject.toml lists the packages (the migrations go under a name of their own, which
    `find` cannot give): a package missing there would be missing from the Docker image."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {
        ".".join(folder.relative_to(ROOT).parts)
        for folder in (ROOT / "app").rglob("*")
        if (folder / "__init__.py").is_file()
    }
    assert set(setuptools["packages"]) == {
        "app",
        *packages,
        "contactcenter_migrations",
        "contactcenter_migrations.versions",
    }
    assert setuptools["package-dir"] == {"contactcenter_migrations": "migrations"}
    assert migrate.scripts() == ROOT / "migrations"
    assert all(name.endswith(".sql") for name in definitions.DEFINITIONS)
    assert "*.sql" in setuptools["package-data"]["*"]


@pytest.fixture
async def empty_database(postgres_server: PostgresServer) -> AsyncIterator[str]:
    name = f"cc_empty_{secrets.token_hex(6)}"
    await create_database_if_missing(postgres_server.admin_dsn, name)
    yield name
    connection = await asyncpg.connect(postgres_server.admin_dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def _tables(postgres_server: PostgresServer, database: str) -> set[str]:
    connection = await asyncpg.connect(postgres_server.dsn(database))
    try:
        rows = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await connection.close()
    return {row["tablename"] for row in rows}


async def test_upgrade_downgrade_upgrade_on_a_fresh_database(
    postgres_server: PostgresServer, empty_database: str
) -> None:
    url = postgres_server.url(empty_database)
    await asyncio.to_thread(migrate.upgrade, url)
    assert await _tables(postgres_server, empty_database) == {*metadata.tables, "alembic_version"}

    await asyncio.to_thread(migrate.downgrade, url, "base")
    assert await _tables(postgres_server, empty_database) == {"alembic_version"}

    await asyncio.to_thread(migrate.upgrade, url)
    assert set(metadata.tables) <= await _tables(postgres_server, empty_database)
    connection = await asyncpg.connect(postgres_server.dsn(empty_database))
    try:
        await assert_rules_are_the_files(connection)
    finally:
        await connection.close()


async def test_models_and_migrations_agree(
    postgres_server: PostgresServer, empty_database: str
) -> None:
    url = postgres_server.url(empty_database)
    await asyncio.to_thread(migrate.upgrade, url)
    await asyncio.to_thread(migrate.check, url)  # raises when autogenerate would find changes


async def test_replicas_starting_together_all_migrate(
    postgres_server: PostgresServer, empty_database: str
) -> None:
    """Three processes upgrade one empty database at once; the advisory lock lines them up."""
    environment = {**os.environ, "DATABASE_URL": postgres_server.url(empty_database)}
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app.cli",
            "db",
            "upgrade",
            env=environment,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    outputs = [await asyncio.wait_for(p.communicate(), timeout=90) for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    assert set(metadata.tables) <= await _tables(postgres_server, empty_database)


async def test_an_event_insert_notifies_listeners_at_commit(
    postgres_server: PostgresServer, database_url: str
) -> None:
    database = make_url(database_url).database or ""
    dsn = postgres_server.dsn(database)
    listener = await asyncpg.connect(dsn)
    writer = await asyncpg.connect(dsn)
    received: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener("cc_events", lambda *args: received.put_nowait(args[3]))
    try:
        async with writer.transaction():
            event_id = await writer.fetchval(
                "INSERT INTO events (kind, subject_type, subject_id, actor, payload) "
                "VALUES ('test.ping', 'test', '1', 'system', '{}') RETURNING id"
            )
            # A NOTIFY sent now, outside the transaction, is heard after any the insert sent.
            await listener.execute("SELECT pg_notify('cc_events', 'marker')")
            first = await asyncio.wait_for(received.get(), timeout=5)
            assert first == "marker", "NOTIFY must wait for the commit"
            assert received.empty(), "NOTIFY must wait for the commit"
        assert await asyncio.wait_for(received.get(), timeout=5) == str(event_id)
    finally:
        await listener.close()
        await writer.close()
