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
from dataclasses import dataclass, field
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
    # More for the event's payload: a supervisor's offer to a named agent says `directed`
    # (app/routing/directed.py; its match's `reason` is the supervisor's).
    extra: Mapping[str, Any] = field(default_factory=dict)

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
            **self.extra,
        }


@dataclass(frozen=True, slots=True)
class Written:
    """An offer that landed: its agent's row is now at `agent_version`; its event as written."""

    offer: NewOffer
    agent_version: int
    event: EventRecord


# One statement locks the agents whose row is still as read and routable (routing may not have
# heard yet of a change of state, capacity or skills, of a user deactivated, or of another
# writer's offer: such an offer is skipped, and its agent read afresh) and whose desk is on a
# replica with a live lease (app/core/lease.py; checked against the later of the offer's
# moment and the database's clock, so that no offer row is made at or after its lease's end),
# takes the interactions (`{take}`, below), inserts the offers and their events in the order
# given, and returns each offer's details: the writes and a read, one round trip, one commit.
# The agents are locked before the interactions, the lock order of decisions.sql. The details
# are read from the statement's snapshot, taken before its writes: nothing they show changes
# when the interaction is offered. With $12 (an arrival offered as it comes in), nothing lands
# while an interaction other than those listed is queued: the arrival was weighed against those
# alone (rule 4); work held back until after the offer's moment (`not_before`) is not in line
# yet, and counts as nothing. The same text serves both takes, so the lock, the version check
# and the offer rows are written once.
_WRITE = """
    WITH input AS (
        SELECT o.*
        FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::timestamptz[],
                    $7::text[], $8::text[], $11::bigint[])
            AS o(id, interaction_id, agent_id, channel, deadline, reason, matched, agent_read)
    ), locked AS (
        UPDATE agents a SET routing_version = a.routing_version + 1
        FROM (SELECT DISTINCT agent_id, agent_read FROM input) r, users u,
             agent_presence d, replicas l
        WHERE a.id = r.agent_id AND a.routing_version = r.agent_read
          AND a.state IN ('available', 'busy', 'wrap_up')
          AND u.id = a.user_id AND u.is_active
          AND d.agent_id = a.id AND l.id = d.replica_id
          AND l.lease_until > greatest($1, statement_timestamp())
          AND ($12::uuid[] IS NULL OR NOT EXISTS (
              SELECT FROM interactions q WHERE q.state = 'queued' AND q.id <> ALL($12::uuid[])
                AND (q.not_before IS NULL OR q.not_before <= $1)
          ))
        RETURNING a.id, a.routing_version, d.replica_id
    ), proposed AS (
        SELECT input.*, locked.replica_id FROM input JOIN locked ON locked.id = input.agent_id
    ), {take}, offered AS (
        INSERT INTO offers (id, interaction_id, agent_id, channel, state, created_at, deadline,
                            reason, matched, replica_id)
        SELECT p.id, p.interaction_id, p.agent_id, p.channel, 'pending', $1, p.deadline,
               p.reason, p.matched::jsonb, p.replica_id
        FROM proposed p JOIN taken t ON t.id = p.interaction_id
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
"""

# A pass takes the waiting interactions it matched, if still queued (one may have been
# abandoned, or offered by an arrival, since the read), and returns a row per offer written.
_CLAIM = """taken AS (
        UPDATE interactions SET state = 'offered', offered_at = $1, updated_at = $1
        WHERE id IN (SELECT interaction_id FROM proposed) AND state = 'queued'
        RETURNING id
    )"""
_OFFERS_WRITTEN = """
    SELECT w.id, w.subject_id, l.routing_version AS agent_version{details}
    FROM written w JOIN interactions i ON i.id = w.subject_id::uuid
    JOIN customers c ON c.id = i.customer_id
    JOIN queues q ON q.id = i.queue_id
    JOIN proposed p ON p.interaction_id = i.id JOIN locked l ON l.id = p.agent_id
"""

# An arrival is written by intake's own function (app/interactions/arrival.sql, $13-$30: its
# `Arrival.arguments`, with `p_offered` after the 12th), offered already if its agent was
# locked; the statement returns its row (none for a reference delivered before), with the
# offer's event and details if it landed.
_ARRIVE = """arrived AS (
        SELECT a.interaction AS row, (a.interaction).id AS id, a.queued_event_id
        FROM interactions_arrive(
            $13, $14, $15, $16, $17, $18, $19::text::jsonb, $20, $21, $22, $23,
            $24::text::jsonb, EXISTS (SELECT FROM proposed), $25::text::jsonb, $26, $27, $28,
            $29, $30
        ) a
    ), taken AS (
        SELECT arrived.id FROM arrived WHERE (arrived.row).state = 'offered'
    )"""
