"""One agent's desk socket, as a small state machine with its own send queue.

connecting ──hello (or first message)──▶ replaying ──▶ live ──▶ closed

A slow or dead client never delays anyone: frames go through a bounded queue drained by this
connection's own writer; a full queue or a stuck send closes this socket only. No database
session is held for the socket's life: each message and each frame uses a short one.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
from fastapi import WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.agents.models import AgentState
from app.agents.states import Cause
from app.core.errors import AppError
from app.core.events import Events
from app.core.hub import EventHub, EventRecord, Subscription
from app.core.logging import get_logger
from app.core.pg import ACQUIRE_TIMEOUT, now, transaction
from app.desk import frames
from app.desk.protocol import (
    Accept,
    AckFrame,
    AgentMessage,
    Complete,
    EndWrapUp,
    ErrorFrame,
    Heartbeat,
    Hello,
    ReadyFrame,
    Reject,
    SetState,
    agent_message,
)
from app.routing import service as routing
from app.routing.presence import Presence

log = get_logger(__name__)

SEND_QUEUE = 256
SEND_TIMEOUT = 5.0
HELLO_TIMEOUT = 5.0
REPLAY_LIMIT = 1000


SEEN_NOW = """
    INSERT INTO agent_presence (agent_id, last_seen_at) VALUES ($1, $2)
    ON CONFLICT (agent_id) DO UPDATE SET last_seen_at = excluded.last_seen_at
