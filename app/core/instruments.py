"""What the lower layers count for Prometheus: the matcher's pass time and the open sockets.

`/metrics` is served by app/supervisor/prometheus.py (layer 8), which the matcher, the desk and
the chat socket may not import; so the instruments they record into live here, and the
supervisor's exposition reads them from the client library's registry like every other one.
They are the official client's objects: in a server with several workers
(PROMETHEUS_MULTIPROC_DIR set before the workers start, by `contactcenter serve`) each
process keeps its values in files of its own, summed at the scrape.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum

from prometheus_client import Gauge, Histogram

# A pass is a few milliseconds (two or three statements); hundreds of milliseconds is a
# database in trouble, seconds a pass that a lock held up.
PASS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

MATCHER_PASS_SECONDS = Histogram(
    "cc_matcher_pass_seconds",
    "How long the leading matcher's passes took (read the waiting work and the agents, match,"
    " write the offers)",
    buckets=PASS_BUCKETS,
)


class SocketKind(StrEnum):
    """The websockets the center serves."""

    desk = "desk"  # an agent's desk (/v1/desk/ws)
    chat = "chat"  # a customer's chat (/v1/chat/ws)
    supervisor = "supervisor"  # a supervisor's live view (/v1/supervisor/ws)


# Summed over the live workers only: a worker that died took its sockets with it.
_SOCKETS_OPEN = Gauge(
    "cc_websockets_open",
    "Websockets open now, by kind (desk, chat, supervisor)",
    ["kind"],
    multiprocess_mode="livesum",
)
# One child per kind, made once: a socket's open and close then cost an increment each, and
# every kind shows (at 0) before its first socket.
_OPEN = {kind: _SOCKETS_OPEN.labels(kind=kind.value) for kind in SocketKind}


@contextmanager
def connected(kind: SocketKind) -> Iterator[None]:
    """Counts a socket of `kind` as open for the duration of the block (serve the socket
    inside it): it goes down however the block ends."""
    gauge = _OPEN[kind]
    gauge.inc()
    try:
        yield
    finally:
        gauge.dec()
