"""The append-only event log: one row per state change, written in the change's own transaction.

There is one way to write events: gather a transaction's events in one `Events` (its outbox),
write them with one statement at the transaction's end, and once it has committed hand
`written` to the replica's hub (`EventHub.publish`), so its own subscribers get them at once.
Plain-SQL paths on asyncpg (intake, routing, the desk) make their own `Events` and write and
publish it themselves; an ORM session's is `events_of(session)`, which its unit of work writes
and publishes (`app.core.db.unit_of_work`). Statements that insert their events themselves (the
hot paths' CTEs and PL/pgSQL functions) hand what they inserted to `note_written`.

A trigger (see the migrations) also sends a NOTIFY with each new id, unless the connection is
one the hub owns (`EventHub.own`). PostgreSQL delivers it only at commit, so listeners never see
an event whose change was rolled back; the hub skips ids already published, so none goes out
twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import BigInteger, Identity, Index, String, event, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.core.hub import EventRecord
from app.core.models import Base, utcnow

SYSTEM_ACTOR = "system"


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_subject", "subject_type", "subject_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(96))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


INSERT_EVENTS = """
    INSERT INTO events (occurred_at, kind, subject_type, subject_id, actor, payload)
    SELECT $1, kind, subject_type, subject_id, actor, payload::jsonb
    FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
        WITH ORDINALITY AS e(kind, subject_type, subject_id, actor, payload, n)
    ORDER BY n
    RETURNING id
"""


class Events:
    """The events of one transaction (its outbox), written with one statement at its end.

    Ids follow the order of `add`, as the insert keeps the order of its input arrays.
    Payloads travel as JSON text, so the statement works on any asyncpg connection whatever
    its codecs (SQLAlchemy's connections encode jsonb differently from the hot pool's).
    After `write`, `written` holds the events as the hub will read them, so that once the
    transaction commits the writer can hand them to its replica's hub at once
    (`EventHub.publish`) instead of waiting for the NOTIFY and the hub's read.
    """

    def __init__(self) -> None:
        self._rows: list[tuple[str, str, str, str, str]] = []
        self.written: list[EventRecord] = []

    @property
    def unwritten(self) -> int:
        """How many events were added since the last `write`."""
        return len(self._rows)

    def add(
        self,
        kind: str,
        *,
        subject_type: str,
        subject_id: object,
        actor: str,
        payload: dict[str, Any] | None = None,
    ) -> None:
        self._rows.append((kind, subject_type, str(subject_id), actor, json.dumps(payload or {})))

    def note_written(self, records: Iterable[EventRecord]) -> None:
        """Events a statement of the caller's own inserted (so they are published too)."""
        self.written.extend(records)

    async def write(self, connection: asyncpg.Connection) -> None:
        if not self._rows:
            return
        columns: Sequence[list[Any]] = [list(column) for column in zip(*self._rows, strict=True)]
        moment = utcnow()
        # Identity values are drawn in input order (ORDER BY n), so sorted ids match the rows.
        ids = sorted(row["id"] for row in await connection.fetch(INSERT_EVENTS, moment, *columns))
        self.written.extend(
            EventRecord(
                id=event_id,
                occurred_at=moment,
                kind=kind,
                subject_type=subject_type,
                subject_id=subject_id,
                actor=actor,
                payload=json.loads(payload),
            )
            for event_id, (kind, subject_type, subject_id, actor, payload) in zip(
                ids, self._rows, strict=True
            )
        )
        self._rows.clear()


_OUTBOX = "cc.events"  # the key of a session's Events in `session.info`


class UnwrittenEvents(RuntimeError):
    """A session with events not written tried to commit: only a unit of work writes them."""


def events_of(session: AsyncSession) -> Events:
    """The session's outbox: what its work adds here is written in its transaction just before
    the commit, and published after it, by the unit of work that owns the session
    (`app.core.db.unit_of_work`, `get_session`). Rolled back with the change, in `add` order.
    Not with a savepoint, though (`begin_nested`): add an event once its savepoint has held.
    """
    outbox: Events | None = session.info.get(_OUTBOX)
    if outbox is None:
        outbox = session.info[_OUTBOX] = Events()
    return outbox


@event.listens_for(Session, "before_commit")
def _refuse_unwritten(session: Session) -> None:
    """A session committed other than by its unit of work would lose its events: refused.
    (A savepoint's release is a commit too, of a nested transaction: those pass.)"""
    if session.in_nested_transaction():
        return
    outbox: Events | None = session.info.get(_OUTBOX)
    if outbox is not None and outbox.unwritten:
        raise UnwrittenEvents(
            f"{outbox.unwritten} event(s) not written: commit through app.core.db.unit_of_work"
        )
