"""The agent's side of a call: ringing the agent who took it, and what the end of the agent's
leg does (never answered: the call back in its queue, the agent having missed it; answered:
the talk over, or the caller on to the queue an agent transferred the call to).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from app.agents.models import Agent
from app.core.db import driver_connection
from app.core.events import events_of
from app.core.logging import get_logger
from app.core.settings import Settings
from app.interactions.models import Interaction, InteractionState
from app.ivr import announcements, wait_loop
from app.ivr import call_records as records
from app.ivr.actions import Connect, Hangup, Hold
from app.ivr.call_records import Answer
from app.ivr.flow import Flow
from app.ivr.models import Call, CallPhase
from app.ivr.service import flow_version
from app.routing import service as routing

log = get_logger(__name__)

WAITING = (InteractionState.queued, InteractionState.offered)


class FlowVersions:
    """The flow versions calls run on, read once per replica: a version never changes once
    saved, and a call keeps the one it started on."""

    def __init__(self) -> None:
        self._flows: dict[tuple[uuid.UUID, int], Flow] = {}

    def keep(self, flow_id: uuid.UUID, version: int, flow: Flow) -> None:
        self._flows[(flow_id, version)] = flow

    async def of(self, session: AsyncSession, call: Call) -> Flow:
        key = (call.flow_id, call.flow_version)
        if key not in self._flows:
            self._flows[key] = await flow_version(session, call.flow_id, call.flow_version)
        return self._flows[key]


class AgentLegs:
    """The switchboard's dealings with agents' phones, in the caller's unit of work."""

    def __init__(
        self, settings: Settings, flows: FlowVersions, wake_matcher: Callable[[], None]
    ) -> None:
        self._settings, self._flows, self._wake_matcher = settings, flows, wake_matcher

    async def unanswered(self, session: AsyncSession, call: Call, how: str, actor: str) -> Answer:
        """Back to the queue with its place; the agent missed the offer; the caller is told."""
        assert call.interaction_id is not None, "a call with an agent leg was enqueued"
        agent_id, call.agent_id, call.phase = call.agent_id, None, CallPhase.queued
        if agent_id is not None:
            reason = f"the agent's phone did not answer ({how})"
            await self.give_back(session, call, agent_id, actor, reason)
        interaction = await session.get(Interaction, call.interaction_id)
        assert interaction is not None
        language, voice = wait_loop.language_of(call, await self._flows.of(session, call))
        sorry = announcements.agent_unreachable(language, voice)
        return records.answer(call, [sorry, await self.next_round(session, call, interaction)])

    async def talk_over(self, session: AsyncSession, call: Call, actor: str) -> Answer:
        """The agent hung up. Transferred to a queue meanwhile, the caller waits there (or is
        connected to the agent who took it); else the talk is over and the agent wraps up."""
        assert call.interaction_id is not None, "a call with an agent leg was enqueued"
        interaction = await session.get(Interaction, call.interaction_id)
        assert interaction is not None
        if interaction.state in WAITING:
            call.phase, call.agent_id = CallPhase.queued, None
            return records.answer(call, [await self.next_round(session, call, interaction)])
        taker = interaction.agent_id
        if interaction.state is InteractionState.assigned and taker not in (None, call.agent_id):
            call.phase = CallPhase.queued
            connected = await self.connect(session, call, taker)
            if connected is not None:
                return connected
            await session.refresh(interaction)  # given back to its queue: the caller waits
            return records.answer(call, [await self.next_round(session, call, interaction)])
        await records.tolerating_moves(
            routing.end_talk(
                await driver_connection(session), events_of(session), interaction.id, actor=actor
            )
        )
        records.end(call, "answered", cause="completed")
        return records.answer(call, [Hangup()])

    async def connect(
        self, session: AsyncSession, call: Call, agent_id: uuid.UUID
    ) -> Answer | None:
        """Ring the agent's voice endpoint. An agent without one cannot take the call: it goes
        back to its queue (the agent counted as having missed it), and None says so."""
        agent = await session.get(Agent, agent_id)
        endpoint = None if agent is None else agent.voice_endpoint
        if endpoint is None:
            log.warning("agent took a call with no voice endpoint", agent_id=str(agent_id))
            reason = "the agent has no voice endpoint"
            await self.give_back(session, call, agent_id, "system:voice", reason)
            return None
        call.phase, call.agent_id = CallPhase.connecting, agent_id
        return records.answer(call, [Connect(endpoint=endpoint)])

    async def give_back(
        self, session: AsyncSession, call: Call, agent_id: uuid.UUID, actor: str, reason: str
    ) -> None:
        """The call goes back to its queue with its place; its agent missed the offer."""
        assert call.interaction_id is not None, "a call with an agent was enqueued"
        connection, events = await driver_connection(session), events_of(session)
        await records.tolerating_moves(
            routing.return_unanswered(
                connection,
                events,
                call.interaction_id,
                agent_id=agent_id,
                actor=actor,
                reason=reason,
            )
        )
        self._wake_matcher()

    async def next_round(self, session: AsyncSession, call: Call, interaction: Interaction) -> Hold:
        return await wait_loop.next_round(
            session, call, interaction, await self._flows.of(session, call)
        )
