"""The queue figures, each defined here once: average handle time (AHT), a caller's position,
the staffed agents, the estimated wait (EWT), and the service of a line (service level, ASA,
abandonment) and an agent's occupancy. docs/metrics.md gives the same definitions
for people; the IVR's wait announcements and the supervisors' figures both read them here.

Each definition is a docstring below, beside the pure function that computes it and the one
statement that reads it from PostgreSQL (asyncpg, on the hot paths' pool: each an index range,
docs/metrics.md says which).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import asyncpg

from app.core.channels import Channel
from app.queues.models import AbandonPolicy
from app.routing import policy
from app.routing.directory import IN_ROUTING, holds_the_skills_of
from app.routing.rules import kind_of
from app.routing.waiting import DUE, EFFECTIVE

# How far back the average handle time looks: long enough that a team of five has dozens of
# handled calls in it, short enough to follow the day (a morning of password resets, an
# afternoon of billing disputes).
AHT_WINDOW = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class HandleTime:
    """An average handle time and how many handled interactions it averages."""

    seconds: float
    handled: int


def same_capacity(channel: Channel) -> tuple[Channel, ...]:
    """The channels that wait for the same agents' capacity as `channel`: a callback is a call
    (it takes the voice capacity), the others stand alone (docs/routing.md, "Capacity")."""
    kind = kind_of(channel)
    return tuple(c for c in Channel if kind_of(c) is kind)


# --- AHT ----------------------------------------------------------------------------------------

AHT = """
    SELECT count(*) AS handled,
           avg(extract(epoch FROM ended_at - assigned_at))::float8 AS seconds
    FROM interactions
    WHERE state = 'completed' AND queue_id = $1 AND channel = ANY($2::text[])
      AND ended_at > $3::timestamptz - $4::interval AND ended_at <= $3::timestamptz
      AND assigned_at IS NOT NULL
