"""Reading the waiting work: the queues' routing settings and the waiting interactions, in the
policy's order of service, a page at a time.

A pass (app/routing/passes.py) reads here what the policy weighs. The order of service is the
policy's own (`policy.in_line`): the effective priority is worked out in SQL term for term as
`policy.effective_priority` has it (tests/routing/test_waiting_order.py pins the two together),
so a page holds exactly the interactions the policy would serve next.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from app.core.channels import Channel
from app.routing import policy
from app.tickets import open_complaints

SECONDS_A_DAY = 86_400
WAITING_PAGE = 500  # waiting interactions read at a time, in the order of service
WAITING_LIMIT = 5000  # read by one pass at most
RANKED_LIMIT = 10_000  # the oldest waiting of each channel, ranked by each page's read


@dataclass(frozen=True, slots=True)
class QueueSettings:
    rules: policy.QueueRules
    offer_timeout: timedelta


QUEUES = """
    SELECT id, tier_weights, aging_factor, relaxation_steps, sticky_seconds, follow_up_days,
           complaint_owner_first, offer_timeout_seconds
    FROM queues
"""


def _queue(row: asyncpg.Record) -> QueueSettings:
    steps = tuple(
        policy.RelaxationStep(
            after_seconds=float(s["after_seconds"]), level_cap=int(s["level_cap"])
        )
        for s in row["relaxation_steps"]
    )
    rules = policy.QueueRules(
        queue_id=row["id"],
        tier_weights={k: float(v) for k, v in row["tier_weights"].items()},
        aging_factor=row["aging_factor"],
        relaxation=steps,
        sticky_seconds=float(row["sticky_seconds"]),
        follow_up_seconds=float(row["follow_up_days"]) * SECONDS_A_DAY,
        complaint_owner_first=row["complaint_owner_first"],
    )
    return QueueSettings(rules, timedelta(seconds=row["offer_timeout_seconds"]))


# A waiting interaction's effective priority at the pass's moment ($2), the policy's formula
# (`policy.effective_priority`) term for term and in its order, so that the floats, and with
# them the order of service, are the policy's own.
EFFECTIVE = """(
    i.priority::float8 + coalesce((q.tier_weights ->> c.tier::text)::float8, 0)
    + q.aging_factor * greatest(0, extract(epoch FROM $2::timestamptz - i.waiting_since))::float8
)"""

# Queued work held back until after the pass's moment ($2: a voicemail's callback waits for its
# queue to open) is not in line yet: nothing reads it, and a pass on a tick offers it once due.
DUE = "(not_before IS NULL OR not_before <= $2)"

# The oldest `RANKED_LIMIT` ($6) waiting interactions of each channel that are due, each channel
# read from its own index range: every read ranks all it is given, and a backlog of 100,000
# emails ranked on every pass would keep PostgreSQL busy for nothing; ranked together, though,
# 10,000 old emails would hide every newer call. Behind more than that in one channel, that
# channel's newest wait their turn (docs/routing.md, "What a pass reads").
OLDEST_OF_EACH_CHANNEL = "\n    UNION ALL\n".join(
    f"""    (SELECT * FROM interactions WHERE state = 'queued' AND channel = '{channel.value}'
       AND {DUE}
     ORDER BY waiting_since LIMIT $6)"""  # noqa: S608 - the channel names, no outside text
    for channel in Channel
)

# The waiting work in the order of service (`policy.in_line`), a page at a time: after the
# entry ($3, $4, $5) given, or from the top. Each with the agents who already refused or missed
# it, and the version of the queues' rows (a view: app/queues/settings_version.sql), in a
# subquery of its own, which PostgreSQL works out once per statement.
WAITING = f"""
    SELECT i.id, i.channel, i.queue_id, i.priority, i.waiting_since, i.needs, i.customer_id,
           i.linked_to, c.tier, {EFFECTIVE} AS effective,
           ARRAY(SELECT o.agent_id FROM offers o WHERE o.interaction_id = i.id
                 AND o.state IN ('rejected', 'timed_out')) AS refused,
           (SELECT version FROM queues_settings_version) AS queues_version
    FROM (
{OLDEST_OF_EACH_CHANNEL}
    ) i
    JOIN customers c ON c.id = i.customer_id
    JOIN queues q ON q.id = i.queue_id
    WHERE ($3::float8 IS NULL OR {EFFECTIVE} < $3
           OR ({EFFECTIVE} = $3 AND (i.waiting_since, i.id) > ($4::timestamptz, $5::uuid)))
    ORDER BY effective DESC, i.waiting_since, i.id
    LIMIT $1
