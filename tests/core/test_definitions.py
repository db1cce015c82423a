"""The database's rules are the files' (app/core/definitions.py): after the migrations, after a
change by hand and the next upgrade; and a downgrade leaves them to the migrations."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from app.core import definitions, migrate
from tests.conftest import PostgresServer

# What a file creates, read from its text: a function's name and body (pg_proc.prosrc is the
# text between the dollar quotes, exactly), a trigger's name.
FUNCTION = re.compile(r"CREATE OR REPLACE FUNCTION\s+(\w+)\s*\(.*?\bAS \$\$(.*?)\$\$", re.DOTALL)
TRIGGER = re.compile(r"CREATE OR REPLACE TRIGGER\s+(\w+)\s")
VIEW = re.compile(r"CREATE OR REPLACE VIEW\s+(\w+)\s")


def functions_in_files() -> dict[str, str]:
    """Every function the files define, by name, with its body."""
    found: dict[str, str] = {}
    for definition in definitions.DEFINITIONS:
        for name, body in FUNCTION.findall(definitions.read(definition)):
            assert name not in found, f"{name} is defined twice"
            found[name] = body
    return found


def views_in_files() -> set[str]:
    return {
        name
        for definition in definitions.DEFINITIONS
        for name in VIEW.findall(definitions.read(definition))
    }


def triggers_in_files() -> set[str]:
    return {
        name
        for definition in definitions.DEFINITIONS
        for name in TRIGGER.findall(definitions.read(definition))
    }


async def bodies_in_database(connection: asyncpg.Connection) -> dict[str, str]:
    rows = await connection.fetch(
        "SELECT proname, prosrc FROM pg_proc"
        " WHERE pronamespace = 'public'::regnamespace AND proname = ANY($1::text[])",
        list(functions_in_files()),
    )
    return {row["proname"]: row["prosrc"] for row in rows}


async def rules_in_database(connection: asyncpg.Connection) -> dict[str, str]:
    """Each function and trigger of the files as PostgreSQL describes it: signature, result,
    settings and body for a function; timing, table, WHEN and function for a trigger."""
    functions = await connection.fetch(
        "SELECT proname, pg_get_functiondef(oid) AS definition FROM pg_proc"
        " WHERE pronamespace = 'public'::regnamespace AND proname = ANY($1::text[])",
        list(functions_in_files()),
    )
    triggers = await connection.fetch(
        "SELECT tgname, pg_get_triggerdef(oid) AS definition FROM pg_trigger"
        " WHERE NOT tgisinternal AND tgname = ANY($1::text[])",
        list(triggers_in_files()),
    )
    views = await connection.fetch(
        "SELECT viewname, pg_get_viewdef(viewname::regclass) AS definition FROM pg_views"
        " WHERE schemaname = 'public' AND viewname = ANY($1::text[])",
        list(views_in_files()),
    )
    return {
        **{f"function {row['proname']}": row["definition"] for row in functions},
        **{f"trigger {row['tgname']}": row["definition"] for row in triggers},
        **{f"view {row['viewname']}": row["definition"] for row in views},
    }


async def rules_as_the_files_create_them(connection: asyncpg.Connection) -> dict[str, str]:
    """`rules_in_database` for the files run on a database without their functions (and so
    without the triggers on them), in a transaction rolled back afterwards."""
    transaction = connection.transaction()
    await transaction.start()
    try:
        for name in functions_in_files():
            await connection.execute(f"DROP FUNCTION IF EXISTS {name} CASCADE")
        for name in views_in_files():
            await connection.execute(f"DROP VIEW IF EXISTS {name}")
        await definitions.apply(connection)
        return await rules_in_database(connection)
    finally:
        await transaction.rollback()


async def assert_rules_are_the_files(connection: asyncpg.Connection) -> None:
    assert await bodies_in_database(connection) == functions_in_files()
    expected = await rules_as_the_files_create_them(connection)
    assert len(expected) == (
        len(functions_in_files()) + len(triggers_in_files()) + len(views_in_files())
    )
    assert await rules_in_database(connection) == expected


@pytest.fixture
async def connection(
    postgres_server: PostgresServer, database_url: str
) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(postgres_server.dsn(make_url(database_url).database or ""))
    yield connection
    await connection.close()


def test_the_files_define_the_rules_the_code_calls() -> None:
    assert set(functions_in_files()) == {
        "auth_caller",
        "interactions_arrive",
        "routing_refresh_agent",
        "routing_accept",
        "routing_complete",
        "agents_move_routing_version",
        "notify_event",
    }
    assert triggers_in_files() == {"agents_routing_version", "events_notify"}
    assert views_in_files() == {"queues_settings_version"}


async def test_a_migrated_database_holds_the_rules_of_the_files(
    connection: asyncpg.Connection,
) -> None:
    await assert_rules_are_the_files(connection)


async def test_the_next_upgrade_puts_back_rules_changed_by_hand(
    connection: asyncpg.Connection, database_url: str
) -> None:
    await connection.execute(
        "CREATE OR REPLACE FUNCTION routing_refresh_agent(p_agent uuid, p_at timestamptz)"
        " RETURNS text LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END; $$"
    )
    await connection.execute("DROP TRIGGER agents_routing_version ON agents")
    await connection.execute(
        "CREATE OR REPLACE TRIGGER events_notify AFTER INSERT ON events FOR EACH ROW"
        " EXECUTE FUNCTION notify_event()"
    )
    changed = await rules_in_database(connection)
    assert "trigger agents_routing_version" not in changed
    assert "WHEN" not in changed["trigger events_notify"]
    assert (await bodies_in_database(connection))["routing_refresh_agent"] != (
        functions_in_files()["routing_refresh_agent"]
    )

    await asyncio.to_thread(migrate.upgrade, database_url)  # already at head: no migration runs

    await assert_rules_are_the_files(connection)


async def test_a_downgrade_leaves_the_rules_to_the_migrations(
    connection: asyncpg.Connection, database_url: str
) -> None:
    """0009's downgrade drops the routing_version trigger with the column it moves; running the
    files after it would put the trigger back on a table that no longer has that column."""
    await asyncio.to_thread(migrate.downgrade, database_url, "0008")
    rules = await rules_in_database(connection)
    assert "trigger agents_routing_version" not in rules
    assert "function agents_move_routing_version" not in rules

    await asyncio.to_thread(migrate.upgrade, database_url)
    await assert_rules_are_the_files(connection)
