"""After the run, from the database alone: were DESIGN.md's routing rules kept?

The event log is replayed in id order. That order is sound for these checks: a transaction that
reads another's effects runs after that one committed, and an id is handed out at insert, before
the commit, so whatever a matcher pass saw has lower ids than the offers it wrote.

- double offers (rule 1): an `interaction.offered` while the interaction still has a pending
  offer; cross-checked on the offers table (two offers of one interaction whose pending intervals
  overlap, or two accepted offers of one interaction).
- over capacity (rule 2): after an offer or an assignment, the agent holds more than its capacity
  on a channel (pending offers + assigned/wrap-up interactions; callback counts as voice), or a
  call together with chats.
- lost (rule 3): an interaction in no known state, an accepted POST whose reference is not in the
  database, an interaction with more than one terminal event, or a table state that disagrees
  with the state its events replay to.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

KNOWN_STATES = frozenset(
    {
        "queued",
        "offered",
        "assigned",
        "wrap_up",
        "completed",
        "abandoned",
        "transferred_out",
        "expired",
        "converted",
    }
)
TERMINAL = frozenset({"completed", "abandoned", "transferred_out", "expired", "converted"})
OFFER_ENDINGS = frozenset(
    {"offer.accepted", "offer.rejected", "offer.timed_out", "offer.withdrawn"}
)
RELEASING = frozenset(
    {
        "interaction.completed",
        "interaction.abandoned",
        "interaction.transferred_out",
        "interaction.expired",
        "interaction.queued",  # a transfer to another queue
    }
)


def kind_of(channel: str) -> str:
    return "voice" if channel in ("voice", "callback") else channel


@dataclass
class Capacity:
    voice: int
    chat: int
    email: int

    def exceeded_by(self, held: Counter[str]) -> str | None:
        for kind in ("voice", "chat", "email"):
            if held[kind] > getattr(self, kind):
                return kind
        if held["voice"] > 0 and held["chat"] > 0:
            return "call with chats"
        return None


@dataclass
class Report:
    double_offers: int = 0
    over_capacity: int = 0
    lost: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {
            "double_offers": self.double_offers,
            "over_capacity": self.over_capacity,
            "lost": self.lost,
            "details": self.details,
        }


async def check(
    dsn: str, accepted_refs: Iterable[str], delivered_offer_ids: set[str] | None = None
) -> Report:
    connection = await asyncpg.connect(dsn)
    try:
        return await _check(connection, set(accepted_refs), delivered_offer_ids)
    finally:
        await connection.close()


async def _check(
    connection: asyncpg.Connection, accepted_refs: set[str], delivered: set[str] | None
) -> Report:
    capacities = {
        str(row["id"]): Capacity(row["capacity_voice"], row["capacity_chat"], row["capacity_email"])
        for row in await connection.fetch(
            "SELECT id, capacity_voice, capacity_chat, capacity_email FROM agents"
        )
    }
    interactions = {
        str(row["id"]): row
        for row in await connection.fetch(
            "SELECT id, channel, state, external_ref FROM interactions"
        )
    }
    events = await connection.fetch(
        "SELECT id, kind, subject_id, payload::text AS payload FROM events "
        "WHERE kind LIKE 'interaction.%' OR kind LIKE 'offer.%' ORDER BY id"
    )

    report = Report()
    details: dict[str, Any] = {}
    pending: dict[str, str] = {}  # interaction -> its pending offer
    offer_holder: dict[str, tuple[str, str]] = {}  # pending offer -> (agent, kind)
    holding: dict[str, tuple[str, str]] = {}  # assigned/wrap-up interaction -> (agent, kind)
    held: dict[str, Counter[str]] = defaultdict(Counter)
    replayed_state: dict[str, str] = {}
    terminal_events: Counter[str] = Counter()
    over: Counter[str] = Counter()
    orphan_endings = 0
    offered_ids: list[str] = []

    over_sample: list[dict[str, Any]] = []
    recent: dict[str, deque[str]] = defaultdict(lambda: deque(maxlen=12))  # per agent

    def add(agent: str, kind: str, event_id: int) -> None:
        held[agent][kind] += 1
        capacity = capacities.get(agent)
        exceeded = capacity.exceeded_by(held[agent]) if capacity else "unknown agent"
        if exceeded is not None:
            report.over_capacity += 1
            over[exceeded] += 1
            if len(over_sample) < 5:  # what the agent held then, to find the cause
                over_sample.append(
                    {
                        "event_id": event_id,
                        "agent": agent,
                        "exceeded": exceeded,
                        "holding": sorted(i for i, (a, _) in holding.items() if a == agent),
                        "offered": sorted(o for o, (a, _) in offer_holder.items() if a == agent),
                        "recent_events": list(recent[agent]),
                    }
                )

    for event in events:
        kind, subject = event["kind"], event["subject_id"]
        payload = json.loads(event["payload"])
        named = payload.get("agent_id") or payload.get("from_agent_id")
        if named is not None:
            channel = interactions.get(subject, {}).get("channel", "")
            recent[named].append(f"{event['id']} {kind} {subject[:8]} {channel}")
        if kind == "interaction.offered":
            offer_id, agent = payload["offer_id"], payload["agent_id"]
            offered_ids.append(offer_id)
            if subject in pending:
                report.double_offers += 1
            pending[subject] = offer_id
            channel = payload.get("channel") or interactions[subject]["channel"]
            offer_holder[offer_id] = (agent, kind_of(channel))
            add(agent, kind_of(channel), event["id"])
        elif kind in OFFER_ENDINGS:
            interaction = payload.get("interaction_id")
            holder = offer_holder.pop(subject, None)
            if holder is None:
                orphan_endings += 1
            else:
                held[holder[0]][holder[1]] -= 1
            if interaction is not None and pending.get(interaction) == subject:
                del pending[interaction]
        elif kind == "interaction.assigned":
            agent = payload.get("agent_id")
            row = interactions.get(subject)
            if agent is not None and row is not None:
                holding[subject] = (agent, kind_of(row["channel"]))
                add(agent, kind_of(row["channel"]), event["id"])
        if kind in RELEASING and subject in holding:
            agent, channel_kind = holding.pop(subject)
            held[agent][channel_kind] -= 1
        if kind.startswith("interaction."):
            state = kind.removeprefix("interaction.")
            replayed_state[subject] = state
            if state in TERMINAL:
                terminal_events[subject] += 1

    overlapping = await connection.fetchval(
        """
        SELECT count(*) FROM offers a JOIN offers b
          ON a.interaction_id = b.interaction_id AND a.id < b.id
         WHERE a.created_at < coalesce(b.decided_at, 'infinity')
           AND b.created_at < coalesce(a.decided_at, 'infinity')
        """
    )
    accepted_twice = await connection.fetchval(
        "SELECT count(*) FROM (SELECT interaction_id FROM offers WHERE state = 'accepted' "
        "GROUP BY interaction_id HAVING count(*) > 1) twice"
    )
    report.double_offers += int(overlapping) + int(accepted_twice)

    refs_in_db = {row["external_ref"] for row in interactions.values()}
    missing = sorted(accepted_refs - refs_in_db)
    unknown_state = [i for i, row in interactions.items() if row["state"] not in KNOWN_STATES]
    several_endings = [i for i, n in terminal_events.items() if n > 1]
    mismatched = [
        i for i, row in interactions.items() if replayed_state.get(i, "queued") != row["state"]
    ]
    report.lost = len(missing) + len(unknown_state) + len(several_endings) + len(mismatched)

    states = Counter(str(row["state"]) for row in interactions.values())
    details.update(
        interactions=len(interactions),
        states=dict(sorted(states.items())),
        unfinished=sum(n for s, n in states.items() if s not in TERMINAL),
        events_replayed=len(events),
        offers_made=len(offered_ids),
        double_offers_in_replay=report.double_offers - int(overlapping) - int(accepted_twice),
        overlapping_offer_rows=int(overlapping),
        interactions_accepted_twice=int(accepted_twice),
        over_capacity_by_kind=dict(over),
        over_capacity_sample=over_sample,
        missing_refs=len(missing),
        missing_refs_sample=missing[:5],
        unknown_state=len(unknown_state),
        several_terminal_events=len(several_endings),
        state_disagrees_with_events=len(mismatched),
        offer_endings_without_offer=orphan_endings,
        still_pending_offers=len(pending),
    )
    if delivered is not None:
        details["offers_not_delivered_to_desk"] = sum(1 for o in offered_ids if o not in delivered)
    report.details = details
    return report
