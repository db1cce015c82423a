"""What the live board last sent: each view with the window that computed it.

A window's views are put here; the ones that changed come back as the frames to broadcast.
Each kept view remembers its window (`generation`, counted by the board), the last event
folded in then (`event_id`) and the window's moment (`at`), so that a socket can be caught up
from memory: every view (a snapshot), the views of the windows after its snapshot (`join`), or
those computed at or after an event id (a resume).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel

from app.supervisor.views import (
    AgentFrame,
    AgentView,
    ChangeFrame,
    ComplaintFrame,
    ComplaintView,
    QueueFrame,
    QueueView,
    SnapshotFrame,
)

V = TypeVar("V", bound=BaseModel)


@dataclass(slots=True)
class Kept(Generic[V]):
    """A view as the board last sent it: the window that computed it (`generation`), the last
    event folded in then (`event_id`) and when (`at`)."""

    view: V
    generation: int
    event_id: int
    at: datetime


@dataclass(frozen=True, slots=True)
class Window:
    """The window whose views are being put: its number, its last event, its moment."""

    generation: int
    event_id: int
    at: datetime

    def keep(self, view: V) -> Kept[V]:
        return Kept(view, self.generation, self.event_id, self.at)


class KeptViews:
    def __init__(self) -> None:
        self._queues: dict[uuid.UUID, Kept[QueueView]] = {}
        self._agents: dict[uuid.UUID, Kept[AgentView]] = {}
        self._complaints: dict[uuid.UUID, Kept[ComplaintView]] = {}

    def __len__(self) -> int:
        return len(self._queues) + len(self._agents) + len(self._complaints)

    def snapshot(
        self, event_id: int, at: datetime, queue_order: Iterable[uuid.UUID]
    ) -> SnapshotFrame:
        """Every view: the queues in `queue_order`, the complaints still late."""
        return SnapshotFrame(
            event_id=event_id,
            at=at,
            queues=[self._queues[q].view for q in queue_order if q in self._queues],
            agents=[kept.view for kept in self._agents.values()],
            complaints=[kept.view for kept in self._complaints.values() if _late(kept.view)],
        )

    def frames_after(self, newer: Callable[[int, int], bool]) -> list[ChangeFrame]:
        """The frames of the views kept with a (generation, event id) that `newer` picks, in
        the order they were computed."""
        frames: list[tuple[int, ChangeFrame]] = []
        for queue in self._queues.values():
            if newer(queue.generation, queue.event_id):
                frames.append((queue.generation, _queue_frame(queue)))
        for agent in self._agents.values():
            if newer(agent.generation, agent.event_id):
                frames.append((agent.generation, _agent_frame(agent)))
        for complaint in self._complaints.values():
            if newer(complaint.generation, complaint.event_id):
                frames.append((complaint.generation, _complaint_frame(complaint)))
        return [frame for _, frame in sorted(frames, key=lambda pair: pair[0])]

    def forget_queues_but(self, queue_ids: Iterable[uuid.UUID]) -> None:
        """Queues deleted: off the board."""
        staying = set(queue_ids)
        for gone in set(self._queues) - staying:
            del self._queues[gone]

    def put_queues(self, views: Iterable[QueueView], window: Window) -> list[ChangeFrame]:
        sent: list[ChangeFrame] = []
        for view in views:
            kept = self._queues.get(view.queue_id)
            if kept is not None and kept.view == view:
                continue
            kept = self._queues[view.queue_id] = window.keep(view)
            sent.append(_queue_frame(kept))
        return sent

    def put_agents(
        self, agents: list[AgentView], asked: set[uuid.UUID] | None, window: Window
    ) -> list[ChangeFrame]:
        """The agents read; those `asked` for (None: every one) and not found were deactivated
        or deleted, and leave the board."""
        found = {agent.agent_id for agent in agents}
        for gone in (set(self._agents) if asked is None else asked) - found:
            self._agents.pop(gone, None)
        sent: list[ChangeFrame] = []
        for agent in agents:
            kept = self._agents.get(agent.agent_id)
            if kept is not None and _same_agent(kept.view, agent):
                continue
            kept = self._agents[agent.agent_id] = window.keep(agent)
            sent.append(_agent_frame(kept))
        return sent

    def put_complaints(self, complaints: list[ComplaintView], window: Window) -> list[ChangeFrame]:
        """The late complaints, and those an event named as they are now. One that leaves the
        list goes out once more with both flags false, so screens drop it; it is kept so, for
        a resume."""
        found = {complaint.complaint_id: complaint for complaint in complaints}
        for complaint_id, kept in self._complaints.items():
            if complaint_id not in found and _late(kept.view):  # no longer late, by the clock
                found[complaint_id] = kept.view.model_copy(
                    update={"overdue": False, "escalated": False}
                )
        sent: list[ChangeFrame] = []
        for complaint in found.values():
            before = self._complaints.get(complaint.complaint_id)
            if (before is None and not _late(complaint)) or (
                before is not None and before.view == complaint
            ):
                continue  # never on the list, or unchanged
            kept = self._complaints[complaint.complaint_id] = window.keep(complaint)
            sent.append(_complaint_frame(kept))
        return sent


def _queue_frame(kept: Kept[QueueView]) -> QueueFrame:
    return QueueFrame(event_id=kept.event_id, at=kept.at, queue=kept.view)


def _agent_frame(kept: Kept[AgentView]) -> AgentFrame:
    return AgentFrame(event_id=kept.event_id, at=kept.at, agent=kept.view)


def _complaint_frame(kept: Kept[ComplaintView]) -> ComplaintFrame:
    return ComplaintFrame(event_id=kept.event_id, at=kept.at, complaint=kept.view)


def _late(complaint: ComplaintView) -> bool:
    return complaint.overdue or complaint.escalated


def _same_agent(before: AgentView, after: AgentView) -> bool:
    """Equal but for the time in state, which only the clock moved."""
    return before.model_copy(update={"seconds_in_state": 0.0}) == after.model_copy(
        update={"seconds_in_state": 0.0}
    )
