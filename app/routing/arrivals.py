"""Arrivals offered as they come in: the new interaction and its offer in one statement.

At a light load most interactions arrive to find agents free and nothing else waiting. Queued
for the matcher, each waits for a wake, a pass's reads and a pass's write (two round trips and
a commit more than its own insert) before its offer is on its way. Here, on the replica whose
matcher leads, the policy picks the arrival's agent while the request is in hand, from the
agents the matcher's directory keeps and against the work its last pass left waiting, and
intake's insert writes the offer too (`PLACE`). Intake calls this through its `Placer`
protocol; anything this cannot place is queued as before, and the matcher woken.

Why the rules of DESIGN.md section 3 still hold:

- **One agent per interaction, never over capacity.** `PLACE` takes the agent's row lock and
  writes the offer only while the row is as the directory read it, as a pass's write does
  (app/routing/matcher.py, `NEXT_VERSION`): every offer's write moves the row's `routing_version`
  under that lock, so of two writers that counted on the same room only the first lands.
- **Highest effective priority first.** The policy weighs the arrival against everything the
  last pass left waiting, and `PLACE` offers it only while nothing else is queued that this
  pass did not know of. Otherwise it is queued like any other.
- **Longest idle, best proficiency, sticky agent.** It is the policy's own choice: with nothing
  else waiting, the arrival's turn in a `policy.Standing` of the agents as the directory last
  read them, in which every arrival matched since has taken its agent (so the pools are built
  once per read of the agents, not once per arrival); else one `policy.match` over what waits
  and the arrival. An agent whose row moved since it was read is not written to: the arrival
  then waits for a pass, which reads it afresh.

Under load this steps aside, because a pass matches a batch for less than one locked write per
arrival: while more than `ARRIVING_LIMIT` other arrivals are under way, while the last pass left
more than `LEFT_LIMIT` waiting, or while an arrival queued here waits for the next pass to read
it (`Matcher.arrival_view`), arrivals are queued, and the matcher woken, as before.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import asyncpg

from app.core.events import SYSTEM_ACTOR
from app.core.hub import EventRecord
from app.interactions import intake
from app.interactions.schemas import InteractionOut
from app.routing import policy, screen_pop
from app.routing.directory import ArrivalStanding
from app.routing.matcher import (
    NEXT_VERSION,
    ArrivalView,
    Matcher,
    NewOffer,
    new_offer,
    offered_event,
)

LEFT_LIMIT = 32
ARRIVING_LIMIT = 4  # other arrivals under way, beyond which this one queues

_OFFERED = "CASE WHEN EXISTS (SELECT FROM placed) THEN 'offered' ELSE 'queued' END"

# $1-$12: intake's new row (`NewInteraction.arguments`); $13, $14: the agent and its row as
# read; $15: what the last pass left waiting; $16-$19: the offer; $20, $21: the offer's event.
# Both events go in one insert, in log order. The pop is read from the statement's snapshot,
# which holds the customer's history but not this interaction (it is `i`, the new row).
PLACE = f"""
    WITH placed AS (
        UPDATE agents a SET routing_version = {NEXT_VERSION}
        FROM users u
        WHERE a.id = $13 AND a.routing_version = $14
          AND a.state IN ('available', 'busy', 'wrap_up')
          AND u.id = a.user_id AND u.is_active
          AND NOT EXISTS (
              SELECT FROM interactions q WHERE q.state = 'queued' AND q.id <> ALL($15::uuid[])
          )
        RETURNING a.id, a.routing_version
    ), {intake.NEW_ROW.format(state=_OFFERED)}, offered AS (
        INSERT INTO offers (id, interaction_id, agent_id, channel, state, created_at, deadline,
                            reason, matched)
        SELECT $16, new.id, placed.id, new.channel, 'pending', $10, $17, $18, $19::text::jsonb
        FROM new CROSS JOIN placed
        RETURNING interaction_id
    ), logged AS (
        INSERT INTO events AS e (occurred_at, kind, subject_type, subject_id, actor, payload)
        SELECT $10, n.kind, 'interaction', new.id::text, n.actor, n.payload::jsonb
        FROM new CROSS JOIN (
            VALUES (1, 'interaction.queued', $11, $12), (2, 'interaction.offered', $20, $21)
        ) AS n(ord, kind, actor, payload)
        WHERE n.ord = 1 OR EXISTS (SELECT FROM offered)
        ORDER BY n.ord
        RETURNING e.id, e.kind
    )
    SELECT i.*, placed.routing_version AS agent_version,
           (SELECT id FROM logged WHERE kind = 'interaction.queued') AS queued_event_id,
           (SELECT id FROM logged WHERE kind = 'interaction.offered') AS offered_event_id,
           {screen_pop.COLUMNS}
    FROM new i LEFT JOIN placed ON true {screen_pop.JOINS}
