"""One agent's desk: what the desk's socket means, on core's socket session.

The session (app.core.socket_session) carries the frames: its bounded queue and writer, the
pump from the hub, the replay, heartbeats and close codes. What is the desk's own is here: the
hello, the agent's presence, each action carried out through routing and answered by an ack or
an error, one desk per agent (the newer socket wins), and the agent leaving routing when its
socket goes. No database session is held for the socket's life: each message and each frame
uses a short one. Routing's decisions run on the hot pool; a reply to the customer is the
channel's (`Replies`, given by main), in a unit of work of its own.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from typing import Any, Protocol, assert_never

import asyncpg
from fastapi import WebSocket
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.agents.models import AgentState
from app.agents.states import Cause
from app.core.db import Wakes, unit_of_work
from app.core.errors import AppError
from app.core.events import Events
from app.core.hub import EventHub, EventRecord
from app.core.lease import ReplicaLease
from app.core.logging import get_logger
from app.core.pg import ACQUIRE_TIMEOUT, Reader, now
from app.core.socket_session import (
    DATABASE_BUSY,
    CloseCode,
    Closing,
    Heartbeat,
    Replay,
    SessionClosed,
    SocketSession,
)
from app.desk import frames
from app.desk.chat_side import ChatSide
from app.desk.protocol import (
    Accept,
    AckFrame,
    AgentAction,
    AgentMessage,
    Complete,
    DeskFrame,
    EndWrapUp,
    ErrorFrame,
    Hello,
    MarkRead,
    RaiseComplaint,
    ReadyFrame,
    Reject,
    Reply,
    RoutingAction,
    SetState,
    Typing,
    agent_message,
)
from app.desk.protocol import Heartbeat as HeartbeatMessage
from app.desk.registry import OpenDesks
from app.routing import service as routing
from app.routing.presence import Presence
from app.tickets import acts
from app.tickets import service as complaints
from app.tickets.schemas import ComplaintRaise
from app.tickets.workflow import Actor

log = get_logger(__name__)

# One desk per agent: a socket that says hello takes the desk over, and the one it replaces is
# closed when the event of the takeover reaches it, on whichever replica it is.
DESK_OPENED = "agent.desk_opened"
REPLACED = Closing(CloseCode.REPLACED, "replaced by a newer desk of the same agent")
# A supervisor's logout (app/supervisor/actions.py) ends the desk too, wherever it is open.
LOGGED_OUT = Closing(CloseCode.LOGGED_OUT, "logged out by a supervisor")

# The desk is present at once, counted under this replica's lease.
SEEN_NOW = """
    INSERT INTO agent_presence (agent_id, last_seen_at, replica_id) VALUES ($1, $2, $3)
    ON CONFLICT (agent_id) DO UPDATE
    SET last_seen_at = excluded.last_seen_at, replica_id = excluded.replica_id
