"""Live calls: what each thing a gateway tells us does to a call, whatever its wire format.

The wire formats (app/ivr/webhooks.py for Twilio's, app/ivr/call_events_api.py for the generic
JSON) translate a request into one of `Switchboard`'s calls and render its `Answer`:

    start          a call arrived: its flow (the dialled number's, kept for the whole call),
                   who is calling (the calling number, later an account number keyed in), and
                   the engine's first step
    respond        keys, silence or a recording, while the call is in its IVR flow
    hold           the wait loop came back (or the caller pressed a key while holding)
    agent_answered the agent's phone picked up
    agent_leg_ended the agent's leg ended: never answered (back to the queue, the agent counted
                   as having missed the offer) or the talk is over
    call_ended     the caller's call ended: inside the IVR (a call record with its path),
                   while waiting (abandoned), or during the talk (the agent to wrap-up)

and `bridge`, run when an agent accepts a call's offer (app/ivr/bridge.py), which tells the
gateway to connect the caller to the agent's voice endpoint.

A call becomes an interaction only at enqueue, through the one way in (`Intake.receive`, with
the call's id as its `external_ref` and what the IVR learned), so that service level and
abandonment count queue time only. Each call is one `calls` row, locked while an event is
applied: a gateway's retry finds the event among the call's `deliveries` (or an old `turn`)
and gets the last answer again, changing nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import Wakes, driver_connection, unit_of_work
from app.core.errors import IllegalTransition
from app.core.events import Event, events_of
from app.core.hub import EventHub
from app.core.logging import get_logger
from app.core.settings import Settings
from app.interactions.intake import Intake
from app.interactions.models import Interaction, InteractionState
from app.ivr import announcements, callbacks, callers, engine, wait_loop
from app.ivr import call_records as records
from app.ivr.actions import Action, Hangup
from app.ivr.agent_legs import WAITING, AgentLegs, FlowVersions
from app.ivr.call_records import AgentLeg, Answer, CallKey
from app.ivr.endings import Endings
from app.ivr.engine import (
    CallFacts,
    CallState,
    EventOutOfTurn,
    Step,
)
from app.ivr.flow import Flow, VoicemailNode
from app.ivr.models import Call, CallPhase, Gateway
from app.ivr.service import flow_for_call
from app.ivr.twilio_api import redirect_live_call
from app.routing import service as routing

log = get_logger(__name__)


class Switchboard:
    """The live calls of one replica (app.state.switchboard): each event in its own unit of
    work, committed before the gateway is answered."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        hub: EventHub,
        outbox: Wakes,
        intake: Intake,
        settings: Settings,
        wake_matcher: Callable[[], None],
    ) -> None:
        self._sessions, self._hub, self._outbox = sessions, hub, outbox
        self._settings, self._wake_matcher = settings, wake_matcher
        self._endings = Endings(intake, sessions, settings)
        self._flows = FlowVersions()
        self._legs = AgentLegs(settings, self._flows, wake_matcher)

    @asynccontextmanager
    async def _work(self) -> AsyncIterator[AsyncSession]:
        async with unit_of_work(self._sessions, hub=self._hub, outbox=self._outbox) as session:
            yield session

    # the calls

    async def start(
        self, gateway: Gateway, call_ref: str, *, caller: str, dialled_number: str, actor: str
    ) -> Answer:
        """A call arrived: the first step of its number's flow. A start told twice (a retry)
        answers as the first time."""
        async with self._work() as session:
            known = await records.by_ref(session, gateway, call_ref)
            if known is not None:
                return records.repeat(known)
            region = self._settings.default_phone_region
            found = await flow_for_call(session, dialled_number, default_region=region)
            self._flows.keep(found.flow_id, found.version, found.flow)
            number = callers.calling_number(caller, region)
            customer = await callers.by_number(session, number, region)
            call = Call(
                id=uuid.uuid4(),
                gateway=gateway,
                call_ref=call_ref,
                caller=caller,
                calling_number=number,
                dialled=dialled_number,
                customer_id=None if customer is None else customer.id,
                flow_id=found.flow_id,
                flow_version=found.version,
                phase=CallPhase.ivr,
                engine_state={},
                turn=0,
                last_answer=[],
                deliveries=[],
            )
            if not await records.claim(session, call):
                known = await records.by_ref(session, gateway, call_ref)
                assert known is not None, "the delivery that won has committed it"
                return records.repeat(known)
            facts = await callers.facts(session, found.flow, call, customer)
            step = engine.begin(found.flow, facts)
            answer, waiting = await self._after_step(session, call, found.flow, step, actor)
        await self._connect_if_taken(waiting)
        return answer

    async def respond(
        self,
        call_key: CallKey,
        event: engine.DigitsEntered | engine.NoInput | engine.RecordingDone,
        *,
        delivery: str | None,
        actor: str,
    ) -> Answer:
        """Keys, silence or a recording while the call is in its IVR flow."""
        async with self._work() as session:
            call = await records.locked(session, call_key)
            if records.seen(call, call_key, delivery):
                return records.repeat(call)
            flow = await self._flows.of(session, call)
            if call.phase is not CallPhase.ivr and not _recording_after_hang_up(call, flow, event):
                raise EventOutOfTurn(f"the call is {call.phase.value}: it has left its IVR flow")
            customer = await callers.customer_of(session, call.customer_id)
            facts = await callers.facts(session, flow, call, customer)
            state = CallState.model_validate(call.engine_state)
            step = engine.advance(flow, state, event, facts)
            await callers.identify_by_account(
                session, call, flow, step.state, self._settings.default_phone_region
            )
            records.note(call, delivery)
            answer, waiting = await self._after_step(session, call, flow, step, actor)
        await self._connect_if_taken(waiting)
        return answer

    async def keys(
        self, call_key: CallKey, digits: str, *, delivery: str | None, actor: str
    ) -> Answer:
        """Keys (or silence: none) from a gateway that does not say which step they answer:
        the IVR's question while the call is in its flow, else the wait loop's callback key."""
        async with self._sessions() as session:
            phase = await session.scalar(
                select(Call.phase).where(
                    Call.gateway == call_key.gateway, Call.call_ref == call_key.call_ref
                )
            )
        if phase is CallPhase.ivr:
            event = engine.DigitsEntered(digits=digits) if digits else engine.NoInput()
            return await self.respond(call_key, event, delivery=delivery, actor=actor)
        return await self.hold(call_key, digits=digits, delivery=delivery, actor=actor)

    async def hold(
        self, call_key: CallKey, *, digits: str, delivery: str | None, actor: str
    ) -> Answer:
        """The wait loop came back: connect the caller if an agent took the call, turn the wait
        into a callback if the caller pressed its key, else hold on with the figures when due."""
        async with self._work() as session:
            call = await records.locked(session, call_key)
            if records.seen(call, call_key, delivery):
                return records.repeat(call)
            records.note(call, delivery)
            if call.phase is CallPhase.connecting or call.phase is CallPhase.talking:
                return records.repeat(call)  # redirected to its agent already: the same connect
            if call.phase is not CallPhase.queued or call.interaction_id is None:
                return records.answer(call, [Hangup()])
            interaction = await session.get(Interaction, call.interaction_id)
            assert interaction is not None, "a call's interaction is never deleted"
            state = interaction.state
            if state is InteractionState.assigned and interaction.agent_id is not None:
                connected = await self._legs.connect(session, call, interaction.agent_id)
                if connected is not None:
                    return connected
                await session.refresh(interaction)  # given back to its queue
                state = interaction.state
            if state not in WAITING:
                records.end(
                    call, "abandoned" if state is InteractionState.abandoned else "answered"
                )
                return records.answer(call, [Hangup()])
            if digits and digits == call.callback_key and call.calling_number is not None:
                return await self._turn_into_callback(session, call, actor)
            return records.answer(call, [await self._legs.next_round(session, call, interaction)])

    async def agent_answered(self, call_key: CallKey, *, delivery: str | None) -> Answer:
        """The agent's phone picked up: the talk has begun."""
        async with self._work() as session:
            call = await records.locked(session, call_key)
            if call.phase is CallPhase.connecting:
                call.phase = CallPhase.talking
            records.note(call, delivery)
            return Answer(call.id, call.call_ref, call.turn, [])

    async def agent_leg_ended(
        self, call_key: CallKey, how: str, *, delivery: str | None, actor: str
    ) -> Answer:
        """The agent's leg ended. Never answered: the call goes back to its queue with its
        place, and the agent is treated as having missed the offer. Answered: the talk is over,
        the agent goes to wrap-up and the call ends."""
        async with self._work() as session:
            call = await records.locked(session, call_key)
            if records.seen(call, call_key, delivery):
                return records.repeat(call)
            records.note(call, delivery)
            if call.phase not in (CallPhase.connecting, CallPhase.talking):
                return records.repeat(call)
            assert call.interaction_id is not None, "a call with an agent leg was enqueued"
            if how in AgentLeg.NEVER_ANSWERED and call.phase is CallPhase.connecting:
                return await self._legs.unanswered(session, call, how, actor)
            return await self._legs.talk_over(session, call, actor)

    async def call_ended(
        self, call_key: CallKey, *, cause: str, delivery: str | None, actor: str
    ) -> None:
        """The caller's call ended (they hung up, or it was transferred away). Told twice, or for
        a call that has ended already, it changes nothing."""
        async with self._work() as session:
            call = await records.locked(session, call_key)
            if call.phase is CallPhase.ended:
                return
            records.note(call, delivery)
            if call.phase is CallPhase.ivr:  # the path so far, for containment figures
                flow = await self._flows.of(session, call)
                state = CallState.model_validate(call.engine_state)
                if _at_voicemail(flow, call):
                    # A caller ends a message by hanging up: its recording may come after this.
                    records.end(call, "hang_up", cause=cause)
                    return
                step = engine.advance(flow, state, engine.CallerHungUp(), CallFacts())
                assert step.outcome is not None
                call.engine_state = step.state.model_dump(mode="json")
                call.learned = step.outcome.learned.model_dump(mode="json")
                records.end(call, "hang_up", cause=cause)
                return
            await self._caller_gone(session, call, cause, actor)
            self._wake_matcher()

    async def _caller_gone(self, session: AsyncSession, call: Call, cause: str, actor: str) -> None:
        """The caller hung up after the IVR: abandoned while waiting or offered (in the queue
        the flow chose, or one an agent transferred the call to), else the talk is over."""
        assert call.interaction_id is not None, "a call past its IVR was enqueued"
        interaction = await session.get(Interaction, call.interaction_id)
        assert interaction is not None
        connection, events = await driver_connection(session), events_of(session)
        if interaction.state in WAITING:
            try:
                await routing.abandon_waiting(connection, events, interaction.id, actor=actor)
                records.end(call, "abandoned", cause=cause)
                return
            except IllegalTransition:  # an agent accepted it as the caller hung up
                await session.refresh(interaction)
        await records.tolerating_moves(
            routing.end_talk(connection, events, interaction.id, actor=actor)
        )
        records.end(
            call, "answered" if call.phase is CallPhase.talking else "abandoned", cause=cause
        )

    async def bridge(self, interaction_id: uuid.UUID, agent_id: uuid.UUID, event_id: int) -> bool:
        """An agent accepted a call's offer: tell its gateway to connect the caller to the
        agent's voice endpoint. Every replica hears the acceptance and may run this; the call's
        lock and phase let one through, and the outbox's key sends its message once. Returns
        whether this run connected it."""
        async with self._work() as session:
            call = await records.of_interaction(session, interaction_id)
            if call is None or call.phase is CallPhase.ended:  # perhaps a callback to place
                return await callbacks.place(
                    session, self._settings, interaction_id, agent_id, event_id
                )
            if call.phase is not CallPhase.queued:
                return False
            answer = await self._legs.connect(session, call, agent_id)
            if answer is None:
                return False
            if call.gateway is Gateway.twilio:
                key = f"bridge:{call.interaction_id}:{event_id}"
                await redirect_live_call(
                    session, self._settings, call.id, call.call_ref, answer, dedupe_key=key
                )
            return True

    async def _connect_if_taken(self, interaction_id: uuid.UUID | None) -> None:
        """Intake commits a call's interaction (and may offer it) on its own connection before
        the request that queued it commits the call: an agent quick to accept is heard by the
        bridge while there is no call to connect yet. Once the call is committed, connect it if
        an agent has it (the call's lock and phase still let one connect through)."""
        if interaction_id is None:
            return
        async with self._sessions() as session:
            taken = await session.scalar(
                select(Interaction.agent_id).where(
                    Interaction.id == interaction_id,
                    Interaction.state == InteractionState.assigned,
                )
            )
            if taken is None:
                return
            # The acceptance's event keys the outbox message, as when the bridge heard it.
            accepted = await session.scalar(
                select(func.max(Event.id)).where(
                    Event.subject_type == "interaction",
                    Event.subject_id == str(interaction_id),
                    Event.kind == "interaction.assigned",
                )
            )
        await self.bridge(interaction_id, taken, accepted or 0)

    # the steps

    async def _after_step(
        self, session: AsyncSession, call: Call, flow: Flow, step: Step, actor: str
    ) -> tuple[Answer, uuid.UUID | None]:
        """The step's state kept and its outcome, if any, carried out: the actions to answer,
        and the interaction the call now waits for (offered at once by intake, or by a pass
        intake woke, an agent may take it before this commits: `_connect_if_taken` looks once
        it has)."""
        call.engine_state = step.state.model_dump(mode="json")
        actions: list[Action] = list(step.actions)
        waiting = None
        if step.outcome is not None:
            holding = await self._endings.carry_out(session, call, step.outcome, actor)
            if holding is not None:
                waiting = holding.id
                actions.append(await self._legs.next_round(session, call, holding))
        return records.answer(call, actions), waiting

    async def _turn_into_callback(self, session: AsyncSession, call: Call, actor: str) -> Answer:
        """The caller pressed the callback key while holding: a callback takes their place
        (unless an agent took the call as the key was pressed: then the caller is connected)."""
        try:
            await self._endings.turn_into_callback(session, call, actor)
        except IllegalTransition:
            assert call.interaction_id is not None
            interaction = await session.get(Interaction, call.interaction_id)
            assert interaction is not None
            await session.refresh(interaction)
            if interaction.agent_id is not None:
                connected = await self._legs.connect(session, call, interaction.agent_id)
                if connected is not None:
                    return connected
            return records.answer(call, [await self._legs.next_round(session, call, interaction)])
        self._wake_matcher()
        language, voice = wait_loop.language_of(call, await self._flows.of(session, call))
        return records.answer(call, [announcements.callback_confirmed(language, voice), Hangup()])


def _at_voicemail(flow: Flow, call: Call) -> bool:
    """Whether the call's IVR waits for a voicemail's recording."""
    return isinstance(flow.nodes.get(call.engine_state.get("node") or ""), VoicemailNode)


def _recording_after_hang_up(call: Call, flow: Flow, event: object) -> bool:
    """A recording that comes after its caller hung up (which ends a message): still kept."""
    hung_up = call.phase is CallPhase.ended and call.outcome == "hang_up"
    return hung_up and isinstance(event, engine.RecordingDone) and _at_voicemail(flow, call)