_ARRIVAL_WRITTEN = """
    SELECT i.*, t.queued_event_id, w.id AS offered_event_id, w.subject_id,
           l.routing_version AS agent_version{details}
    FROM arrived t CROSS JOIN LATERAL (SELECT (t.row).*) i
    JOIN customers c ON c.id = i.customer_id
    JOIN queues q ON q.id = i.queue_id
    LEFT JOIN written w ON true LEFT JOIN locked l ON true
"""


@dataclass(frozen=True, slots=True)
class ArrivalWritten:
    """An arrival as the offer writer wrote it: its row (offered or queued), the id of its
    `interaction.queued` event, and its offer if that landed."""

    row: dict[str, Any]  # with the offer's details beside the interaction's columns
    queued_event_id: int
    offer: Written | None


def _payloads(offers: Sequence[NewOffer]) -> dict[str, dict[str, Any]]:
    """Each offer's event payload, by its interaction's id as text (the event's subject)."""
    return {str(offer.match.interaction_id): offer.event_payload() for offer in offers}


def _arguments(
    offers: Sequence[NewOffer],
    moment: datetime,
    payloads: Mapping[str, dict[str, Any]],
    actor: str = SYSTEM_ACTOR,
) -> tuple[object, ...]:
    """$1-$11 of `_WRITE`."""
    return (
        moment,
        [offer.id for offer in offers],
        [offer.match.interaction_id for offer in offers],
        [offer.match.agent_id for offer in offers],
        [offer.item.channel.value for offer in offers],
        [offer.deadline for offer in offers],
        [offer.reason for offer in offers],
        [offer.matched() for offer in offers],
        actor,
        [json.dumps(payloads[str(offer.match.interaction_id)]) for offer in offers],
        [offer.agent_read for offer in offers],
    )


class OfferWriter:
    """Writes offers, with the details the desks want read alongside (none in some tests)."""

    def __init__(self, details: OfferDetails | None = None) -> None:
        self._details = details
        columns = "" if details is None else f",\n    {details.columns}"
        self._statement = _WRITE.format(take=_CLAIM) + _OFFERS_WRITTEN.format(details=columns)
        self._arrival = _WRITE.format(take=_ARRIVE) + _ARRIVAL_WRITTEN.format(details=columns)

    async def write(
        self,
        connection: asyncpg.Connection,
        offers: Sequence[NewOffer],
        moment: datetime,
        *,
        actor: str = SYSTEM_ACTOR,
    ) -> list[Written]:
        """Writes what lands of `offers` for queued interactions (autocommitted: one
        statement, or in the caller's transaction); returns it in log order. `actor`: who
        made the offers (routing; a supervisor who offers work to a named agent)."""
        if not offers:
            return []
        payloads = _payloads(offers)
        arguments = _arguments(offers, moment, payloads, actor)
        rows = await connection.fetch(self._statement, *arguments, None)
        by_interaction = {str(offer.match.interaction_id): offer for offer in offers}
        return [
            Written(
                offer=by_interaction[row["subject_id"]],
                agent_version=row["agent_version"],
                event=self._event(row, moment, payloads[row["subject_id"]], actor),
            )
            for row in sorted(rows, key=lambda row: row["id"])
        ]

    async def write_arrival(
        self,
        connection: asyncpg.Connection,
        offer: NewOffer,
        arrival: Sequence[object],
        moment: datetime,
        *,
        only_waiting: Sequence[uuid.UUID],
    ) -> ArrivalWritten | None:
        """Writes a new interaction (`arrival`: the arguments of `interactions_arrive` but
        `p_offered`, written at `moment`) with `offer`, which lands only while nothing but
        `only_waiting` is queued (one statement); None for a reference delivered before."""
        payloads = _payloads([offer])
        row = await connection.fetchrow(
            self._arrival, *_arguments([offer], moment, payloads), list(only_waiting), *arrival
        )
        if row is None:
            return None
        written = dict(row)  # the interaction's columns, and the details beside them
        landed = None
        if row["offered_event_id"] is not None:
            key = str(offer.match.interaction_id)
            event = self._event({**written, "id": row["offered_event_id"]}, moment, payloads[key])
            landed = Written(offer, row["agent_version"], event)
        return ArrivalWritten(written, row["queued_event_id"], landed)

    def _event(
        self,
        row: Mapping[str, Any],
        moment: datetime,
        payload: dict[str, Any],
        actor: str = SYSTEM_ACTOR,
    ) -> EventRecord:
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
            actor=actor,
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
