"""The one writer of offers, for a matcher pass and for an arrival offered as it comes in.

An offer is written against the agent's row as routing last read it. Every write takes the
agent's row lock and moves its `routing_version` (app/routing/agent_version.sql has the trigger
that moves it for everything else routing counts on), and lands only while the row is still
as read: of two writers that counted on the same room, the second finds the row moved and
writes nothing (DESIGN.md rule 2). It claims the interaction only while it is still queued
(rule 1; a partial unique index on pending offers makes that a fact of the database too).

What travels with an offer to the desk (the screen pop) is not routing's to know: the writer
is given `OfferDetails` by the edge that delivers offers (app/desk/screen_pop.py), and reads
them in the same statement, from its snapshot, so an offer reaches a desk of its own replica
with no read of its own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import asyncpg

from app.core.events import SYSTEM_ACTOR
from app.core.hub import EventRecord
from app.routing import policy

REASON_LENGTH = 300  # offers.reason's width: the live pop and a replayed one say the same


class OfferDetails(Protocol):
    """What an offer carries to the agent (the screen pop), read by the offers' own write.

    `columns` is an SQL select list over the offered interaction `i`, its customer `c` and its
    queue `q`; `from_row` turns a row holding them, with the offer's event payload, into what
    travels with the `interaction.offered` event (`EventRecord.attached[name]`)."""

    name: str
    columns: str

    def from_row(self, row: Mapping[str, Any], payload: Mapping[str, Any]) -> object: ...


@dataclass(frozen=True, slots=True)
class NewOffer:
    """An offer about to be written: the policy's match, the interaction as weighed, when it
    expires, and the `routing_version` of the agent's row its load was read with."""

    id: uuid.UUID
    match: policy.Match
    item: policy.WaitingInteraction
    deadline: datetime
    agent_read: int

    @property
    def reason(self) -> str:
        return self.match.reason[:REASON_LENGTH]

    def matched(self) -> str:
        """The offer row's `matched` column, as JSON text."""
        return json.dumps(
            {
                "skills": dict(self.match.matched_skills),
                "effective_priority": self.match.effective_priority,
            }
        )

    def event_payload(self) -> dict[str, Any]:
        """The `interaction.offered` event's payload."""
        return {
            "from": "queued",
            "offer_id": str(self.id),
            "agent_id": str(self.match.agent_id),
            "channel": self.item.channel.value,
            "queue_id": str(self.item.queue_id),
            "deadline": self.deadline.isoformat(),
            "reason": self.reason,
            "matched_skills": dict(self.match.matched_skills),
            "effective_priority": self.match.effective_priority,
        }


@dataclass(frozen=True, slots=True)
class Written:
    """An offer that landed: its agent's row is now at `agent_version`; its event as written."""

    offer: NewOffer
    agent_version: int
    event: EventRecord


