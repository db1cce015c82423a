"""One matcher leads at a time across replicas, and another takes over when it goes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import asyncpg

from app.core.hub import EventHub
from app.routing.leadership import Lead
from app.routing.matcher import Matcher

TICK = 0.1


class CountsBids(Lead):
    """The real lead, counting its bids (at most one a tick while another replica leads)."""

    bids = 0

    async def hold(self, moment: float) -> tuple[asyncpg.Connection, bool] | None:
        last_bid = self._last_bid
        held = await super().hold(moment)
        if self._last_bid != last_bid:
            self.bids += 1
        return held


async def _until(condition: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


async def test_one_matcher_leads_and_another_takes_over_when_it_stops(
    database_url: str,
) -> None:
    hub = EventHub(database_url)
    await hub.start()
    first = Matcher(database_url, hub, tick=TICK, silence=timedelta(seconds=15))
    bids = CountsBids(database_url, hub, tick=TICK)
    second = Matcher(database_url, hub, tick=TICK, silence=timedelta(seconds=15), lead=bids)
    try:
        first.start()
        await _until(lambda: first.leading)
        second.start()
        # Several bids, all refused while the first leads (or one taken, and the test fails).
        await _until(lambda: bids.bids >= 3 or second.leading)
        assert first.leading
        assert not second.leading

        await first.stop()
        await _until(lambda: second.leading, within=10 * TICK + 2)
        assert not first.leading
    finally:
        await first.stop()
        await second.stop()
        await hub.stop()
