"""One matching pass: read the waiting work and the agents, ask the policy for the best pairs,
write the offers. Run by the leading matcher (app/routing/matcher.py), many times a second.

No transaction around it: the lead keeps every other pass out, each read sees all that was
committed before it, and the only write (claims, offers and their events) is one statement,
atomic by itself (app/routing/offers.py). Between the reads, other transactions only ever lower
a load (only offers add one, and every offer's write checks the agent's row is as read), so
what the reads saw is never less safe than the truth.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from app.core.channels import Channel
from app.core.events import Events
from app.core.pg import now
from app.routing import policy, waiting
from app.routing.directory import AgentDirectory
from app.routing.offers import NewOffer, OfferWriter, new_offer
from app.routing.waiting import QueueBook, QueueSettings


@dataclass(frozen=True, slots=True)
class PassResult:
    offers: int
    left: tuple[policy.WaitingInteraction, ...] = ()  # read but not offered
    skipped: int = 0  # pairs the write turned down (an agent changed, an interaction left)
    left_unread: bool = False  # work waits, not read: nobody had room for anything

    @property
    def left_waiting(self) -> int:
        return len(self.left) or int(self.left_unread)


async def run_pass(
    connection: asyncpg.Connection,
    events: Events,
    directory: AgentDirectory,
    book: QueueBook,
    writer: OfferWriter,
    *,
    silence: timedelta,
    reader: asyncpg.Connection | None = None,
) -> PassResult:
    """One matching pass, on the connection that holds the matcher's lead; the offers' events
    are noted in `events`, for the caller to publish.

    With a second connection (`reader`), the agents are read on it while the waiting work is
    read on the first: two round trips at once instead of one after the other. Unless nobody
    kept has room for anything: then the agents are read first, and the waiting work only if
    someone has room now (else the result says only whether any waits).
    """
    moment = now()
    if reader is None or not directory.anyone_with_room(silence):
        await directory.refresh(reader or connection)
        if not directory.anyone_with_room(silence):
            return PassResult(
                offers=0, left_unread=bool(await connection.fetchval(waiting.ANY_WAITING, moment))
            )
        rows = await waiting.page(connection, moment, None)
    else:
        async with asyncio.TaskGroup() as both:
            both.create_task(directory.refresh(reader))
            waiting_read = both.create_task(waiting.page(connection, moment, None))
        rows = waiting_read.result()
    if not rows:
        return PassResult(offers=0)
    served = await _serve_pages(connection, directory, book, rows, moment, silence)
    if not served.matches:
        return PassResult(offers=0, left=served.read, left_unread=served.unread)
    # Marked before the write: whether or not it lands, the next pass reads these agents afresh.
    directory.mark(match.agent_id for match in served.matches)
    offered = await _write_offers(
        connection, events, writer, _offers(served, moment), moment, directory
    )
    return PassResult(
        offers=len(offered),
        left=tuple(item for item in served.read if item.id not in offered),
        skipped=len(served.matches) - len(offered),
        left_unread=served.unread,
    )


@dataclass(frozen=True, slots=True)
class _Served:
    matches: list[policy.Match]
    read: tuple[policy.WaitingInteraction, ...]  # every interaction read
    queues: dict[uuid.UUID, QueueSettings]
    # The row version each agent's load was read with, as the pass began: an arrival may land
    # an offer on an agent while the pass reads its pages, and the pass's offers must not
    # land on a load it never weighed (a call beside that chat).
    versions: dict[uuid.UUID, int]
    unread: bool  # more may wait than was read


async def _serve_pages(
    connection: asyncpg.Connection,
    directory: AgentDirectory,
    book: QueueBook,
    rows: list[asyncpg.Record],
    moment: datetime,
    silence: timedelta,
) -> _Served:
    """The agents kept, served page by page in the order of service, one policy pass kept open
    across the pages (`policy.Standing`: the pairs `policy.match` makes over the same order).
    A page is read only while someone has room: at peak a pass reads what the free agents can
    take, not the whole backlog; with room left and work that nobody free can take ahead, up to
    `waiting.WAITING_LIMIT` interactions."""
    agents, versions = directory.kept_as_read(silence)
    standing = policy.Standing(agents)
    matches: list[policy.Match] = []
    read: list[policy.WaitingInteraction] = []
    seen: set[uuid.UUID] = set()  # a row that moved up between two pages comes once
    while True:
        queues = await book.settings(
            connection, rows[0]["queues_version"], {row["queue_id"] for row in rows}
        )
        rules = {queue_id: queue.rules for queue_id, queue in queues.items()}
        fresh = [row for row in rows if row["id"] not in seen]
        seen.update(row["id"] for row in fresh)
        items = await waiting.waiting_items(connection, queues, fresh)
        read.extend(items)
        matches.extend(standing.serve_in_order(items, rules, moment))
        more = len(rows) == waiting.WAITING_PAGE
        if not more or standing.full() or len(read) >= waiting.WAITING_LIMIT:
            return _Served(matches, tuple(read), queues, versions, unread=more)
        rows = await waiting.page(connection, moment, rows[-1])
        if not rows:
            return _Served(matches, tuple(read), queues, versions, unread=False)


def _offers(served: _Served, moment: datetime) -> list[NewOffer]:
    by_id = {item.id: item for item in served.read}
    offers = []
    for match in served.matches:
        item = by_id[match.interaction_id]
        timeout = served.queues[item.queue_id].offer_timeout
        read = served.versions[match.agent_id]
        offers.append(new_offer(match, item, timeout, moment, read))
    return offers


async def _write_offers(
    connection: asyncpg.Connection,
    events: Events,
    writer: OfferWriter,
    offers: Sequence[NewOffer],
    moment: datetime,
    directory: AgentDirectory,
) -> set[uuid.UUID]:
    """Writes what lands of `offers`; returns the interactions offered. The directory keeps
    the offered agents' new rows, so that arrivals count these offers before the next read."""
    written = await writer.write(connection, offers, moment)
    events.note_written(landed.event for landed in written)
    landed_at: dict[uuid.UUID, tuple[int, int, list[Channel]]] = {}
    for landed in written:
        offer = landed.offer
        entry = landed_at.setdefault(
            offer.match.agent_id, (offer.agent_read, landed.agent_version, [])
        )
        entry[2].append(offer.item.channel)
    directory.pass_offered(landed_at)
    return {landed.offer.match.interaction_id for landed in written}
