"""The one way in: every channel adapter (HTTP, IVR, email, chat, callback) hands its new
interactions to `Intake.receive`, and what happens to an existing one (an email reply, a chat
line, a call's progress) to `Intake.add_event`.

`receive` identifies the caller and the customer (app/interactions/identify.py), writes the
interaction and its `interaction.queued` event in one statement, hands it to routing (the
`Router` main gives it: app/routing/arrivals.py, which offers it at once when it can and wakes
the matcher when it cannot), and publishes what was written to its replica's event hub once it
has committed. Adapters translate wire formats; they never write interactions themselves.

This is the hot path, so it is plain SQL on the asyncpg pool (app.core.pg), not the ORM: the
usual delivery (a known customer, by id or contact point) costs the look-up and the write, one
statement each (no BEGIN/COMMIT: a row and its events commit together). The write is
`interactions_arrive` (app/interactions/arrival.sql), called here for an arrival that waits
for a pass, and by routing's offer writer, in the statement that writes its offer, for an
arrival offered at once. The events are handed to the hub as soon as they have committed, as
the hot pool's commits send no NOTIFY (EventHub.own).
"""

from __future__ import annotations

import json
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import service as auth
from app.auth.dependencies import RAISE_WORK, known_principal
from app.core import pg
from app.core.errors import IllegalTransition, InvalidField
from app.core.events import Events
from app.core.hub import EventHub, EventRecord
from app.core.settings import Settings
from app.interactions import identify
from app.interactions.models import TERMINAL_STATES, InteractionState
from app.interactions.schemas import InteractionCreate, InteractionReceived
from app.interactions.service import InteractionNotFound

# The new row, queued, with its event: `interactions_arrive` (app/interactions/arrival.sql),
# whose arguments are `Arrival.arguments`, with whether it is offered already after the 12th.
# No row for a repeated reference: a concurrent delivery of it won, and no event is written.
# JSON goes in as text, which reads the same whatever jsonb codec the connection has.
INSERT = """
    SELECT (a.interaction).*, a.queued_event_id
    FROM interactions_arrive(
        $1, $2, $3, $4, $5, $6, $7::text::jsonb, $8, $9, $10, $11, $12::text::jsonb, false,
        $13::text::jsonb, $14, $15, $16, $17, $18
    ) a
"""
# What an earlier delivery of a reference became, read only when a reference comes again: the
# row, its queue's name (to say what differs) and the agent its pending offer waits on.
EARLIER = """
    SELECT i.*, q.name AS queue_name, (
        SELECT o.agent_id FROM offers o WHERE o.interaction_id = i.id AND o.state = 'pending'
    ) AS offered_to
    FROM interactions i JOIN queues q ON q.id = i.queue_id
"""
BY_REFERENCE = EARLIER + "WHERE i.channel = $1 AND i.external_ref = $2"
BY_ID = EARLIER + "WHERE i.id = $1"

# An interaction locked while an event is added to it: two deliveries of the same event (a
# gateway's retry) take their turns, so the second finds the first's (`EARLIER_EVENT`).
LOCK_INTERACTION = "SELECT state FROM interactions WHERE id = $1 FOR NO KEY UPDATE"
EARLIER_EVENT = """
    SELECT id, occurred_at, kind, subject_type, subject_id, actor, payload FROM events
    WHERE subject_type = 'interaction' AND subject_id = $1 AND kind = $2
      AND payload ->> 'reference' = $3
    ORDER BY id LIMIT 1
"""
# What an adapter may say happened to an interaction it delivered: the channel issues add
# their kinds here (a message, a call's progress), so every subscriber knows the whole list.
PROGRESS_KINDS = frozenset({"interaction.message", "interaction.progress"})