# One statement locks the agents whose row is still as read and routable (routing may not have
# heard yet of a change of state, capacity or skills, of a user deactivated, or of another
# writer's offer: such an offer is skipped, and its agent read afresh), claims their
# interactions if still queued (one may have been abandoned since the read), inserts the offers
# and their events in the order given, and returns each offer's details: four writes and a
# read, one round trip, one commit. The agents are locked before the interactions, the lock
# order of decisions.sql. The details are read from the statement's snapshot, taken before its
# writes: the interaction is still `queued` there, and nothing they show changes when it is
# offered. With $12 (an arrival offered as it comes in), nothing lands while an interaction
# other than those listed waits: the arrival was weighed against those alone (rule 4).
_WRITE = """
    WITH input AS (
        SELECT o.*
        FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::timestamptz[],
                    $7::text[], $8::text[], $11::bigint[])
            AS o(id, interaction_id, agent_id, channel, deadline, reason, matched, agent_read)
    ), locked AS (
        UPDATE agents a SET routing_version = a.routing_version + 1
        FROM (SELECT DISTINCT agent_id, agent_read FROM input) r, users u
        WHERE a.id = r.agent_id AND a.routing_version = r.agent_read
          AND a.state IN ('available', 'busy', 'wrap_up')
          AND u.id = a.user_id AND u.is_active
          AND ($12::uuid[] IS NULL OR NOT EXISTS (
              SELECT FROM interactions q WHERE q.state = 'queued' AND q.id <> ALL($12::uuid[])
          ))
        RETURNING a.id, a.routing_version
    ), proposed AS (
        SELECT input.* FROM input JOIN locked ON locked.id = input.agent_id
    ), claimed AS (
        UPDATE interactions SET state = 'offered', offered_at = $1, updated_at = $1
        WHERE id IN (SELECT interaction_id FROM proposed) AND state = 'queued'
        RETURNING id
    ), offered AS (
        INSERT INTO offers (id, interaction_id, agent_id, channel, state, created_at, deadline,
                            reason, matched)
        SELECT p.id, p.interaction_id, p.agent_id, p.channel, 'pending', $1, p.deadline,
               p.reason, p.matched::jsonb
        FROM proposed p JOIN claimed c ON c.id = p.interaction_id
        RETURNING interaction_id
    ), written AS (
        INSERT INTO events (occurred_at, kind, subject_type, subject_id, actor, payload)
        SELECT $1, 'interaction.offered', 'interaction', e.interaction_id::text, $9,
               e.payload::jsonb
        FROM unnest($3::uuid[], $10::text[]) WITH ORDINALITY AS e(interaction_id, payload, n)
        JOIN offered USING (interaction_id)
        ORDER BY e.n
        RETURNING id, subject_id
    )
    SELECT w.id, w.subject_id, l.routing_version AS agent_version{details}
    FROM written w JOIN interactions i ON i.id = w.subject_id::uuid
    JOIN customers c ON c.id = i.customer_id
    JOIN queues q ON q.id = i.queue_id
    JOIN proposed p ON p.interaction_id = i.id JOIN locked l ON l.id = p.agent_id
"""


class OfferWriter:
    """Writes offers, with the details the desks want read alongside (none in some tests)."""

    def __init__(self, details: OfferDetails | None = None) -> None:
        self._details = details
        columns = "" if details is None else f",\n    {details.columns}"
        self._statement = _WRITE.format(details=columns)

    async def write(
        self,
        connection: asyncpg.Connection,
        offers: Sequence[NewOffer],
        moment: datetime,
        *,
        only_waiting: Sequence[uuid.UUID] | None = None,
    ) -> list[Written]:
        """Writes what lands of `offers` (autocommitted: one statement); returns it in log
        order. `only_waiting`: land nothing while other interactions than these are queued."""
        if not offers:
            return []
        by_interaction = {str(offer.match.interaction_id): offer for offer in offers}
        payloads = {key: offer.event_payload() for key, offer in by_interaction.items()}
        rows = await connection.fetch(
            self._statement,
            moment,
            [offer.id for offer in offers],
            [offer.match.interaction_id for offer in offers],
            [offer.match.agent_id for offer in offers],
            [offer.item.channel.value for offer in offers],
            [offer.deadline for offer in offers],
            [offer.reason for offer in offers],
            [offer.matched() for offer in offers],
            SYSTEM_ACTOR,
            [json.dumps(payloads[str(offer.match.interaction_id)]) for offer in offers],
            [offer.agent_read for offer in offers],
            None if only_waiting is None else list(only_waiting),
        )
        return [
            Written(
                offer=by_interaction[row["subject_id"]],
                agent_version=row["agent_version"],
                event=self._event(row, moment, payloads[row["subject_id"]]),
            )
            for row in sorted(rows, key=lambda row: row["id"])
        ]

    def _event(self, row: asyncpg.Record, moment: datetime, payload: dict[str, Any]) -> EventRecord:
        """The `interaction.offered` event as written, with its details attached."""
        attached = (
            {}
            if self._details is None
            else {self._details.name: self._details.from_row(row, payload)}
        )
        return EventRecord(
            id=row["id"],
            occurred_at=moment,
            kind="interaction.offered",
            subject_type="interaction",
            subject_id=row["subject_id"],
            actor=SYSTEM_ACTOR,
            payload=payload,
            attached=attached,
        )


def new_offer(
    match: policy.Match,
    item: policy.WaitingInteraction,
    offer_timeout: timedelta,
    moment: datetime,
    agent_read: int,
) -> NewOffer:
    return NewOffer(uuid.uuid4(), match, item, moment + offer_timeout, agent_read)
