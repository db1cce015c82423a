"""The engine, and one unit of work (session + transaction) per request or job.

The unit of work owns its session's events (`app.core.events.events_of`): it writes them in
the transaction just before the commit, and hands them to the replica's hub after it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.core.events import Events, events_of
from app.core.hub import EventHub
from app.core.settings import Settings


def create_engine(settings: Settings, url: str) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=settings.db_pre_ping,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: responses are built from objects after the commit.
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def unit_of_work(
    sessions: async_sessionmaker[AsyncSession], *, hub: EventHub | None = None
) -> AsyncIterator[AsyncSession]:
    """One session, one transaction: commit on success, roll back on any error.

    The events the work added (`events_of(session)`) are written just before the commit, so
    they are rolled back with it; after the commit they go to `hub`, so this replica's
    subscribers get them at once. Without a hub they arrive by the NOTIFY of the events
    trigger (these connections are not the hub's own), as they do on the other replicas.
    """
    async with sessions() as session:
        async with session.begin():
            yield session
            events = await _write_events(session)
        if hub is not None and events.written:
            hub.publish(events.written)


async def _write_events(session: AsyncSession) -> Events:
    events = events_of(session)
    if events.unwritten:
        await events.write(await driver_connection(session))
    return events


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under the session's transaction, for code that speaks plain SQL.

    The driver opens its transaction lazily, at the first statement; one is run here so that
    what the caller runs next belongs to the session's transaction. Pending ORM changes are
    flushed first, so plain SQL sees them.
    """
    await session.flush()
    connection = await session.connection()
    await connection.exec_driver_sql("SELECT 1")
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection
    return driver


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: the request's unit of work, its events published on this replica."""
    state = request.app.state
    async with unit_of_work(state.sessions, hub=state.hub) as session:
        yield session


async def database_answers(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:  # any failure means the database does not answer
        return False
    return True