"""


class Phase(enum.Enum):
    connecting = "connecting"
    replaying = "replaying"
    live = "live"
    closed = "closed"


class AgentConnection:
    def __init__(
        self,
        websocket: WebSocket,
        *,
        agent_id: uuid.UUID,
        actor: str,
        sessions: async_sessionmaker[AsyncSession],
        pool: asyncpg.Pool,
        hub: EventHub,
        wake_matcher: Callable[[], None],
        presence: Presence,
        heartbeat_seconds: float,
    ) -> None:
        self.websocket = websocket
        self.agent_id = agent_id
        self.actor = actor
        self.connection_id = uuid.uuid4()
        self.phase = Phase.connecting
        self._sessions = sessions
        self._pool = pool
        self._hub = hub
        self._wake_matcher = wake_matcher
        self._presence = presence
        self._heartbeat_seconds = heartbeat_seconds
        self._outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=SEND_QUEUE)
        self._sent_up_to = 0

    async def serve(self) -> None:
        subscription = self._hub.subscribe_agent(str(self.agent_id))
        writer = asyncio.create_task(self._write(), name=f"desk-writer-{self.agent_id}")
        pump: asyncio.Task[None] | None = None
        try:
            hello, first = await self._await_hello()
            await self._open()
            self.phase = Phase.replaying
            await self._replay(hello.last_event_id if hello else None)
            self.phase = Phase.live
            pump = asyncio.create_task(self._pump(subscription), name=f"desk-pump-{self.agent_id}")
            if first is not None:
                await self._handle(first)
            await self._read(writer, pump)
        except WebSocketDisconnect:
            pass
        finally:
            self.phase = Phase.closed
            self._hub.unsubscribe(subscription)
            for task in (writer, pump):
                if task is not None:
                    task.cancel()
            await self._close()

    async def _await_hello(self) -> tuple[Hello | None, AgentMessage | None]:
        try:
            raw = await asyncio.wait_for(self.websocket.receive_text(), timeout=HELLO_TIMEOUT)
        except TimeoutError:
            return None, None
        message = self._parse(raw)
        if isinstance(message, Hello):
            return message, None
        return None, message

    async def _open(self) -> None:
        async with transaction(self._pool) as connection:
            await connection.execute(
                "UPDATE agents SET connection_id = $2 WHERE id = $1",
                self.agent_id,
                self.connection_id,
            )
            await connection.execute(SEEN_NOW, self.agent_id, now())

    async def _close(self) -> None:
        """Leave routing unless a newer socket of the same agent has taken over."""
        with contextlib.suppress(Exception):
            events = Events()
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as connection:
                async with connection.transaction():
                    await self._leave(connection, events)
                self._hub.publish(events.written)
            self._wake_matcher()

    async def _leave(self, connection: asyncpg.Connection, events: Events) -> None:
        claimed = await connection.fetchrow(
            "UPDATE agents SET connection_id = NULL WHERE id = $1 AND connection_id = $2"
            " RETURNING state, state_reason",
            self.agent_id,
            self.connection_id,
        )
        if claimed is None:
            return
        agent = routing.AgentNow(
            self.agent_id, AgentState(claimed["state"]), claimed["state_reason"]
        )
        await routing.release_agent(
            connection,
            events,
            agent,
            state=AgentState.offline,
            reason="desk disconnected",
            actor=self.actor,
            by=Cause.disconnect,
        )
        await events.write(connection)

    async def _replay(self, last_event_id: int | None) -> None:
        """Missed events first (when the desk says where it was), then what it holds now."""
        async with self._pool.acquire() as connection:
            if last_event_id is not None:
                for event in await self._missed(connection, last_event_id):
                    frame = await frames.frame_for(connection, event)
                    if frame is not None:
                        self._send(frame)
            for frame in await frames.current_frames(connection, self.agent_id):
                self._send(frame)
        self._sent_up_to = max(self._hub.last_event_id, last_event_id or 0)
        self._send(
            ReadyFrame(
                agent_id=self.agent_id,
                last_event_id=self._sent_up_to,
                heartbeat_seconds=self._heartbeat_seconds,
            )
        )

    async def _missed(self, connection: asyncpg.Connection, after: int) -> list[EventRecord]:
        rows = await connection.fetch(
            "SELECT id, occurred_at, kind, subject_type, subject_id, actor, payload FROM events"
            " WHERE id > $1"
            " AND ((subject_type = 'agent' AND subject_id = $2) OR payload->>'agent_id' = $2)"
            " ORDER BY id LIMIT $3",
            after,
            str(self.agent_id),
            REPLAY_LIMIT,
        )
        return [EventRecord(**row) for row in rows]

    async def _pump(self, subscription: Subscription) -> None:
        while True:
            if subscription.overflowed.is_set():
                await self.websocket.close(code=1013, reason="too far behind; reconnect")
                return
            event = await subscription.queue.get()
            if event.id <= self._sent_up_to:
                continue
            # The pool lends a connection only to an event that needs a read (offer, assignment).
            frame = await frames.frame_for(self._pool, event)
            if frame is not None:
                self._send(frame)

    def _send(self, frame: BaseModel) -> None:
        try:
            # pydantic's own JSON encoder: one step, several times faster than dump + json.dumps.
            self._outbox.put_nowait(frame.model_dump_json())
        except asyncio.QueueFull:
            log.warning("desk too slow; closing its socket", agent_id=str(self.agent_id))
            asyncio.get_running_loop().create_task(self.websocket.close(code=1013))

    async def _write(self) -> None:
        while True:
            message = await self._outbox.get()
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for sends each frame from a
                # task of its own, one more task and one more turn of the loop per frame.
                async with asyncio.timeout(SEND_TIMEOUT):
                    await self.websocket.send_text(message)
            except (TimeoutError, RuntimeError, WebSocketDisconnect):
                with contextlib.suppress(Exception):
                    await self.websocket.close(code=1013)
                return

    async def _read(self, writer: asyncio.Task[None], pump: asyncio.Task[None]) -> None:
        while not writer.done() and not pump.done():
            raw = await self.websocket.receive_text()
            message = self._parse(raw)
            if message is not None:
                await self._handle(message)

    def _parse(self, raw: str) -> AgentMessage | None:
        try:
            return agent_message.validate_json(raw)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}"
                for e in error.errors()
            )
            self._send(ErrorFrame(error="validation_error", detail=problems))
            return None

    async def _handle(self, message: AgentMessage) -> None:
        try:
            applied = await self._apply(message)
        except AppError as error:
            self._send(ErrorFrame(of=message.type, error=error.code, detail=error.detail))
            return
        except (asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
            # A deadlock or a busy pool fails this message, not the desk: the agent may retry.
            log.warning("desk message failed", agent_id=str(self.agent_id), error=repr(error))
            self._send(
                ErrorFrame(
                    of=message.type, error="try_again", detail="the database was busy; retry"
                )
            )
            return
        if applied:
            self._wake_matcher()

    async def _apply(self, message: AgentMessage) -> bool:
        """Carry out a message; True when it changed something (it was acknowledged then)."""
        self._presence.seen(self.agent_id)
        if isinstance(message, Heartbeat | Hello):
            return False
        events = Events()
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as connection:
            if isinstance(message, Accept | Complete):  # one autocommitted call each: no BEGIN
                detail = await self._decide(connection, events, message)
            else:
                async with connection.transaction():
                    detail = await self._decide(connection, events, message)
                    await events.write(connection)
            # The answer first, then the frames of what it caused; both before the connection
            # goes back, as this pool's commits send no NOTIFY (EventHub.own).
            self._send(AckFrame(of=message.type, detail=detail))
            self._hub.publish(events.written)
        return True

    async def _decide(
        self, connection: asyncpg.Connection, events: Events, message: AgentMessage
    ) -> dict[str, Any]:
        agent_id, actor = self.agent_id, self.actor
        if isinstance(message, SetState):
            return await self._set_state(connection, events, message)
        if isinstance(message, Accept):
            taken = await routing.accept_offer(
                connection, events, message.offer_id, agent_id=agent_id, actor=actor
            )
            return {"offer_id": str(message.offer_id), "interaction_id": str(taken)}
        if isinstance(message, Reject):
            await routing.reject_offer(
                connection,
                events,
                message.offer_id,
                agent_id=agent_id,
                reason=message.reason,
                actor=actor,
            )
            return {"offer_id": str(message.offer_id)}
        if isinstance(message, Complete):
            state = await routing.complete(
                connection,
                events,
                message.interaction_id,
                disposition=message.disposition,
                notes=message.notes,
                agent_id=agent_id,
                actor=actor,
            )
            return {"interaction_id": str(message.interaction_id), "state": state.value}
        assert isinstance(message, EndWrapUp)
        state = await routing.end_wrap_up(
            connection, events, message.interaction_id, agent_id=agent_id, actor=actor
        )
        return {"interaction_id": str(message.interaction_id), "state": state.value}

    async def _set_state(
        self, connection: asyncpg.Connection, events: Events, message: SetState
    ) -> dict[str, Any]:
        state = AgentState(message.state)
        # Leaving routing from the desk says why even when the agent did not: the state itself.
        reason = message.reason if state is AgentState.available else message.reason or state.value
        await routing.change_state(
            connection, events, self.agent_id, state, reason=reason, actor=self.actor
        )
        return {"state": message.state.value}
