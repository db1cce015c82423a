"""A change PostgreSQL refuses is told to the client as why, never as the SQL (core.constraints).

Each kind of constraint is broken for real, on the test database, and what `refusal` makes of
the driver's error is checked; then the one handler is shown to answer for the driver's own
error, as the hot paths raise it (tests/core/test_bad_input.py shows it for the ORM's
IntegrityError: deleting a customer or a queue with interactions).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI, Request

from app.core.constraints import Refusal, refusal
from tests.support import Headers


@pytest.fixture
async def connection(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    connection = await asyncpg.connect(dsn)
    try:
        yield connection
    finally:
        await connection.close()


async def refused(connection: asyncpg.Connection, sql: str, *args: object) -> Refusal:
    with pytest.raises(asyncpg.IntegrityConstraintViolationError) as caught:
        await connection.execute(sql, *args)
    return refusal(caught.value)


SKILL = "INSERT INTO skills (id, name, description) VALUES (gen_random_uuid(), $1, '')"


async def test_a_taken_unique_value_is_a_conflict_naming_the_column(
    connection: asyncpg.Connection,
) -> None:
    await connection.execute(SKILL, "billing")
    said = await refused(connection, SKILL, "Billing")  # the index is on lower(name)
    assert said == Refusal("conflict", "a skill with this name already exists")


async def test_a_broken_check_is_invalid_naming_the_rule(connection: asyncpg.Connection) -> None:
    said = await refused(
        connection,
        "INSERT INTO queues (id, name, description, sl_target_percent, sl_target_seconds,"
        " abandon_policy, offer_timeout_seconds, tier_weights, aging_factor, wrap_up_seconds)"
        " VALUES (gen_random_uuid(), 'q', '', 101, 20, 'against', 20, '{}', 0, 0)",
    )
    assert said == Refusal("invalid", "a queue: the values break the rule sl_percent_range")


async def test_a_missing_value_is_invalid_naming_the_column(
    connection: asyncpg.Connection,
) -> None:
    said = await refused(
        connection,
        "INSERT INTO skills (id, name, description) VALUES (gen_random_uuid(), $1, NULL)",
        "billing",
    )
    assert said == Refusal(
        "invalid", "description: is required", [{"field": "description", "problem": "is required"}]
    )


async def test_a_reference_to_nothing_is_a_conflict_naming_the_field(
    connection: asyncpg.Connection,
) -> None:
    said = await refused(
        connection,
        "INSERT INTO access_tokens (id, user_id, token_digest, expires_at)"
        " VALUES (gen_random_uuid(), $1, 'x', now())",
        uuid.uuid4(),
    )
    problem = "no such user (any more)"
    assert said == Refusal(
        "conflict", f"user_id: {problem}", [{"field": "user_id", "problem": problem}]
    )


async def test_a_delete_of_something_still_referred_to_says_what_refers_to_it(
    connection: asyncpg.Connection,
) -> None:
    skill = await connection.fetchval(SKILL + " RETURNING id", "billing")
    queue = await connection.fetchval(
        "INSERT INTO queues (id, name, description, sl_target_percent, sl_target_seconds,"
        " abandon_policy, offer_timeout_seconds, tier_weights, aging_factor, wrap_up_seconds)"
        " VALUES (gen_random_uuid(), 'q', '', 80, 20, 'against', 20, '{}', 0, 0) RETURNING id"
    )
    await connection.execute(
        "INSERT INTO queue_skills (queue_id, skill_id, min_proficiency) VALUES ($1, $2, 2)",
        queue,
        skill,
    )
    said = await refused(connection, "DELETE FROM skills WHERE id = $1", skill)
    assert said == Refusal(
        "conflict",
        "this skill still has queues requiring it, which refer to it: it cannot be deleted "
        "while they exist",
    )


async def test_the_handler_answers_for_the_drivers_own_error_as_the_hot_paths_raise_it(
    app: FastAPI, client: httpx.AsyncClient, admin: Headers
) -> None:
    """A route on the hot pool (app.core.pg), as intake and the desk use it."""

    @app.post("/test/duplicate-skill")
    async def duplicate_skill(request: Request) -> None:
        async with request.app.state.pg.acquire() as connection:
            await connection.execute(SKILL, "billing")
            await connection.execute(SKILL, "billing")

    response = await client.post("/test/duplicate-skill")

    assert response.status_code == 409
    assert response.json() == {
        "error": "conflict",
        "detail": "a skill with this name already exists",
    }
