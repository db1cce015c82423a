"""`/metrics` for Prometheus, through the official client library (prometheus-client).

What is counted where (docs/supervisors.md, "Prometheus", has the table for an admin):

- in the process, as it happens: the matcher's pass time and the open websockets (their
  instruments are core's, app/core/instruments.py, as routing, the desk and the chat socket
  record them), the HTTP requests' time by route template (`route_timer.RouteTimer`), and
  the offers made and missed (`count_offers`, told by this replica's event hub of every event
  it committed, after the commit);
- at the scrape, from the database: the floor (`floor_figures`: waiting work, longest wait,
  agents by state, the outbox's unsent messages).

One process (`serve` with one worker, the tests): the client's default registry. Several
workers (`serve --workers N`): `contactcenter serve` points PROMETHEUS_MULTIPROC_DIR at a
folder of its own before the workers start (`metrics_files.prepare`), each worker's
instruments write their values there, and a scrape, whichever worker serves it, sums them
all with the client's MultiProcessCollector; the floor is read once, by that worker.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from fastapi import APIRouter, Request, Response
from prometheus_client import REGISTRY, CollectorRegistry, Counter, disable_created_metrics
from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from app.auth.dependencies import MetricsScraper
from app.core.channels import Channel
from app.core.hub import EventRecord
from app.supervisor import floor_figures, metrics_files

router = APIRouter(tags=["metrics"])

# No `_created` series beside each counter and histogram (when it was made): they double the
# series, Prometheus keeps them as plain gauges, and several workers' files have none, so one
# worker and several would show different sets.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in the client

OFFERS_MADE = Counter(
    "cc_offers_made",
    "Offers made to agents (by a matcher pass, to an arrival at once, or by a supervisor), by"
    " channel",
    ["channel"],
)
OFFERS_MISSED = Counter(
    "cc_offers_missed",
    "Offers that did not become work: timed out (the agent did not answer in time) or rejected"
    " by the agent",
    ["outcome"],
)
OTHER_CHANNEL = "other"  # an offer whose event names no channel we know (none today)
# One child per label value, made once: counting an event is then a dictionary look-up.
# (keyed by whatever an event's payload holds: a look-up of anything else finds nothing)
_MADE: dict[object, Counter] = {c.value: OFFERS_MADE.labels(channel=c.value) for c in Channel}
_MADE_ELSEWHERE = OFFERS_MADE.labels(channel=OTHER_CHANNEL)
_MISSED = {
    f"offer.{outcome}": OFFERS_MISSED.labels(outcome=outcome)
    for outcome in ("timed_out", "rejected")
}


def count_offers(events: Sequence[EventRecord]) -> None:
    """Counts the offers made (`interaction.offered`) and missed (`offer.timed_out`,
    `offer.rejected`) among events this replica has committed: the hub's `on_published`.

    Counted from the events rather than beside each writer: every offer and every decision
    leaves exactly one of these events, whoever wrote it (the matcher, an arrival, the desk,
    the sweeper, a call's line, a supervisor), and a writer hands its events to the hub only
    after they committed, so a decision rolled back is never counted. Withdrawn offers (the
    customer left, the agent went away) are neither."""
    for event in events:
        kind = event.kind
        if kind == "interaction.offered":
            _MADE.get(event.payload.get("channel"), _MADE_ELSEWHERE).inc()
        elif (missed := _MISSED.get(kind)) is not None:
            missed.inc()


class _Scrape(Collector):
    """What one scrape shows: the process's instruments (or every worker's), then the floor."""

    def __init__(self, instruments: Collector, floor: Sequence[Metric]) -> None:
        self._instruments = instruments
        self._floor = floor

    def collect(self) -> Iterable[Metric]:
        yield from self._instruments.collect()
        yield from self._floor


def instruments() -> Collector:
    """The instruments to show: this process's (the default registry), or with several
    workers every worker's, summed from their files (a worker that died keeps its counts; its
    open sockets are forgotten)."""
    folder = os.environ.get(metrics_files.MULTIPROC_DIR)
    if not folder:
        return REGISTRY
    metrics_files.forget_dead_workers(folder)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]  # untyped
    return registry


@router.get(
    "/metrics",
    summary="The center's metrics, in Prometheus's text format (read with CC_METRICS_TOKEN)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_PLAIN_0_0_4: {}}, "description": "The metrics"}},
)
async def metrics(_: MetricsScraper, request: Request) -> Response:
    """The metric names, labels and meanings: docs/supervisors.md, "Prometheus". In the format
    the scraper's Accept asks for (OpenMetrics, or Prometheus's text format, 0.0.4 unless a
    later version is asked for), as the client library chooses."""
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    floor = await floor_figures.read_floor(request.app.state.pg)
    body = encode(_Scrape(instruments(), floor_figures.families(floor)))
    return Response(body, headers={"Content-Type": content_type})
