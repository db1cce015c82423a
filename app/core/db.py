"""The engine, and one unit of work (session + transaction) per request or job.

The unit of work owns its session's events (`app.core.events.events_of`): it writes them in
the transaction just before the commit, and hands them to the replica's hub after it. When the
work wrote to the outbox (`app.core.outbox.enqueue_in`), it wakes the replica's courier after
the commit, so the message goes at once.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Protocol

import asyncpg
from fastapi import Request
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.core.events import Events, events_of
from app.core.hub import EventHub
from app.core.settings import Settings, masked_url


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


class Wakes(Protocol):
    """What sends the outbox's messages (app.core.courier.OutboxCourier): woken after a commit
    that wrote some."""

    def wake(self) -> None: ...


_OUTBOX_WRITTEN = "cc.outbox_written"  # in `session.info`: the work wrote outbox messages


def outbox_written(session: AsyncSession) -> None:
    """Note that the session's transaction wrote to the outbox, so that its unit of work wakes
    the courier once it has committed."""
    session.info[_OUTBOX_WRITTEN] = True


@asynccontextmanager
async def unit_of_work(
    sessions: async_sessionmaker[AsyncSession],
    *,
    hub: EventHub | None = None,
    outbox: Wakes | None = None,
) -> AsyncIterator[AsyncSession]:
    """One session, one transaction: commit on success, roll back on any error.

    The events the work added (`events_of(session)`) are written just before the commit, so
    they are rolled back with it; after the commit they go to `hub`, so this replica's
    subscribers get them at once. Without a hub they arrive by the NOTIFY of the events
    trigger (these connections are not the hub's own), as they do on the other replicas.
    Outbox messages the work wrote wake `outbox` after the commit; without one, a courier's
    sweep finds them.
    """
    async with sessions() as session:
        async with session.begin():
            yield session
            events = await _write_events(session)
        if hub is not None and events.written:
            hub.publish(events.written)
        if outbox is not None and session.info.pop(_OUTBOX_WRITTEN, False):
            outbox.wake()


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
    """FastAPI dependency: the request's unit of work, its events published on this replica
    and its outbox messages sent from here."""
    state = request.app.state
    async with unit_of_work(
        state.sessions, hub=state.hub, outbox=getattr(state, "outbox", None)
    ) as session:
        yield session


async def database_answers(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:  # any failure means the database does not answer
        return False
    return True


# How a connection that never opened fails: refused, timed out, no such host, no such socket.
UNREACHABLE = (ConnectionError, TimeoutError, socket.gaierror, FileNotFoundError)


def explain_database_error(error: BaseException, url: str | None) -> str | None:
    """A failure to reach or enter the database, in one line that says what to fix (no
    password in it); None when `error` is not one (a bug keeps its traceback)."""
    where = _where(url)
    for cause in _causes(error):
        if isinstance(cause, asyncpg.InvalidAuthorizationSpecificationError):  # and passwords
            return (
                f"the database at {where} refused to let {_user(url)} in ({cause}): check the"
                " user and password in DATABASE_URL, and the server's pg_hba.conf"
            )
        if isinstance(cause, asyncpg.InvalidCatalogNameError):
            return (
                f"the server at {where} has no such database ({cause}): create it"
                " (CREATE DATABASE ... OWNER ...) or fix the database name in DATABASE_URL"
            )
        if isinstance(cause, asyncpg.CannotConnectNowError | asyncpg.TooManyConnectionsError):
            return f"the database at {where} takes no connection now ({cause}): try again later"
        if isinstance(cause, UNREACHABLE):
            return (
                f"cannot reach the database at {where} ({cause.strerror or cause}): check the"
                " host and port in DATABASE_URL, and that PostgreSQL runs and accepts"
                " connections from here"
            )
    return None


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error and what it wraps: SQLAlchemy's `orig`, then causes and contexts."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [getattr(current, "orig", None), current.__cause__, current.__context__]


def _where(url: str | None) -> str:
    if not url:
        return "the embedded server"
    try:
        parsed = make_url(url)
    except ValueError:
        return masked_url(url)
    host = parsed.host or str(parsed.query.get("host", "localhost"))
    port = f":{parsed.port or 5432}" if parsed.host else ""
    return f"{host}{port}/{parsed.database or ''}"


def _user(url: str | None) -> str:
    username = make_url(url).username if url else None
    return f"user {username!r}" if username else "this user"