"""

Desk = SocketSession[DeskFrame]


class SentReply(Protocol):
    """A reply as its channel stored it: the interaction's message, and the channel's own id
    for it (an email's Message-ID)."""

    @property
    def message_id(self) -> uuid.UUID: ...

    @property
    def channel_message_id(self) -> str: ...


class Replies(Protocol):
    """How the agent who holds an interaction answers its customer, in the session's
    transaction, refused with an AppError that says why (the email channel's
    `replies.reply_as_holder`, given by main: channels and desk stand in one layer)."""

    async def __call__(
        self,
        session: AsyncSession,
        interaction_id: uuid.UUID,
        text: str,
        *,
        agent_id: uuid.UUID,
        actor: str,
    ) -> SentReply: ...


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
        lease: ReplicaLease,
        open_desks: OpenDesks,
        replies: Replies,
        outbox: Wakes | None,
        notices: acts.CustomerNotices,
        link_base: str,
    ) -> None:
        self.websocket = websocket
        self.agent_id = agent_id
        self.actor = actor
        self.connection_id = uuid.uuid4()
        self._sessions = sessions
        self._pool = pool
        self._hub = hub
        self._wake_matcher = wake_matcher
        self._presence = presence
        self._heartbeat_seconds = heartbeat_seconds
        self._lease = lease
        self._open_desks = open_desks
        self._replies = replies
        self._outbox = outbox
        self._notices = notices
        self._link_base = link_base
        self._lease_id: uuid.UUID | None = None
        self._chats = ChatSide(agent_id, pool=pool, hub=hub)

    async def serve(self) -> None:
        desk: Desk = SocketSession(
            self.websocket,
            hub=self._hub,
            # Subscribed before the replay reads anything, so that nothing falls in between.
            subscription=self._hub.subscribe_agent(str(self.agent_id)),
            pool=self._pool,
            frame_for=self._frame_for,
            heartbeat=Heartbeat(every=self._heartbeat_seconds),
            context={"agent_id": str(self.agent_id)},
            ends_session=self._ends_desk,
        )
        # The conversation ends with SessionClosed, which the session absorbs: the agent left,
        # or the session closed the socket (a desk too slow to read, a busy database).
        async with desk:
            self._chats.listen(desk)
            try:
                await self._converse(desk)
            finally:
                self._chats.stop()
                if self._lease_id is not None:
                    self._open_desks.closed(self._lease_id, desk)
                await self._leave()

    async def _frame_for(self, db: Reader, event: EventRecord) -> DeskFrame | None:
        frame = await frames.frame_for(db, event)
        if frame is not None:
            await self._chats.framed(event)
        return frame

    async def _converse(self, desk: Desk) -> None:
        # Before the agent takes the desk over or anything is replayed.
        hello = await desk.hello(Hello)
        try:
            await self._open(desk)
        except (TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            desk.close(DATABASE_BUSY)
            raise SessionClosed from None
        await desk.replay(self._replay(desk), hello.last_event_id)
        while True:
            message = self._parse(desk, await desk.receive())
            if message is not None:
                await self._handle(desk, message)

    def _ends_desk(self, event: EventRecord) -> Closing | None:
        """REPLACED once a newer socket of this agent has taken the desk over; LOGGED_OUT once
        a supervisor has logged the agent out."""
        if event.kind == "agent.state_changed":
            forced_out = event.payload.get("forced") and event.payload.get("to") == "offline"
            return LOGGED_OUT if forced_out else None
        if event.kind != DESK_OPENED:
            return None
        return None if event.payload.get("connection_id") == str(self.connection_id) else REPLACED

    def _replay(self, desk: Desk) -> Replay[DeskFrame]:
        agent_id = self.agent_id

        async def missed(connection: asyncpg.Connection, after: int) -> list[EventRecord]:
            return await frames.missed_events(connection, agent_id, after)

        async def holds(connection: asyncpg.Connection) -> list[DeskFrame]:
            return await frames.current_frames(connection, agent_id)

        def ready(last_event_id: int) -> DeskFrame:
            return ReadyFrame(
                agent_id=agent_id,
                last_event_id=last_event_id,
                heartbeat_seconds=desk.heartbeat.every,
            )

        return Replay(missed=missed, holds=holds, ready=ready)

    async def _open(self, desk: Desk) -> None:
        """Take the desk over: this socket is the agent's from now on, and the event says so to
        the socket it replaces, if any (here by the hub's publish, elsewhere by its NOTIFY).
        The desk is counted under this replica's lease before the row says so: a lapse from
        here on closes it."""
        self._lease_id = self._lease.id
        self._open_desks.opened(self._lease_id, desk)
        events = Events()
        events.add(
            DESK_OPENED,
            subject_type="agent",
            subject_id=self.agent_id,
            actor=self.actor,
            payload={"connection_id": str(self.connection_id)},
        )
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as connection:
            async with connection.transaction():
                await connection.execute(
                    "UPDATE agents SET connection_id = $2 WHERE id = $1",
                    self.agent_id,
                    self.connection_id,
                )
                await connection.execute(SEEN_NOW, self.agent_id, now(), self._lease_id)
                await events.write(connection)
            self._hub.publish(events.written)

    async def _leave(self) -> None:
        """Leave routing unless a newer socket of the same agent has taken over."""
        with contextlib.suppress(Exception):
            events = Events()
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as connection:
                async with connection.transaction():
                    await self._release(connection, events)
                self._hub.publish(events.written)
            self._wake_matcher()

    async def _release(self, connection: asyncpg.Connection, events: Events) -> None:
        claimed = await connection.fetchrow(
            "UPDATE agents SET connection_id = NULL WHERE id = $1 AND connection_id = $2"
            " RETURNING state, state_reason",
            self.agent_id,
            self.connection_id,
        )
        # Offline already (logged out by a supervisor, or by itself), it has left routing, and
        # keeps the reason it was given.
        if claimed is None or claimed["state"] == AgentState.offline.value:
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

    def _parse(self, desk: Desk, raw: str) -> AgentMessage | None:
        try:
            return agent_message.validate_json(raw)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}"
                for e in error.errors()
            )
            desk.send(ErrorFrame(error="validation_error", detail=problems))
            return None

    async def _handle(self, desk: Desk, message: AgentMessage) -> None:
        self._presence.seen(self.agent_id)
        match message:
            case Hello() | HeartbeatMessage():
                return  # a sign of life, with nothing to answer
            case Typing():
                # A sign, not an action: not answered, and a failure is not worth an error.
                with contextlib.suppress(
                    asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError
                ):
                    await self._chats.typing(message)
            case (
                SetState()
                | Accept()
                | Reject()
                | Complete()
                | EndWrapUp()
                | Reply()
                | MarkRead()
                | RaiseComplaint()
            ):
                await self._act(desk, message)
            case _:
                assert_never(message)

    async def _act(self, desk: Desk, action: AgentAction) -> None:
        """Carry out an action and answer it: an ack once done, else an error."""
        try:
            await self._apply(desk, action)
        except AppError as error:
            desk.send(ErrorFrame(of=action.type, error=error.code, detail=error.detail))
            return
        except (
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            SQLAlchemyError,
            TimeoutError,
        ) as error:
            # A deadlock or a busy pool fails this action, not the desk: the agent may retry.
            log.warning("desk message failed", agent_id=str(self.agent_id), error=repr(error))
            desk.send(
                ErrorFrame(of=action.type, error="try_again", detail="the database was busy; retry")
            )
            return
        if not isinstance(action, Reply | MarkRead | RaiseComplaint):  # these free no capacity
            self._wake_matcher()

    async def _apply(self, desk: Desk, action: AgentAction) -> None:
        if isinstance(action, Reply):
            desk.send(AckFrame(of=action.type, detail=await self._reply(action)))
            return
        if isinstance(action, MarkRead):
            desk.send(AckFrame(of=action.type, detail=await self._chats.read(action)))
            return
        if isinstance(action, RaiseComplaint):
            desk.send(AckFrame(of=action.type, detail=await self._raise_complaint(action)))
            return
        events = Events()
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as connection:
            if isinstance(action, Accept | Complete):  # one autocommitted call each: no BEGIN
                detail = await self._decide(connection, events, action)
            else:
                async with connection.transaction():
                    detail = await self._decide(connection, events, action)
                    await events.write(connection)
            # The answer first, then the frames of what it caused; both before the connection
            # goes back, as this pool's commits send no NOTIFY (EventHub.own). `send` does not
            # wait: a desk slow to read never keeps this connection from the others.
            desk.send(AckFrame(of=action.type, detail=detail))
            self._hub.publish(events.written)

    async def _decide(
        self, connection: asyncpg.Connection, events: Events, action: RoutingAction
    ) -> dict[str, Any]:
        agent_id, actor = self.agent_id, self.actor
        match action:
            case SetState():
                return await self._set_state(connection, events, action)
            case Accept(offer_id=offer_id):
                taken = await routing.accept_offer(
                    connection, events, offer_id, agent_id=agent_id, actor=actor
                )
                return {"offer_id": str(offer_id), "interaction_id": str(taken)}
            case Reject(offer_id=offer_id, reason=reason):
                await routing.reject_offer(
                    connection, events, offer_id, agent_id=agent_id, reason=reason, actor=actor
                )
                return {"offer_id": str(offer_id)}
            case Complete(interaction_id=interaction_id):
                state = await routing.complete(
                    connection,
                    events,
                    interaction_id,
                    disposition=action.disposition,
                    notes=action.notes,
                    agent_id=agent_id,
                    actor=actor,
                )
                return {"interaction_id": str(interaction_id), "state": state.value}
            case EndWrapUp(interaction_id=interaction_id):
                state = await routing.end_wrap_up(
                    connection,
                    events,
                    interaction_id,
                    agent_id=agent_id,
                    actor=actor,
                    disposition=action.disposition,
                    notes=action.notes,
                )
                return {"interaction_id": str(interaction_id), "state": state.value}
            case _:
                assert_never(action)

    async def _reply(self, action: Reply) -> dict[str, Any]:
        """The reply stored and in the outbox once this commits; its events published and the
        courier woken after the commit, so it goes at once (pending until the relay takes it).
        Its events name no agent, so no frame of this desk follows the ack."""
        async with unit_of_work(self._sessions, hub=self._hub, outbox=self._outbox) as session:
            sent = await self._replies(
                session,
                action.interaction_id,
                action.text,
                agent_id=self.agent_id,
                actor=self.actor,
            )
        return {
            "interaction_id": str(action.interaction_id),
            "message_id": str(sent.message_id),
            "channel_message_id": sent.channel_message_id,
            "delivery": "pending",
        }

    async def _raise_complaint(self, action: RaiseComplaint) -> dict[str, Any]:
        """As `POST /v1/complaints` by this agent: the complaint is the agent's, and its
        acknowledgement goes on the customer's channel (a mail wakes the courier after the
        commit) or waits for the agent to read it out (a call)."""
        who = acts.Who(Actor.agent, self.actor, self.agent_id)
        context = acts.Context(now=now(), notices=self._notices, link_base=self._link_base)
        data = ComplaintRaise(
            interaction_id=action.interaction_id,
            summary=action.summary,
            original_message=action.original_message,
            remedy_sought=action.remedy_sought,
            severity=action.severity,
        )
        async with unit_of_work(self._sessions, hub=self._hub, outbox=self._outbox) as session:
            complaint = await complaints.raise_complaint(session, data, who, context)
        return {
            "complaint_id": str(complaint.id),
            "reference": complaint.reference,
            "step": complaint.step,
            "acknowledged_by": complaint.acknowledged_by,
            "acknowledgement": complaint.acknowledgement,
        }

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
