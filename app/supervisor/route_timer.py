"""How long HTTP requests take, by route template, for Prometheus.

A plain ASGI middleware (Starlette's BaseHTTPMiddleware costs an extra task per request, more
than some whole requests here: docs/benchmarks.md). It labels a request with the path template
of the route that served it (`/v1/interactions/{interaction_id}`), never the path asked for:
ids in labels would make a series per interaction, and a label shows whatever it holds to
anyone who reads /metrics. A request no route matched is `unmatched`; a method outside HTTP's
usual ones is `other`, so that no caller can make series up.

It is on every request's path: the label set's histogram child is looked up in two plain
dictionaries by strings the request already holds (the route's template and the method), so a
request allocates nothing for it but the clock readings; children are made once per route and
method.
"""

from __future__ import annotations

from time import perf_counter

from prometheus_client import Histogram
from starlette.types import ASGIApp, Receive, Scope, Send

UNMATCHED = "unmatched"
OTHER_METHOD = "other"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# Most requests take milliseconds: finer buckets low down than the client's defaults.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUEST_SECONDS = Histogram(
    "cc_http_request_seconds",
    "How long HTTP requests took, from their arrival to the end of the response, by method and"
    " route template (`unmatched`: no route; websockets are not requests here)",
    ["method", "route"],
    buckets=BUCKETS,
)


class RouteTimer:
    """Times every HTTP request into `cc_http_request_seconds{method, route}`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # route template -> method -> the histogram's child for them
        self._children: dict[str, dict[str, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root = scope.get("root_path", "")
        started = perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self._child(_template(scope, root), scope["method"]).observe(perf_counter() - started)

    def _child(self, template: str, method: str) -> Histogram:
        by_method = self._children.get(template)
        if by_method is not None and (child := by_method.get(method)) is not None:
            return child
        label = method if method in METHODS else OTHER_METHOD
        child = HTTP_REQUEST_SECONDS.labels(method=label, route=template)
        if label is method:  # an unusual method is not kept: no caller grows this dictionary
            self._children.setdefault(template, {})[method] = child
        return child


def _template(scope: Scope, root: str) -> str:
    """The path template of what served the request, read from the scope once it has been
    served. An API route is put in the scope by the router (Starlette's "route"), its `path`
    the template; a mounted app (the docs' assets) leaves no route, but its path moved into
    the scope's `root_path` (from `root`, as the request came in)."""
    route = scope.get("route")
    if route is not None:
        template: str = getattr(route, "path", UNMATCHED)
        return template
    mounted: str = scope.get("root_path", "")
    if mounted != root and mounted.startswith(root):
        return mounted[len(root) :] + "/{path}"
    return UNMATCHED
