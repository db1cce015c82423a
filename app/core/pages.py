"""What the pages the app serves to a browser share (the chat widget's demo page, the
supervisors' wallboard): the headers of their plain files and the sockets their policy allows."""

from __future__ import annotations

import re

# A Host header as browsers send it (a name or an IPv6 literal, and a port), and nothing else:
# it is written into a page's policy, which it must not be able to widen.
_HOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")

# The files change with the service's version only; a browser asks again each time (no-cache),
# so a new version reaches it at once.
FILE_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


def socket_sources(host: str | None) -> str:
    """A policy's connect-src for this server only: 'self' covers ws(s) of the same host in
    current browsers; older ones need it spelled out, from the Host header when it is one."""
    sockets = "'self'"
    if host is not None and _HOST.fullmatch(host):
        sockets += f" ws://{host} wss://{host}"
    return sockets