@dataclass(frozen=True)
class Place:
    """Where a new interaction stands in its queue's line, when a channel adapter says (not the
    HTTP API): a callback that replaces a waiting call keeps that call's `waiting_since`, so
    nobody who came after the call goes ahead of it; a voicemail's callback waits until
    `not_before` (its queue's next opening), and routing offers it no earlier."""

    waiting_since: datetime
    not_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class Conversation:
    """What a channel of messages (email, chat) brings with a new interaction, written with it
    in the arrival's one statement: its first message (stored already, and attached here, so
    the offer's screen pop, which that statement may write, shows it), the thread's reply
    token, and the completed interaction it follows up (routing offers it first to that
    thread's agent when the queue says so: `follow_up_days`)."""

    first_message: uuid.UUID
    reply_token: str | None = None
    continues: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Arrival:
    """A valid new interaction about to be written: its row, its event's payload, and what
    routing needs to weigh it (the customer's tier, also for a customer made by this request,
    and the agent who last served them, if any). `waiting_since` and `not_before` come from
    its `Place`, if it was given one: it waits from its arrival (`moment`) otherwise."""

    id: uuid.UUID
    data: InteractionCreate
    queue_id: uuid.UUID
    customer_id: uuid.UUID
    needs: list[dict[str, Any]]
    moment: datetime
    actor: str
    tier: str
    last_agent_id: uuid.UUID | None
    last_agent_at: datetime | None
    queues_version: str | None
    waiting_since: datetime | None = None
    not_before: datetime | None = None
    conversation: Conversation | None = None
    # A follow-up's: the agent of the thread it continues, and when that thread ended.
    thread_agent_id: uuid.UUID | None = None
    thread_ended_at: datetime | None = None
    # The owner of the customer's open complaint, for a queue that prefers it, and its reference.
    complaint_owner_id: uuid.UUID | None = None
    complaint_reference: str | None = None

    @property
    def waits_since(self) -> datetime:
        """Its place in the line: kept from the call it replaces, else its arrival."""
        return self.moment if self.waiting_since is None else self.waiting_since

    @property
    def due(self) -> bool:
        """Whether routing may offer it now: not held back until a later moment."""
        return self.not_before is None or self.not_before <= self.moment

    def payload(self) -> dict[str, Any]:
        """The `interaction.queued` event's payload (never the IVR's document: the row has
        it); a place given, the place too."""
        payload: dict[str, Any] = {
            "channel": self.data.channel.value,
            "queue_id": str(self.queue_id),
            "customer_id": str(self.customer_id),
            "priority": self.data.priority,
            "external_ref": self.data.external_ref,
        }
        if self.waiting_since is not None:
            payload["waiting_since"] = self.waiting_since.isoformat()
        if self.not_before is not None:
            payload["not_before"] = self.not_before.isoformat()
        return payload

    def arguments(self) -> tuple[object, ...]:
        """The arguments of `interactions_arrive` (app/interactions/arrival.sql) but
        `p_offered`, which the caller puts after the 12th."""
        ivr, talk = self.data.ivr, self.conversation
        return (
            self.id,
            self.data.channel.value,
            self.data.external_ref,
            self.queue_id,
            self.customer_id,
            self.data.priority,
            json.dumps(self.needs),
            self.data.subject,
            self.data.summary,
            self.moment,
            self.actor,
            json.dumps(self.payload()),
            None if ivr is None else ivr.model_dump_json(),
            self.waiting_since,
            self.not_before,
            None if talk is None else talk.continues,
            None if talk is None else talk.reply_token,
            None if talk is None else talk.first_message,
        )

    def queued_event(self, event_id: int) -> EventRecord:
        return EventRecord(
            id=event_id,
            occurred_at=self.moment,
            kind="interaction.queued",
            subject_type="interaction",
            subject_id=str(self.id),
            actor=self.actor,
            payload=self.payload(),
        )


@dataclass(frozen=True, slots=True)
class Routed:
    """What routing did with an arrival: the events it wrote (committed), and the agent it
    offered the arrival to, if it did at once."""

    events: list[EventRecord] = field(default_factory=list)
    offered_to: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Inserted:
    """An arrival as written (its row, its `interaction.queued` event) and what routing did."""

    row: dict[str, Any]
    queued: EventRecord
    routed: Routed = field(default_factory=Routed)


class Offering(Protocol):
    """An offer routing makes for an arrival at once: written with the arrival itself, in one
    statement (routing's offer writer calls `interactions_arrive`); None for a reference
    delivered before."""

    async def write(self, connection: asyncpg.Connection) -> Inserted | None: ...


class Router(Protocol):
    """Routing's side of intake (app/routing/arrivals.py), given to `Intake` by main:
    `interactions` stands below `routing` and does not import it. `arriving_now` is entered
    before the arrival is written and yields the offer to write with it, if any; it is left
    once the write has committed, when routing learns what landed (and is woken for an arrival
    left queued)."""

    def arriving_now(self, arrival: Arrival) -> AbstractContextManager[Offering | None]: ...


@dataclass(frozen=True, slots=True)
class Received:
    """An interaction as intake left it, with the agent it is offered to, if any; `created`
    False for a reference delivered before. `events`: what was written for it, in log order,
    published already."""

    interaction: InteractionReceived
    created: bool
    events: list[EventRecord] = field(default_factory=list)


