"""What happens on the customer's line, as routing carries it out: the caller hangs up while
waiting or during the talk, turns the wait into a callback, or the agent's leg of a call never
answers. The live call service (app/ivr) calls these when the gateway reports the line's
events; `POST /v1/interactions/{id}/abandon` calls `abandon_waiting`, for any channel.

Each works inside the caller's transaction and adds its events to the caller's `Events`; each
raises IllegalTransition, naming the state it found, when the interaction is not in a state it
applies to, so that a gateway's repeated event can be taken as done. Whoever commits then
publishes the events (`EventHub.publish`) and wakes the matcher (`Matcher.wake`, as the desk
does after every action): each frees capacity or brings work back, and the published events
also wake the leading matcher wherever it runs (`matcher.WAKING_KINDS`).

Lock order, as everywhere (app/routing/agent_states.py): the agent, then the interaction, then
the offer. The two that end a wait lock no agent: a pending offer's agent counts its load from
the offer rows, which the withdrawal ends.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from app.core.errors import IllegalTransition
from app.core.events import Events
from app.core.pg import now
from app.interactions.lifecycle import ensure_can_move
from app.interactions.models import InteractionState
from app.interactions.service import InteractionNotFound
from app.routing.agent_states import lock_agent, missed_offer, refresh_agent_state
from app.routing.decisions import end_handling
from app.routing.holdings import moved, offer_ended

S = InteractionState

# The withdrawn offer's reason, which the agent's desk shows (`offer_withdrawn`).
ABANDONED = "customer abandoned"
CONVERTED = "customer asked for a callback"
# The talk's end, in its `interaction.wrap_up` (or `.completed`) event.
HUNG_UP = "the caller hung up"

ENDING_A_WAIT = {S.abandoned: "abandon it", S.converted: "convert it to a callback"}

LOCK_WAITING = """
    SELECT state, waiting_since, queue_id, channel FROM interactions WHERE id = $1
    FOR NO KEY UPDATE
"""

# A wait ends (the interaction locked by the caller): its pending offer, if any, is withdrawn
# and the interaction ends in $3. Returns the withdrawn offer, if there was one.
END_WAIT = """
    WITH withdrawn AS (
        UPDATE offers SET state = 'withdrawn', decided_at = $2, reason = $4
        WHERE interaction_id = $1 AND state = 'pending'
        RETURNING id, agent_id
    ), ended AS (
        UPDATE interactions SET state = $3, ended_at = $2, updated_at = $2 WHERE id = $1
    )
    SELECT id, agent_id FROM withdrawn
