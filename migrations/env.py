"""Alembic environment: async engine, every model, one upgrade at a time across replicas.

An upgrade that ends at head then runs the database's rules from their files
(app/core/definitions.py), in the same transaction, so a replica never sees the new schema with
old rules, or the other way round.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from app.core import definitions
from app.core.migrate import APPLY_DEFINITIONS
from app.models import metadata

# Any constant will do; it only has to be the same for every replica running migrations.
MIGRATION_LOCK_KEY = 7_2026_11_28

config = context.config


def _database_url() -> str:
    url = config.attributes.get("database_url") or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("no database URL: set DATABASE_URL or use `contactcenter db upgrade`")
    return str(url)


def _migrate(connection: Connection) -> bool:
    """Run the versioned migrations; True when the database is now at the newest revision."""
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    # The transaction is _run_online's: Alembic joins it rather than committing on its own.
    with context.begin_transaction():
        context.run_migrations()
    reached = set(context.get_context().get_current_heads())
    return reached == set(context.script.get_heads())


async def _apply_definitions(connection: AsyncConnection) -> None:
    # One file holds several statements, which only the driver's simple protocol takes at once.
    raw = await connection.get_raw_connection()
    await definitions.apply(raw.driver_connection)


async def _run_online() -> None:
    engine = create_async_engine(_database_url())
    try:
        async with engine.connect() as connection, connection.begin():
            # Replicas that start together queue here; the later ones find the schema at head.
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
            at_head = await connection.run_sync(_migrate)
            if at_head and config.attributes.get(APPLY_DEFINITIONS):
                await _apply_definitions(connection)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_database_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
