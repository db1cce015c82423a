"""This replica's open desks, by the lease they were opened under (app/core/lease.py).

When the lease lapses, routing has taken (or is about to take) those desks out: their agents
look offline to everyone. A desk left open would show its agent as connected while nothing is
offered to it, so each is closed with 1012 and reconnects under the replica's new lease.
"""

from __future__ import annotations

import uuid
from collections import defaultdict

from app.core.socket_session import LEASE_LAPSED, SocketSession
from app.desk.protocol import DeskFrame

Desk = SocketSession[DeskFrame]


class OpenDesks:
    def __init__(self) -> None:
        self._by_lease: defaultdict[uuid.UUID, set[Desk]] = defaultdict(set)

    def opened(self, lease_id: uuid.UUID, desk: Desk) -> None:
        self._by_lease[lease_id].add(desk)

    def closed(self, lease_id: uuid.UUID, desk: Desk) -> None:
        desks = self._by_lease.get(lease_id)
        if desks is not None:
            desks.discard(desk)
            if not desks:
                del self._by_lease[lease_id]

    def lease_lapsed(self, lease_id: uuid.UUID) -> None:
        """Close every desk opened under the lapsed lease (each closes from a task of its own:
        no client is waited for here)."""
        for desk in self._by_lease.pop(lease_id, set()):
            desk.close(LEASE_LAPSED)

    def __len__(self) -> int:
        return sum(len(desks) for desks in self._by_lease.values())
