"""The matcher: one pass at a time across every replica, each a short transaction.

A pass takes a PostgreSQL advisory lock (so replicas take turns), times out late offers, reads
the waiting interactions and the routable agents with what they hold, asks the pure policy for
the best pairs, and writes the offers and their events. It commits, and the event hub on every
replica carries each offer to the agent's socket. DESIGN.md section 3 lists the rules it keeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.dialects.postgresql import JSONB, distinct_on
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.channels import Channel
from app.core.db import unit_of_work
from app.core.events import SYSTEM_ACTOR, Event
from app.core.hub import EventHub, EventRecord, Subscription
from app.core.logging import get_logger
from app.customers.models import Customer
from app.interactions.models import Interaction, InteractionState, Offer, OfferState
from app.queues.models import Queue
from app.routing import policy, service

log = get_logger(__name__)

MATCHER_LOCK_KEY = 7_2026_11_29
WAITING_LIMIT = 5000
# Events after which a pass may find new pairs: work arrived, or an agent has room again.
WAKING_KINDS = frozenset(
    {
        "interaction.queued",
        "interaction.completed",
        "interaction.wrap_up",
        "interaction.transferred_out",
        "interaction.abandoned",
        "agent.state_changed",
        "agent.updated",
        "agent.skills_changed",
    }
)


# Changes of state that free no capacity; waking a pass for them is work for nothing.
NON_FREEING_STATES = frozenset({"busy", "away", "offline"})


def may_find_new_pairs(event: EventRecord) -> bool:
    if event.kind not in WAKING_KINDS:
        return False
    return not (
        event.kind == "agent.state_changed" and event.payload.get("to") in NON_FREEING_STATES
    )


@dataclass(frozen=True, slots=True)
class PassResult:
    offers: int
    timed_out: int


def now() -> datetime:
    return datetime.now(UTC)


def _rules(queue: Queue) -> policy.QueueRules:
    steps = tuple(
        policy.RelaxationStep(
            after_seconds=float(s["after_seconds"]), level_cap=int(s["level_cap"])
        )
        for s in queue.relaxation_steps
    )
    return policy.QueueRules(
        queue_id=queue.id,
        tier_weights={k: float(v) for k, v in queue.tier_weights.items()},
        aging_factor=queue.aging_factor,
        relaxation=steps,
        sticky_seconds=float(queue.sticky_seconds),
    )


async def _waiting(session: AsyncSession, *, sticky: bool) -> list[policy.WaitingInteraction]:
    rows = (
        await session.execute(
            select(
                Interaction.id,
                Interaction.channel,
                Interaction.queue_id,
                Interaction.priority,
                Interaction.waiting_since,
                Interaction.needs,
                Interaction.customer_id,
                Customer.tier,
            )
            .join(Customer, Customer.id == Interaction.customer_id)
            .where(Interaction.state == InteractionState.queued)
            .order_by(Interaction.waiting_since)
            .limit(WAITING_LIMIT)
        )
    ).all()
    if not rows:
        return []
    ids = [row.id for row in rows]
    excluded: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    refused = await session.execute(
        select(Offer.interaction_id, Offer.agent_id).where(
            Offer.interaction_id.in_(ids),
            Offer.state.in_((OfferState.rejected, OfferState.timed_out)),
        )
    )
    for interaction_id, agent_id in refused:
        excluded[interaction_id].add(agent_id)
    # Only sticky queues need each customer's last agent: skip the query when none is.
    last = await _last_agents(session, {row.customer_id for row in rows}) if sticky else {}
    return [
        policy.WaitingInteraction(
            id=row.id,
            channel=Channel(row.channel),
            queue_id=row.queue_id,
            priority=row.priority,
            tier=row.tier.value,
            waiting_since=row.waiting_since,
            needs=tuple(policy.SkillNeed(n["skill"], int(n["level"])) for n in row.needs),
            last_agent_id=last.get(row.customer_id, (None, None))[0],
            last_agent_at=last.get(row.customer_id, (None, None))[1],
            excluded_agents=frozenset(excluded[row.id]),
        )
        for row in rows
    ]


async def _last_agents(
    session: AsyncSession, customer_ids: set[uuid.UUID]
) -> dict[uuid.UUID, tuple[uuid.UUID, datetime]]:
    rows = await session.execute(
        select(Interaction.customer_id, Interaction.agent_id, Interaction.assigned_at)
        .where(
            Interaction.customer_id.in_(customer_ids),
            Interaction.agent_id.is_not(None),
            Interaction.assigned_at.is_not(None),
        )
        .order_by(Interaction.customer_id, Interaction.assigned_at.desc())
        .ext(distinct_on(Interaction.customer_id))
    )
    return {c: (a, at) for c, a, at in rows if a is not None and at is not None}


# Every routable agent with room on some channel, its skills and what it holds, in one read:
# a pass runs many times a second, and 500 agents as ORM objects cost more than the pass itself.
ROUTABLE_AGENTS = text(
    """
    WITH held AS (
        SELECT agent_id, channel FROM offers WHERE state = 'pending'
        UNION ALL
        SELECT agent_id, channel FROM interactions
        WHERE state IN ('assigned', 'wrap_up') AND agent_id IS NOT NULL
    ), loads AS (
        SELECT agent_id,
               count(*) FILTER (WHERE channel IN ('voice', 'callback')) AS voice,
               count(*) FILTER (WHERE channel = 'chat') AS chat,
               count(*) FILTER (WHERE channel = 'email') AS email
        FROM held GROUP BY agent_id
    ), levels AS (
        SELECT s.agent_id, jsonb_object_agg(k.name, s.proficiency) AS skills
        FROM agent_skills s JOIN skills k ON k.id = s.skill_id
        GROUP BY s.agent_id
    )
    SELECT a.id, a.capacity_voice, a.capacity_chat, a.capacity_email, a.idle_since,
           a.state = 'wrap_up' AS in_wrap_up,
           coalesce(l.voice, 0) AS voice, coalesce(l.chat, 0) AS chat,
           coalesce(l.email, 0) AS email, coalesce(v.skills, '{}'::jsonb) AS skills
    FROM agents a
    JOIN users u ON u.id = a.user_id
    LEFT JOIN loads l ON l.agent_id = a.id
    LEFT JOIN levels v ON v.agent_id = a.id
    WHERE a.state IN ('available', 'busy', 'wrap_up')
      AND u.is_active
      AND a.last_seen_at > now() - CAST(:silence AS interval)
      AND (coalesce(l.voice, 0) < a.capacity_voice
           OR coalesce(l.chat, 0) < a.capacity_chat
           OR coalesce(l.email, 0) < a.capacity_email)
    """
).columns(skills=JSONB)


async def _agents(session: AsyncSession, silence: timedelta) -> list[policy.AvailableAgent]:
    rows = await session.execute(ROUTABLE_AGENTS, {"silence": silence})
    return [
        policy.AvailableAgent(
            id=row.id,
            skills=row.skills,
            capacity=policy.Capacity(row.capacity_voice, row.capacity_chat, row.capacity_email),
            load=policy.Load(row.voice, row.chat, row.email),
            idle_since=row.idle_since,
            in_wrap_up=row.in_wrap_up,
        )
        for row in rows
    ]


async def run_pass(
    session: AsyncSession, *, silence: timedelta, sweep: bool, timeouts: bool = True
) -> PassResult:
    """One matcher pass inside the caller's transaction (commit makes its offers real).

    `timeouts` ends overdue offers first; the loop asks for it once a tick rather than on every
    pass, as a deadline a fraction of a tick late changes nothing and the query is not free.
    """
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MATCHER_LOCK_KEY})
    timed_out = await service.time_out_offers(session) if timeouts else 0
    if sweep:
        await service.sweep_silent_agents(session, silence=silence)
        await service.end_overdue_wrap_ups(session)
    queues = {q.id: q for q in (await session.execute(select(Queue))).scalars()}
    waiting = await _waiting(session, sticky=any(q.sticky_seconds > 0 for q in queues.values()))
    if not waiting:
        return PassResult(offers=0, timed_out=timed_out)
    agents = await _agents(session, silence)
    if not agents:
        return PassResult(offers=0, timed_out=timed_out)
    rules = {queue_id: _rules(queue) for queue_id, queue in queues.items()}
    moment = now()
    matches = policy.match(waiting, agents, rules, moment)
    offered = await _write_offers(session, matches, waiting, queues, moment)
    return PassResult(offers=offered, timed_out=timed_out)


async def _write_offers(
    session: AsyncSession,
    matches: Sequence[policy.Match],
    waiting: Sequence[policy.WaitingInteraction],
    queues: dict[uuid.UUID, Queue],
    moment: datetime,
) -> int:
    if not matches:
        return 0
    # Only interactions still queued are offered: one may have been abandoned meanwhile.
    claimed = set(
        (
            await session.execute(
                update(Interaction)
                .where(
                    Interaction.id.in_([m.interaction_id for m in matches]),
                    Interaction.state == InteractionState.queued,
                )
                .values(state=InteractionState.offered, offered_at=moment)
                .returning(Interaction.id)
            )
        ).scalars()
    )
    by_id = {item.id: item for item in waiting}
    offers: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for match in matches:
        if match.interaction_id not in claimed:
            continue
        item = by_id[match.interaction_id]
        offer = _offer_row(match, item, queues[item.queue_id], moment)
        offers.append(offer)
        events.append(_offer_event(match, item, offer))
    if offers:
        await session.execute(insert(Offer), offers)
        await session.execute(insert(Event), events)
    return len(offers)


def _offer_row(
    match: policy.Match, item: policy.WaitingInteraction, queue: Queue, moment: datetime
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "interaction_id": match.interaction_id,
        "agent_id": match.agent_id,
        "channel": item.channel,
        "state": OfferState.pending,
        "created_at": moment,
        "deadline": moment + timedelta(seconds=queue.offer_timeout_seconds),
        "reason": match.reason[:300],
        "matched": {
            "skills": dict(match.matched_skills),
            "effective_priority": match.effective_priority,
        },
    }


def _offer_event(
    match: policy.Match, item: policy.WaitingInteraction, offer: dict[str, Any]
) -> dict[str, Any]:
    return {
        "kind": "interaction.offered",
        "subject_type": "interaction",
        "subject_id": str(match.interaction_id),
        "actor": SYSTEM_ACTOR,
        "occurred_at": offer["created_at"],
        "payload": {
            "from": "queued",
            "offer_id": str(offer["id"]),
            "agent_id": str(match.agent_id),
            "channel": item.channel.value,
            "queue_id": str(item.queue_id),
            "deadline": offer["deadline"].isoformat(),
            "reason": match.reason,
            "matched_skills": dict(match.matched_skills),
            "effective_priority": match.effective_priority,
        },
    }


class Matcher:
    """Runs passes in the background: on every waking event, and on a tick for timeouts/aging."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        hub: EventHub,
        *,
        tick: float,
        silence: timedelta,
        sweep_every: float = 1.0,
    ) -> None:
        self._sessions = sessions
        self._hub = hub
        self._tick = tick
        self._silence = silence
        self._sweep_every = sweep_every
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._last_sweep = 0.0
        self._last_timeouts = 0.0
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        subscription = self._hub.subscribe(may_find_new_pairs)
        self._listener = asyncio.create_task(self._listen(subscription), name="matcher-wake")
        self._task = asyncio.create_task(self._run(), name="matcher")

    async def stop(self) -> None:
        self._stopping = True
        tasks = [task for task in (self._listener, self._task) if task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            # A cancel that lands inside a database call can come back as a database error;
            # the flag ends the loop then, and the timeout keeps shutdown bounded regardless.
            await asyncio.wait(tasks, timeout=5)

    async def _listen(self, subscription: Subscription) -> None:
        """Any waking event wakes a pass; a pass reads everything, so missed events cost nothing."""
        while True:
            if subscription.overflowed.is_set():
                while not subscription.queue.empty():
                    subscription.queue.get_nowait()
                subscription.overflowed.clear()
                self._wake.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(subscription.queue.get(), timeout=1.0)
                self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._tick)
            self._wake.clear()
            started = loop.time()
            sweep = started - self._last_sweep >= self._sweep_every
            timeouts = started - self._last_timeouts >= self._tick
            try:
                async with unit_of_work(self._sessions) as session:
                    await run_pass(session, silence=self._silence, sweep=sweep, timeouts=timeouts)
                if sweep:
                    self._last_sweep = started
                if timeouts:
                    self._last_timeouts = started
            except Exception as error:  # a failed pass is retried on the next tick
                if self._stopping:
                    return
                log.exception("matcher pass failed", error=repr(error))
                await asyncio.sleep(0.2)