"""


async def read_aht(
    connection: asyncpg.Connection,
    queue_id: uuid.UUID,
    channels: Sequence[Channel],
    moment: datetime,
    window: timedelta = AHT_WINDOW,
) -> HandleTime | None:
    """The average handle time (AHT) of a queue on `channels`, at `moment`: None when nothing
    was handled in the window.

    Handle time is one interaction's time with its agent: from its assignment (`assigned_at`:
    the agent accepted the offer) to the end of its wrap-up (`ended_at`; without wrap-up, the
    moment the agent completed it). Talk and after-contact work together, as the agent's
    capacity is held through both. AHT is the mean handle time of the interactions that count:

    - of this queue (the queue they ended in: a transfer's earlier queue does not count them),
      on one of `channels` (one channel for a figure per channel; `same_capacity(channel)` for
      the capacity a waiting caller waits for);
    - `completed`, with their wrap-up over, within the window: `moment - window < ended_at <=
      moment`. Those still in talk or wrap-up count once they end; abandoned, expired,
      transferred-out and converted interactions never count (no handle ran to its end: an
      assigned call the caller hangs up on ends its talk and goes to wrap-up, and counts then).

    Only the last assignment's time counts: an interaction transferred to another queue and
    handled again counts there, from its new assignment.
    """
    row = await connection.fetchrow(AHT, queue_id, [c.value for c in channels], moment, window)
    assert row is not None  # an aggregate: one row
    if not row["handled"]:
        return None
    return HandleTime(seconds=row["seconds"], handled=row["handled"])


# --- position -----------------------------------------------------------------------------------


def position_in_line(
    interaction_id: uuid.UUID,
    waiting: Sequence[policy.WaitingInteraction],
    rules: Mapping[uuid.UUID, policy.QueueRules],
    now: datetime,
) -> int | None:
    """A caller's position: 1 + how many interactions come before it in the policy's order of
    service (`policy.in_line`: the order a matcher pass serves them in) among the waiting
    (`queued`) interactions of its queue that wait for the same capacity (`same_capacity`: a
    call waits behind calls and callbacks, never behind emails, which other capacity serves).
    None when it is not among `waiting` (offered, being served, ended) or its queue has no
    rules.

    It may go up: a platinum caller who arrives after you is served before you (a higher
    effective priority), so announce it through `announced_position`.
    """
    mine = next((item for item in waiting if item.id == interaction_id), None)
    if mine is None or mine.queue_id not in rules:
        return None
    kinds = same_capacity(mine.channel)
    line = [w for w in waiting if w.queue_id == mine.queue_id and w.channel in kinds]
    for place, (_, item, _) in enumerate(policy.in_line(line, rules, now), start=1):
        if item.id == interaction_id:
            return place
    raise AssertionError("in_line keeps every interaction whose queue has rules")


def announced_position(previous: int | None, current: int) -> int:
    """The position to tell a caller who was last told `previous` (None: never told) and now
    stands at `current`: never more than before. A caller who hears "you are third" and then
    "you are fourth" hears the line going backwards; someone served ahead of them (a platinum
    caller) is not news they can use. It catches up once the line passes it."""
    return current if previous is None else min(previous, current)


# The waiting interaction $1 at the moment $2, with how many of its queue's waiting
# interactions of the same capacity come before it in the order of service: the effective
# priority worked out as the matcher's read has it (`waiting.EFFECTIVE`, the policy's formula
# term for term), ties to the longest waiting, then the lowest id (`policy.in_line`). Work held
# back until later (a voicemail's callback before the queue opens) stands ahead of no one.
POSITION = f"""
    WITH me AS (
        SELECT i.id, i.queue_id, i.channel, i.waiting_since, {EFFECTIVE} AS effective,
               CASE WHEN i.channel IN ('voice', 'callback') THEN ARRAY['voice', 'callback']
                    ELSE ARRAY[i.channel::text] END AS kinds
        FROM interactions i
        JOIN customers c ON c.id = i.customer_id
        JOIN queues q ON q.id = i.queue_id
        WHERE i.id = $1 AND i.state = 'queued'
    )
    SELECT me.queue_id, me.channel, 1 + (
        SELECT count(*)
        FROM interactions i
        JOIN customers c ON c.id = i.customer_id
        JOIN queues q ON q.id = i.queue_id
        WHERE i.state = 'queued' AND i.channel = ANY(me.kinds) AND i.queue_id = me.queue_id
          AND (i.not_before IS NULL OR i.not_before <= $2)  -- held back: nobody's ahead yet
          AND ({EFFECTIVE} > me.effective
               OR ({EFFECTIVE} = me.effective
                   AND (i.waiting_since, i.id) < (me.waiting_since, me.id)))
    ) AS position
    FROM me
"""  # noqa: S608 - constants only, no outside text


async def read_position(
    connection: asyncpg.Connection, interaction_id: uuid.UUID, moment: datetime
) -> int | None:
    """`position_in_line` of a waiting interaction at `moment`, read in one statement; None
    when it is not waiting (`queued`)."""
    row = await connection.fetchrow(POSITION, interaction_id, moment)
    return None if row is None else int(row["position"])


# --- staffed agents -----------------------------------------------------------------------------

# Agents in routing (`directory.IN_ROUTING`, whether or not they have room now) with capacity
# for the channel $2's kind, who hold every skill queue $1 requires at its level.
_STAFFED = """
    SELECT count(*)
    {in_routing}
      AND CASE $2::text WHEN 'chat' THEN a.capacity_chat WHEN 'email' THEN a.capacity_email
                        ELSE a.capacity_voice END > 0
      AND {holds_the_skills}
"""
STAFFED = _STAFFED.replace("{in_routing}", IN_ROUTING.format(joins="")).replace(
    "{holds_the_skills}", holds_the_skills_of("$1")
)


async def read_staffed_agents(
    connection: asyncpg.Connection, queue_id: uuid.UUID, channel: Channel
) -> int:
    """The staffed agents of a queue for a channel: agents in routing (`available`, `busy` or
    `wrap_up`, active, their desk connected to a live replica) whose capacity for the
    channel's kind is above 0 and who hold every skill the queue requires at its minimum
    level. Busy and wrapping-up agents count: they are serving the line, and free up within
    a handle time. Away and offline agents do not.

    The queue's required skills as they stand, not as they relax with waiting (an
    interaction's own needs may differ). An agent who serves several queues counts in each.
    """
    count: int = await connection.fetchval(STAFFED, queue_id, kind_of(channel).value)
    return count


# --- estimated wait -----------------------------------------------------------------------------


def estimated_wait(position: int, aht: HandleTime | None, staffed: int) -> timedelta | None:
    """The estimated wait (EWT) of the caller at `position`: position * AHT / staffed agents.
    None when it cannot be told (no handle time in the window, nobody staffed, no position).

    With every agent busy, the staffed agents free up one every AHT / staffed on average, and
    the caller at position k is served at the k-th of those: the expected wait of the k-th in
    line in a queue with N agents and exponential handle times (Erlang's model), where it is
    exact. It is an average: the k-th freeing is itself random (a sum of k waits between
    frees), so a single caller's wait spreads around it, the more so the nearer the front.
    docs/metrics.md reports its error measured on a simulated queue.
    """
    if aht is None or staffed <= 0 or position < 1:
        return None
    return timedelta(seconds=position * aht.seconds / staffed)


@dataclass(frozen=True, slots=True)
class CallerWait:
    """What a waiting caller can be told: their position, and the figures behind the EWT."""

    queue_id: uuid.UUID
    channel: Channel
    position: int
    aht: HandleTime | None
    staffed: int
    estimated: timedelta | None


async def read_caller_wait(
    connection: asyncpg.Connection,
    interaction_id: uuid.UUID,
    moment: datetime,
    window: timedelta = AHT_WINDOW,
) -> CallerWait | None:
    """A waiting interaction's position and estimated wait at `moment` (three statements: the
    position, the AHT of its queue on the channels of its capacity, the staffed agents);
    None when it is not waiting. The caller applies `announced_position` to what it told
    before."""
    row = await connection.fetchrow(POSITION, interaction_id, moment)
    if row is None:
        return None
    queue_id, channel = row["queue_id"], Channel(row["channel"])
    aht = await read_aht(connection, queue_id, same_capacity(channel), moment, window)
    staffed = await read_staffed_agents(connection, queue_id, channel)
    position = int(row["position"])
    return CallerWait(
        queue_id=queue_id,
        channel=channel,
        position=position,
        aht=aht,
        staffed=staffed,
        estimated=estimated_wait(position, aht, staffed),
    )


# --- the line now: waiting, and the longest wait --------------------------------------------------

# What waits in each queue's line at the moment $2, by queue, channel and tier, with the oldest
# `waiting_since`; of the queues $1 (null: every queue). Waiting is `queued` and in line (due:
# routing's `DUE`; a callback booked for when the queue opens is not in line yet), or `offered`
# and not yet accepted: the customer waits until an agent accepts. The queued through their
# partial index (`ix_interactions_waiting`), the offered through the pending offers' (no index
# holds interactions by state, and a scan would grow with the history).
WAITING_NOW = f"""
    SELECT i.queue_id, i.channel, c.tier, count(*)::int AS n, min(i.waiting_since) AS oldest
    FROM interactions i JOIN customers c ON c.id = i.customer_id
    WHERE i.state = 'queued' AND ($1::uuid[] IS NULL OR i.queue_id = ANY($1::uuid[]))
      AND {DUE}
    GROUP BY 1, 2, 3
    UNION ALL
    SELECT i.queue_id, i.channel, c.tier, count(*)::int, min(i.waiting_since)
    FROM offers o
    JOIN interactions i ON i.id = o.interaction_id
    JOIN customers c ON c.id = i.customer_id
    WHERE o.state = 'pending' AND i.state = 'offered'
      AND ($1::uuid[] IS NULL OR i.queue_id = ANY($1::uuid[]))
    GROUP BY 1, 2, 3
"""  # noqa: S608 - constants only, no outside text


def longest_wait(oldest: datetime | None, moment: datetime) -> float | None:
    """The longest wait of a line, in seconds: how long the customer who has waited most (the
    oldest `waiting_since` among `WAITING_NOW`'s) has waited at `moment`; None when nobody
    waits."""
    return None if oldest is None else max(0.0, (moment - oldest).total_seconds())


# --- the service of a line: service level, ASA, abandonment ------------------------------------


class LineEnd(StrEnum):
    """How one wait in a queue's line ends (a wait: from joining the line to leaving it; an
    offer that is rejected or times out leaves the customer waiting, so it ends nothing)."""

    answered = "answered"  # an agent accepted it
    abandoned = "abandoned"  # the customer left (hung up, closed the chat)
    expired = "expired"  # given up while it waited
    transferred = "transferred"  # sent to another queue, or out of the contact center
    converted = "converted"  # a waiting call the caller turned into a callback


@dataclass(frozen=True, slots=True)
class ServiceRules:
    """What a queue's service is measured against: its target answer time, how abandons count
    in its service level, and how short a wait must be for an abandon not to count at all."""

    target_seconds: int
    abandon_policy: AbandonPolicy
    short_abandon_seconds: int


@dataclass(frozen=True, slots=True)
class Tally:
    """What a queue's line did over a stretch of time: how many joined it (`offered`), and how
    the waits that ended in it ended. Tallies add up: a day is the sum of its minutes.

    Each wait is counted by when it ended, once, in one of answered, abandoned, short
    abandoned, expired, transferred and converted; so over any period, waiting at its start +
    offered = those six + waiting at its end."""

    offered: int = 0
    answered: int = 0
    answered_in_target: int = 0
    answer_wait_seconds: float = 0.0
    abandoned: int = 0
    abandoned_in_target: int = 0
    short_abandoned: int = 0
    expired: int = 0
    transferred: int = 0
    converted: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            offered=self.offered + other.offered,
            answered=self.answered + other.answered,
            answered_in_target=self.answered_in_target + other.answered_in_target,
            answer_wait_seconds=self.answer_wait_seconds + other.answer_wait_seconds,
            abandoned=self.abandoned + other.abandoned,
            abandoned_in_target=self.abandoned_in_target + other.abandoned_in_target,
            short_abandoned=self.short_abandoned + other.short_abandoned,
            expired=self.expired + other.expired,
            transferred=self.transferred + other.transferred,
            converted=self.converted + other.converted,
        )

    @property
    def left(self) -> int:
        """The waits that ended: every way of leaving the line."""
        return (
            self.answered
            + self.abandoned
            + self.short_abandoned
            + self.expired
            + self.transferred
            + self.converted
        )


JOINED = Tally(offered=1)


def wait_ended(end: LineEnd, waited_seconds: float, rules: ServiceRules) -> Tally:
    """What one wait that ended adds to its queue's tally.

    A wait is within the target when it lasted at most `target_seconds`. An abandon shorter
    than `short_abandon_seconds` is a short abandon: a wrong number, a caller who heard the
    menu and left; it counts in neither the service level nor the abandonment rate (only in
    the line's balance). The other ends (expired, transferred, converted) are neither
    answered nor abandoned."""
    within = waited_seconds <= rules.target_seconds
    if end is LineEnd.answered:
        return Tally(answered=1, answered_in_target=int(within), answer_wait_seconds=waited_seconds)
    if end is LineEnd.abandoned:
        if waited_seconds < rules.short_abandon_seconds:
            return Tally(short_abandoned=1)
        return Tally(abandoned=1, abandoned_in_target=int(within))
    return Tally(**{end.value: 1})


def service_level(tally: Tally, abandon_policy: AbandonPolicy) -> float | None:
    """The service level (SL), 0 to 1: the share of waits answered within the target, with
    abandons counted the queue's way (short abandons never count):

    - `ignore`: answered within target / answered;
    - `against`: answered within target / (answered + abandoned): every abandon is a miss;
    - `in_favour`: (answered within target + abandoned within target) / (answered +
      abandoned): a customer who left before the target was not failed by the line, one who
      left after it was.

    None when nothing counts (no answer, and no abandon that counts)."""
    if abandon_policy is AbandonPolicy.ignore:
        met, counted = tally.answered_in_target, tally.answered
    elif abandon_policy is AbandonPolicy.against:
        met, counted = tally.answered_in_target, tally.answered + tally.abandoned
    else:
        met = tally.answered_in_target + tally.abandoned_in_target
        counted = tally.answered + tally.abandoned
    return met / counted if counted else None


def average_speed_of_answer(tally: Tally) -> float | None:
    """The average speed of answer (ASA), in seconds: the mean wait of the answered waits, from
    joining the line (its `waiting_since`: a wait kept through a rejected offer or a move to
    another queue counts whole) to the agent's accepting the offer. None with no answer."""
    return tally.answer_wait_seconds / tally.answered if tally.answered else None


def abandonment_rate(tally: Tally) -> float | None:
    """The abandonment rate, 0 to 1: abandoned / (answered + abandoned), short abandons left
    out of both. None when neither happened."""
    counted = tally.answered + tally.abandoned
    return tally.abandoned / counted if counted else None


def occupancy(handling_seconds: float, staffed_seconds: float) -> float | None:
    """An agent's occupancy, 0 to 1: the share of their staffed time (in routing: `available`,
    `busy` or `wrap_up`) in which they held at least one interaction (assigned or in its
    wrap-up). Away and offline time counts in neither. None with no staffed time. A queue's
    is the same over the sums of its qualified agents' times."""
    return handling_seconds / staffed_seconds if staffed_seconds > 0 else None