"""


async def abandon_waiting(
    connection: asyncpg.Connection, events: Events, interaction_id: uuid.UUID, *, actor: str
) -> None:
    """The customer left while waiting (queued) or while being offered (offered): the
    interaction is `abandoned`, its event carries `waited_seconds` (from `waiting_since` to
    now), and a pending offer is withdrawn: the agent's room is free again, and its desk is
    told (`offer_withdrawn`, "customer abandoned"). IllegalTransition otherwise (a caller who
    hangs up during the talk: `end_talk`).

    The caller commits, publishes the events and wakes the matcher: the withdrawn offer's
    room may serve waiting work."""
    await _end_wait(connection, events, interaction_id, S.abandoned, ABANDONED, actor=actor)


async def convert_to_callback(
    connection: asyncpg.Connection, events: Events, interaction_id: uuid.UUID, *, actor: str
) -> datetime:
    """The caller waiting (queued, or offered) chose a callback instead: the call ends
    `converted` (neither answered nor abandoned; its event carries `waited_seconds`), a pending
    offer is withdrawn as for an abandon ("customer asked for a callback"). Returns the call's
    `waiting_since`: the callback that replaces it (raised through intake by the caller) waits
    from then, and so keeps the call's place. IllegalTransition when the call is not waiting.

    The caller commits, publishes the events and wakes the matcher, as for an abandon."""
    return await _end_wait(connection, events, interaction_id, S.converted, CONVERTED, actor=actor)


async def _end_wait(
    connection: asyncpg.Connection,
    events: Events,
    interaction_id: uuid.UUID,
    target: InteractionState,
    reason: str,
    *,
    actor: str,
) -> datetime:
    """A waiting interaction ends in `target` (`reason`: its withdrawn offer's); returns its
    `waiting_since`."""
    row = await connection.fetchrow(LOCK_WAITING, interaction_id)
    if row is None:
        raise InteractionNotFound(f"no interaction with id {interaction_id}")
    source = S(row["state"])
    waiting_since: datetime = row["waiting_since"]
    ensure_can_move(source, target, what=ENDING_A_WAIT[target])
    moment = now()
    withdrawn = await connection.fetchrow(END_WAIT, interaction_id, moment, target.value, reason)
    if withdrawn is not None:
        offer_ended(
            events,
            withdrawn["id"],
            "withdrawn",
            interaction_id,
            withdrawn["agent_id"],
            reason,
            actor,
        )
    moved(events, interaction_id, source, target, None, actor, wait_ended(row, moment))
    return waiting_since


def wait_ended(row: asyncpg.Record, moment: datetime) -> dict[str, object]:
    """What the event of a wait that ended says of it, for the figures (docs/metrics.md):
    whose line it left and how long it waited there."""
    waited = max(0.0, (moment - row["waiting_since"]).total_seconds())
    return {
        "queue_id": str(row["queue_id"]),
        "channel": row["channel"],
        "waited_seconds": round(waited, 3),
    }


# The interaction (locked) with the queue's word on a missed offer.
LOCK_HELD = """
    SELECT i.state, i.agent_id, q.away_on_missed_offer
    FROM interactions i JOIN queues q ON q.id = i.queue_id
    WHERE i.id = $1
    FOR NO KEY UPDATE OF i
"""

# The call goes back to its queue, its `waiting_since` (its place) untouched, answered by
# nobody; the agent's accepted offer of it is missed (`timed_out`): the agent is not offered
# this interaction again. Returns that offer, if there was one.
UNANSWERED = """
    WITH missed AS (
        UPDATE offers SET state = 'timed_out', decided_at = $3, reason = $4
        WHERE id = (
            SELECT id FROM offers
            WHERE interaction_id = $1 AND agent_id = $2 AND state = 'accepted'
            ORDER BY decided_at DESC LIMIT 1
        )
        RETURNING id
    ), requeued AS (
        UPDATE interactions SET state = 'queued', agent_id = NULL, assigned_at = NULL,
                                updated_at = $3
        WHERE id = $1
    )
    SELECT id FROM missed
"""


async def return_unanswered(
    connection: asyncpg.Connection,
    events: Events,
    interaction_id: uuid.UUID,
    *,
    agent_id: uuid.UUID,
    actor: str,
    reason: str,
) -> None:
    """The agent accepted the call, but its phone never answered (`reason`: busy, no-answer,
    failed, as the gateway said it): the call is `queued` again with its `waiting_since` kept
    (its place in line), held by nobody, and the agent has missed the offer: its accepted offer
    ends `timed_out` (so the agent is not offered this call again; its desk is told,
    `offer_withdrawn`), it goes away when the queue says so (`missed_offer`, as for an offer
    that timed out), and otherwise its state follows what it still holds (available, usually).
    IllegalTransition when the call is not assigned to this agent (a repeated event: it was
    returned already, or another agent has it now).

    The caller commits, publishes the events and wakes the matcher: the call waits again."""
    agent = await lock_agent(connection, agent_id)
    row = await connection.fetchrow(LOCK_HELD, interaction_id)
    if row is None:
        raise InteractionNotFound(f"no interaction with id {interaction_id}")
    source = S(row["state"])
    if source is not S.assigned or row["agent_id"] != agent_id:
        held = " by another agent" if source is S.assigned else ""
        raise IllegalTransition(
            f"cannot return it to the queue unanswered: the interaction is {source.value}{held},"
            " not assigned to this agent"
        )
    missed = await connection.fetchval(UNANSWERED, interaction_id, agent_id, now(), reason[:300])
    extra: dict[str, object] = {"from_agent_id": str(agent_id), "reason": reason}
    if missed is not None:
        offer_ended(events, missed, "timed_out", interaction_id, agent_id, reason, actor)
        extra["offer_id"] = str(missed)
    moved(events, interaction_id, S.assigned, S.queued, None, actor, extra)
    agent = await missed_offer(
        connection, events, agent, sends_away=row["away_on_missed_offer"], actor=actor
    )
    await refresh_agent_state(connection, events, agent, actor=actor)


async def end_talk(
    connection: asyncpg.Connection,
    events: Events,
    interaction_id: uuid.UUID,
    *,
    actor: str,
    reason: str = HUNG_UP,
) -> None:
    """The caller hung up during the talk (a chat's customer left: `reason` says which, for
    the agent): the talk ends as when the agent completes it
    (`decisions.end_handling`, one home): `wrap_up` when the queue has a wrap-up time, the
    agent then in wrap-up, and `completed` at once, the agent free, when it has none. No
    disposition yet: the agent's wrap-up is for that. IllegalTransition when the interaction
    is not assigned (the agent completed it already, or it never was).

    The caller commits, publishes the events and wakes the matcher: in a queue without wrap-up
    the agent is free at once, and the wrap-up's end frees it later."""
    row = await connection.fetchrow(
        "SELECT state, agent_id FROM interactions WHERE id = $1", interaction_id
    )
    if row is None:
        raise InteractionNotFound(f"no interaction with id {interaction_id}")
    ensure_can_move(S(row["state"]), S.wrap_up, what="end its talk")
    ended = await end_handling(
        connection,
        events,
        interaction_id,
        agent_id=row["agent_id"],
        actor=actor,
        disposition=None,
        notes="",
        extra={"reason": reason},
    )
    if ended is None:  # the agent completed it, or it moved, since it was read
        state = await connection.fetchval(
            "SELECT state FROM interactions WHERE id = $1", interaction_id
        )
        ensure_can_move(S(state), S.wrap_up, what="end its talk")
        raise IllegalTransition("the interaction changed while its talk was being ended; retry")