class Intake:
    """The one way in for every channel. One per replica (app.state.intake)."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        hub: EventHub,
        router: Router | None = None,
    ) -> None:
        self._pool = pool
        self._sessions = sessions
        self._settings = settings
        self._hub = hub
        self._router = router

    async def receive(
        self,
        data: InteractionCreate,
        *,
        actor: str | None = None,
        secret: str | None = None,
        connection: asyncpg.Connection | None = None,
        place: Place | None = None,
        conversation: Conversation | None = None,
    ) -> Received:
        """Queue a new interaction, route it, publish its events; a reference delivered before
        is answered with what it became (idempotent: gateways and mail servers retry).

        Who asks: `actor`, a caller known already (a channel adapter that checked its own
        signature), or `secret`, a request's token or gateway key, checked in the look-up's
        round trip; an unknown one is refused (401), and one that may not raise work (an
        agent's or a supervisor's: `RAISE_WORK`) is refused (403), before anything else is
        answered.
        `connection`: one the caller holds already (the HTTP endpoint, which checked the caller
        on it), else one is borrowed from the pool.
        `place`: where it stands in the line, for a channel adapter that knows (a callback
        keeps the place of the call it replaces; a voicemail's waits for its queue to open);
        None: it waits from now, and may be offered at once.
        `conversation`: for a channel of messages, the first message and the thread (a
        follow-up continues one of the same customer's), written with the arrival."""
        if connection is not None:
            return await self._receive(connection, data, actor, secret, place, conversation)
        async with self._pool.acquire(timeout=pg.ACQUIRE_TIMEOUT) as borrowed:
            return await self._receive(borrowed, data, actor, secret, place, conversation)

    async def _receive(
        self,
        connection: asyncpg.Connection,
        data: InteractionCreate,
        actor: str | None,
        secret: str | None,
        place: Place | None,
        conversation: Conversation | None,
    ) -> Received:
        arrival = await self._identify(connection, data, actor, secret, place, conversation)
        if isinstance(arrival, InteractionReceived):
            return Received(arrival, created=False)
        if self._router is None:
            received = await self._write(connection, arrival, None)
        else:
            with self._router.arriving_now(arrival) as offering:
                received = await self._write(connection, arrival, offering)
        # Committed already. Handed over before the connection goes back: a cancel during the
        # release would leave the events to the hubs' next poll.
        self._hub.publish(received.events)
        return received

    async def _write(
        self, connection: asyncpg.Connection, arrival: Arrival, offering: Offering | None
    ) -> Received:
        """The arrival written, with the offer routing made for it in the same statement."""
        if offering is None:
            inserted = await insert(connection, arrival)
        else:
            inserted = await offering.write(connection)
        if inserted is None:  # a concurrent delivery of the same reference won
            return Received(await _won_the_race(connection, arrival), created=False)
        routed = inserted.routed
        events = [inserted.queued, *routed.events]
        answer = {**inserted.row, "offered_to": routed.offered_to}
        return Received(InteractionReceived.model_validate(answer), True, events)

    async def _identify(
        self,
        connection: asyncpg.Connection,
        data: InteractionCreate,
        actor: str | None,
        secret: str | None,
        place: Place | None,
        conversation: Conversation | None,
    ) -> Arrival | InteractionReceived:
        """The arrival to write, or the interaction an earlier delivery of it became (409 if
        this delivery asks for something else)."""
        settings = self._settings
        contact = identify.contact_of(data, settings.default_phone_region)
        arguments = (
            identify.NO_CALLER if secret is None else auth.caller_arguments(secret, settings)
        )
        continues = None if conversation is None else conversation.continues
        found = await identify.look_up(connection, data, contact, arguments, continues)
        if secret is not None:  # who may: app/auth/dependencies.py, on what the look-up read
            actor = RAISE_WORK.check(known_principal(found.caller)).actor
        assert actor is not None, "Intake.receive needs an actor or a secret"
        if found.existing_id is not None:
            return await _delivered_before(connection, data, found)
        if found.queue_id is None:
            raise InvalidField("queue", f"no queue named or numbered {data.queue!r}")
        if found.customer_id is None:
            identify.ensure_valid_contact(data, contact)
        needs = identify.needs_of(found.queue_needs, identify.requested(data.skills, found.skills))
        # A first contact has no last agent (the look-up found none): only its tier is new.
        customer_id, tier = found.customer_id, found.tier
        if customer_id is None:
            assert contact is not None
            customer_id, tier = await identify.new_customer(
                connection, self._sessions, data, contact, settings, actor, self._hub
            )
        assert tier is not None, "a customer found has a tier"
        return Arrival(
            id=uuid.uuid4(),
            data=data,
            queue_id=found.queue_id,
            customer_id=customer_id,
            needs=needs,
            moment=pg.now(),
            actor=actor,
            tier=tier,
            last_agent_id=found.last_agent_id,
            last_agent_at=found.last_agent_at,
            queues_version=found.queues_version,
            waiting_since=None if place is None else place.waiting_since,
            not_before=None if place is None else place.not_before,
            conversation=conversation,
            thread_agent_id=found.thread_agent_id,
            thread_ended_at=found.thread_ended_at,
            complaint_owner_id=found.complaint_owner_id,
            complaint_reference=found.complaint_reference,
        )

    async def add_event(
        self,
        interaction_id: uuid.UUID,
        kind: str,
        payload: dict[str, Any],
        *,
        actor: str,
        reference: str | None = None,
    ) -> tuple[EventRecord, bool]:
        """Record what happened to an interaction a channel delivered (a message, a call's
        progress) as an event of the interaction, and publish it; returns it, and whether it
        is new. `reference`: the channel's id for it (a message id, a gateway's event id): the
        same reference delivered again returns the first event and writes nothing. Refused for
        an unknown interaction, and for one that has ended (its story is closed)."""
        if kind not in PROGRESS_KINDS:
            allowed = ", ".join(sorted(PROGRESS_KINDS))
            raise InvalidField("kind", f"{kind!r} is not an interaction's progress; use {allowed}")
        if reference is not None:
            payload = {**payload, "reference": reference}
        events = Events()
        async with pg.transaction(self._pool) as connection:
            state = await connection.fetchval(LOCK_INTERACTION, interaction_id)
            if state is None:
                raise InteractionNotFound(f"no interaction with id {interaction_id}")
            if InteractionState(state) in TERMINAL_STATES:
                raise IllegalTransition(f"interaction {interaction_id} is {state} already")
            if reference is not None:
                earlier = await connection.fetchrow(
                    EARLIER_EVENT, str(interaction_id), kind, reference
                )
                if earlier is not None:
                    return EventRecord(**earlier), False
            events.add(
                kind,
                subject_type="interaction",
                subject_id=interaction_id,
                actor=actor,
                payload=payload,
            )
            await events.write(connection)
        self._hub.publish(events.written)
        return events.written[0], True


async def insert(connection: asyncpg.Connection, arrival: Arrival) -> Inserted | None:
    """The arrival written queued, with its `interaction.queued` event (committed: one
    statement); None for a reference a concurrent delivery wrote first."""
    row = await connection.fetchrow(INSERT, *arrival.arguments())
    if row is None:
        return None
    interaction = dict(row)
    return Inserted(interaction, arrival.queued_event(interaction.pop("queued_event_id")))


async def _delivered_before(
    connection: asyncpg.Connection, data: InteractionCreate, found: identify.Found
) -> InteractionReceived:
    """What a reference delivered before became, if this delivery asks for the same (else
    409): the comparison costs only this path, never a first delivery."""
    earlier = await _read(connection, BY_ID, found.existing_id)
    same_queue = found.queue_id == earlier["queue_id"]
    needs = (
        identify.needs_of(found.queue_needs, identify.requested(data.skills, found.skills))
        if same_queue
        else None
    )
    identify.ensure_as_delivered(
        data, earlier, queue_id=found.queue_id, customer_id=found.customer_id, needs=needs
    )
    return InteractionReceived.model_validate(earlier)


async def _won_the_race(connection: asyncpg.Connection, arrival: Arrival) -> InteractionReceived:
    """What a concurrent delivery of the same reference wrote first, if it asked for the same
    as this one (else 409)."""
    data = arrival.data
    assert data.external_ref is not None
    earlier = await _read(connection, BY_REFERENCE, data.channel.value, data.external_ref)
    identify.ensure_as_delivered(
        data,
        earlier,
        queue_id=arrival.queue_id,
        customer_id=arrival.customer_id,
        needs=arrival.needs if arrival.queue_id == earlier["queue_id"] else None,
    )
    return InteractionReceived.model_validate(earlier)


async def _read(connection: asyncpg.Connection, query: str, *args: object) -> dict[str, Any]:
    row = await connection.fetchrow(query, *args)
    assert row is not None, "an interaction seen by its reference is never deleted"
    return dict(row)