"""  # noqa: S608 - constants only, no outside text


async def page(
    connection: asyncpg.Connection, moment: datetime, after: asyncpg.Record | None
) -> list[asyncpg.Record]:
    """The next page of waiting work in the order of service, after `after` (a row of the
    last page) or from the top."""
    place = (
        (None, None, None)
        if after is None
        else (after["effective"], after["waiting_since"], after["id"])
    )
    rows: list[asyncpg.Record] = await connection.fetch(
        WAITING, WAITING_PAGE, moment, *place, RANKED_LIMIT
    )
    return rows


# A pass that finds nobody with room reads no more than this: with everyone away or full, a
# backlog of thousands read, built and weighed for every arrival and every freed slot that
# frees no room is work for nothing (it took a third of the server's CPU queueing 8,000).
# Work held back until later (`DUE`, at the pass's moment $1) waits for no agent yet.
ANY_WAITING = (
    "SELECT EXISTS (SELECT 1 FROM interactions WHERE state = 'queued'"
    " AND (not_before IS NULL OR not_before <= $1))"
)

LAST_AGENTS = """
    SELECT DISTINCT ON (customer_id) customer_id, agent_id, assigned_at
    FROM interactions
    WHERE customer_id = ANY($1::uuid[]) AND agent_id IS NOT NULL AND assigned_at IS NOT NULL
    ORDER BY customer_id, assigned_at DESC
"""


# The agent who handled each thread that waiting follow-ups continue, and when it ended.
THREAD_AGENTS = """
    SELECT id, agent_id, ended_at FROM interactions
    WHERE id = ANY($1::uuid[]) AND agent_id IS NOT NULL AND ended_at IS NOT NULL
"""


class QueueBook:
    """The queues' routing settings, kept between passes while no queue row has changed.

    They change rarely (an admin edits a queue) and are needed on every pass. The pass's read
    of the waiting work also returns the queue rows' version, so an edit is seen by the very
    next pass and costs no extra round trip.
    """

    def __init__(self) -> None:
        self._version: object = None
        self._queues: dict[uuid.UUID, QueueSettings] = {}

    def current(self, version: object) -> dict[uuid.UUID, QueueSettings] | None:
        """The settings kept, if they are those of `version`; None until a pass reads them."""
        return self._queues if version is not None and version == self._version else None

    async def settings(
        self, connection: asyncpg.Connection, version: object, needed: set[uuid.UUID]
    ) -> dict[uuid.UUID, QueueSettings]:
        if version != self._version or not needed <= self._queues.keys():
            self._queues = {row["id"]: _queue(row) for row in await connection.fetch(QUEUES)}
            self._version = version
        return self._queues


async def waiting_items(
    connection: asyncpg.Connection,
    queues: dict[uuid.UUID, QueueSettings],
    rows: list[asyncpg.Record],
) -> list[policy.WaitingInteraction]:
    last: dict[uuid.UUID, asyncpg.Record] = {}
    # Only sticky queues need each customer's last agent: skip the query when none waits.
    sticky = [row["customer_id"] for row in rows if queues[row["queue_id"]].rules.sticky_seconds]
    if sticky:
        customers = list(set(sticky))
        last = {r["customer_id"]: r for r in await connection.fetch(LAST_AGENTS, customers)}
    # And only follow-ups in queues that send them back need their threads' agents.
    follow_ups = [
        row["linked_to"]
        for row in rows
        if row["linked_to"] is not None and queues[row["queue_id"]].rules.follow_up_seconds
    ]
    threads: dict[uuid.UUID, asyncpg.Record] = {}
    if follow_ups:
        threads = {r["id"]: r for r in await connection.fetch(THREAD_AGENTS, follow_ups)}
    # And only queues that prefer a complaint's owner need the customers' complaints.
    complained = {
        row["customer_id"] for row in rows if queues[row["queue_id"]].rules.complaint_owner_first
    }
    owners: dict[uuid.UUID, asyncpg.Record] = {}
    if complained:
        owners = {
            r["customer_id"]: r
            for r in await connection.fetch(open_complaints.OWNERS, list(complained))
        }
    return [
        _waiting_item(
            row,
            last.get(row["customer_id"]),
            threads.get(row["linked_to"]),
            owners.get(row["customer_id"]),
        )
        for row in rows
    ]


def _waiting_item(
    row: asyncpg.Record,
    last: asyncpg.Record | None,
    thread: asyncpg.Record | None,
    owner: asyncpg.Record | None,
) -> policy.WaitingInteraction:
    return policy.WaitingInteraction(
        id=row["id"],
        channel=Channel(row["channel"]),
        queue_id=row["queue_id"],
        priority=row["priority"],
        tier=row["tier"],
        waiting_since=row["waiting_since"],
        needs=tuple(policy.SkillNeed(n["skill"], int(n["level"])) for n in row["needs"]),
        last_agent_id=None if last is None else last["agent_id"],
        last_agent_at=None if last is None else last["assigned_at"],
        thread_agent_id=None if thread is None else thread["agent_id"],
        thread_ended_at=None if thread is None else thread["ended_at"],
        complaint_owner_id=None if owner is None else owner["owner_agent_id"],
        complaint_reference=None if owner is None else owner["reference"],
        excluded_agents=frozenset(row["refused"]),
    )