"""  # noqa: S608 - constants only, no outside text


@dataclass(frozen=True, slots=True)
class Proposal:
    offer: NewOffer
    agent_read: int  # the agent row's `routing_version` the policy's choice was made on
    known: list[uuid.UUID]  # the waiting work the policy weighed the arrival against
    standing: ArrivalStanding | None = None  # the standing that chose, if one did


class Arrivals:
    """Intake's `Placer` on this replica: offers arrivals at once while its matcher leads."""

    def __init__(self, matcher: Matcher) -> None:
        self._matcher = matcher
        self._in_flight: set[uuid.UUID] = set()  # agents of placements under way
        self._arriving = 0  # inserts under way, placed or not

    async def insert(
        self, connection: asyncpg.Connection, new: intake.NewInteraction
    ) -> intake.Inserted | None:
        self._arriving += 1
        try:
            return await self._insert(connection, new)
        finally:
            self._arriving -= 1

    async def _insert(
        self, connection: asyncpg.Connection, new: intake.NewInteraction
    ) -> intake.Inserted | None:
        view = self._matcher.arrival_view(new.queues_version)
        proposal = None if view is None else self._propose(view, new)
        if view is None or proposal is None:
            inserted = await intake.insert(connection, new)
            if inserted is not None:
                self._matcher.wake(queued=new.id)
            return inserted
        agent_id = proposal.offer.match.agent_id
        self._in_flight.add(agent_id)
        try:
            placed = await place(connection, new, proposal)
        finally:
            self._in_flight.discard(agent_id)
        if placed is None:
            return None
        inserted, version = placed
        self._settle(view, new, proposal, version)
        return inserted

    def _settle(
        self,
        view: ArrivalView,
        new: intake.NewInteraction,
        proposal: Proposal,
        version: int | None,
    ) -> None:
        """Tell the matcher, the directory and the standing what the placement wrote."""
        agent_id, standing = proposal.offer.match.agent_id, proposal.standing
        if version is None:  # the agent's row moved, or other work waits: a pass decides
            if standing is not None:
                standing.set_aside(agent_id)
            self._matcher.wake(queued=new.id)
            return
        self._matcher.placed(new.id)
        view.directory.offered(agent_id, [new.data.channel], proposal.agent_read, version)
        if standing is not None:
            standing.landed(agent_id, proposal.agent_read, version)

    def _propose(self, view: ArrivalView, new: intake.NewInteraction) -> Proposal | None:
        if (
            new.tier is None
            or len(view.left) > LEFT_LIMIT
            or self._arriving - 1 > ARRIVING_LIMIT  # others than this one
            or new.queue_id not in view.queues
        ):
            return None
        # An agent with a placement under way is passed over: its row moves when that lands.
        item = waiting_item(new, excluded=frozenset(self._in_flight))
        rules = {queue_id: queue.rules for queue_id, queue in view.queues.items()}
        if view.left:  # weighed against what waits: a pass of its own over all of it
            waiting = [*view.left, item]
            agents = view.directory.kept(
                view.silence, any_of=policy.skills_any_of(waiting, rules, new.moment)
            )
            matches = policy.match(waiting, agents, rules, new.moment)
            match = next((m for m in matches if m.interaction_id == new.id), None)
            standing = None
        else:  # nothing else waits: its turn in the standing kept since the last read
            standing = view.directory.standing(view.silence)
            match = standing.policy.serve(item, rules, new.moment)
        if match is None:
            return None
        # The version the chosen agent's load was read with: the offer lands only on that row.
        agent_read = (
            view.directory.version_read(match.agent_id)
            if standing is None
            else standing.version(match.agent_id)
        )
        return Proposal(
            offer=new_offer(match, item, view.queues, new.moment),
            agent_read=agent_read,
            known=[left.id for left in view.left],
            standing=standing,
        )


def waiting_item(
    new: intake.NewInteraction, *, excluded: frozenset[uuid.UUID] = frozenset()
) -> policy.WaitingInteraction:
    assert new.tier is not None
    return policy.WaitingInteraction(
        id=new.id,
        channel=new.data.channel,
        queue_id=new.queue_id,
        priority=new.data.priority,
        tier=new.tier,
        waiting_since=new.moment,
        needs=tuple(policy.SkillNeed(n["skill"], int(n["level"])) for n in new.needs),
        last_agent_id=new.last_agent_id,
        last_agent_at=new.last_agent_at,
        excluded_agents=excluded,
    )


async def place(
    connection: asyncpg.Connection, new: intake.NewInteraction, proposal: Proposal
) -> tuple[intake.Inserted, int | None] | None:
    """The arrival as written, and the agent row's new version if it was offered; None for a
    known reference (a concurrent delivery of it won)."""
    offer = proposal.offer
    payload = offer.event_payload()
    row = await connection.fetchrow(
        PLACE,
        *new.arguments(),
        offer.match.agent_id,
        proposal.agent_read,
        proposal.known,
        offer.id,
        offer.deadline,
        offer.reason,
        offer.matched(),
        SYSTEM_ACTOR,
        json.dumps(payload),
    )
    if row is None:
        return None
    events: list[EventRecord] = [new.queued_event(row["queued_event_id"])]
    offered_to = None
    if row["offered_event_id"] is not None:
        events.append(offered_event(row["offered_event_id"], new.moment, payload, row))
        offered_to = offer.match.agent_id
    inserted = intake.Inserted(InteractionOut.model_validate(dict(row)), events, offered_to)
    return inserted, row["agent_version"]
