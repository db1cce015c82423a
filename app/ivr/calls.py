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
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.agents.models import Agent
from app.core.channels import Channel
from app.core.db import Wakes, driver_connection, unit_of_work
from app.core.errors import IllegalTransition, InvalidField, NotFound
from app.core.events import Event, events_of
from app.core.hub import EventHub
from app.core.logging import get_logger
from app.core.outbox import enqueue_in, http_message
from app.core.settings import Settings
from app.customers import service as customers
from app.customers.models import ContactKind, Customer
from app.customers.schemas import CustomerCreate
from app.interactions.intake import Intake, Place
from app.interactions.models import Interaction, InteractionState
from app.interactions.schemas import ContactIn, InteractionCreate, IvrLearned
from app.ivr import announcements, engine
from app.ivr.actions import Action, Connect, Hangup, Hold, Language
from app.ivr.engine import (
    CallbackRequested,
    CallFacts,
    CallState,
    Enqueue,
    EventOutOfTurn,
    HoursNow,
    HungUp,
    Learned,
    Step,
    Transferred,
    VoicemailLeft,
)
from app.ivr.flow import CollectNode, Flow
from app.ivr.models import Call, CallPhase, Gateway
from app.ivr.numbers import dialled
from app.ivr.service import flow_for_call, flow_version
from app.ivr.twilio_api import TwilioAccount, redirect_call_request
from app.ivr.twiml import CallbackUrls, render_twiml
from app.queues.hours import QueueStatus, next_opening, status_at
from app.queues.models import Queue
from app.queues.service import calendar_of, hours_of
from app.routing import figures
from app.routing import service as routing

log = get_logger(__name__)

ACTIONS = TypeAdapter(list[Action])
DELIVERIES_KEPT = 20  # a retry comes soon after its first delivery: the latest are enough
# The generic format has no way for us to call the gateway, so its wait loop is how it learns
# that an agent took the call: it asks again this often. Twilio's live call is redirected the
# moment an agent accepts (`bridge`), so its loop comes back only to announce.
GENERIC_RECHECK_SECONDS = 3


class UnknownCall(NotFound):
    code = "unknown_call"


@dataclass(frozen=True, slots=True)
class Answer:
    """What the gateway does next: `actions` in order, for the call's `turn` (Twilio's callback
    URLs carry it). `repeat`: a delivery seen before, answered as then."""

    call_id: uuid.UUID
    call_ref: str
    turn: int
    actions: list[Action]
    repeat: bool = False


class AgentLeg:
    """How the agent's leg of a `connect` ended."""

    answered_and_over = "completed"
    busy = "busy"
    no_answer = "no_answer"
    failed = "failed"

    NEVER_ANSWERED = frozenset({busy, no_answer, failed, "canceled"})


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
        self._intake, self._settings, self._wake_matcher = intake, settings, wake_matcher
        # A version's document never changes once saved, so it is read once per replica.
        self._flows: dict[tuple[uuid.UUID, int], Flow] = {}

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
            known = await _call_by_ref(session, gateway, call_ref)
            if known is not None:
                return _repeat(known)
            region = self._settings.default_phone_region
            found = await flow_for_call(session, dialled_number, default_region=region)
            self._flows[(found.flow_id, found.version)] = found.flow
            number = _calling_number(caller, region)
            customer = None
            if number is not None:
                customer = await customers.find_by_contact(
                    session, ContactKind.phone, number, region=region
                )
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
            session.add(call)
            facts = await self._facts(session, found.flow, call, customer)
            step = engine.begin(found.flow, facts)
            answer = await self._after_step(session, call, found.flow, step, actor)
            queued = _queued_now(call)
        await self._connect_if_taken(queued)
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
            call = await _locked(session, call_key)
            if _seen(call, call_key, delivery):
                return _repeat(call)
            if call.phase is not CallPhase.ivr:
                raise EventOutOfTurn(f"the call is {call.phase.value}: it has left its IVR flow")
            flow = await self._flow(session, call)
            customer = await _customer(session, call.customer_id)
            facts = await self._facts(session, flow, call, customer)
            state = CallState.model_validate(call.engine_state)
            step = engine.advance(flow, state, event, facts)
            await self._identify_by_account(session, call, flow, step)
            _note(call, delivery)
            answer = await self._after_step(session, call, flow, step, actor)
            queued = _queued_now(call)
        await self._connect_if_taken(queued)
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
            call = await _locked(session, call_key)
            if _seen(call, call_key, delivery):
                return _repeat(call)
            _note(call, delivery)
            if call.phase is CallPhase.connecting or call.phase is CallPhase.talking:
                return _repeat(call)  # redirected to its agent already: the same connect
            if call.phase is not CallPhase.queued or call.interaction_id is None:
                return _answer(call, [Hangup()])
            interaction = await session.get(Interaction, call.interaction_id)
            assert interaction is not None, "a call's interaction is never deleted"
            state = interaction.state
            if state is InteractionState.assigned and interaction.agent_id is not None:
                return await self._connect(session, call, interaction.agent_id)
            if state not in (InteractionState.queued, InteractionState.offered):
                _end(call, "abandoned" if state is InteractionState.abandoned else "answered")
                return _answer(call, [Hangup()])
            if digits and digits == call.callback_key and call.calling_number is not None:
                return await self._turn_into_callback(session, call, actor)
            return _answer(call, [await self._holding(session, call, interaction)])

    async def agent_answered(self, call_key: CallKey, *, delivery: str | None) -> Answer:
        """The agent's phone picked up: the talk has begun."""
        async with self._work() as session:
            call = await _locked(session, call_key)
            if call.phase is CallPhase.connecting:
                call.phase = CallPhase.talking
            _note(call, delivery)
            return Answer(call.id, call.call_ref, call.turn, [])

    async def agent_leg_ended(
        self, call_key: CallKey, how: str, *, delivery: str | None, actor: str
    ) -> Answer:
        """The agent's leg ended. Never answered: the call goes back to its queue with its
        place, and the agent is treated as having missed the offer. Answered: the talk is over,
        the agent goes to wrap-up and the call ends."""
        async with self._work() as session:
            call = await _locked(session, call_key)
            if _seen(call, call_key, delivery):
                return _repeat(call)
            _note(call, delivery)
            if call.phase not in (CallPhase.connecting, CallPhase.talking):
                return _repeat(call)
            assert call.interaction_id is not None, "a call with an agent leg was enqueued"
            connection, events = await driver_connection(session), events_of(session)
            if how in AgentLeg.NEVER_ANSWERED and call.phase is CallPhase.connecting:
                agent_id, call.agent_id = call.agent_id, None
                call.phase = CallPhase.queued
                if agent_id is not None:
                    await _tolerating_moves(
                        routing.return_unanswered(
                            connection,
                            events,
                            call.interaction_id,
                            agent_id=agent_id,
                            actor=actor,
                            reason=f"the agent's phone did not answer ({how})",
                        )
                    )
                self._wake_matcher()
                interaction = await session.get(Interaction, call.interaction_id)
                assert interaction is not None
                flow = await self._flow(session, call)
                language, voice = _language_of(call, flow)
                sorry = announcements.agent_unreachable(language, voice)
                return _answer(call, [sorry, await self._holding(session, call, interaction)])
            await _tolerating_moves(
                routing.end_talk(connection, events, call.interaction_id, actor=actor)
            )
            _end(call, "answered", cause="completed")
            return _answer(call, [Hangup()])

    async def call_ended(
        self, call_key: CallKey, *, cause: str, delivery: str | None, actor: str
    ) -> None:
        """The caller's call ended (they hung up, or it was transferred away). Told twice, or for
        a call that has ended already, it changes nothing."""
        async with self._work() as session:
            call = await _locked(session, call_key)
            if call.phase is CallPhase.ended:
                return
            _note(call, delivery)
            connection, events = await driver_connection(session), events_of(session)
            match call.phase:
                case CallPhase.ivr:
                    flow = await self._flow(session, call)
                    state = CallState.model_validate(call.engine_state)
                    step = engine.advance(flow, state, engine.CallerHungUp(), CallFacts())
                    assert step.outcome is not None
                    call.engine_state = step.state.model_dump(mode="json")
                    call.learned = step.outcome.learned.model_dump(mode="json")
                    _end(call, "hang_up", cause=cause)
                case CallPhase.queued:
                    assert call.interaction_id is not None
                    await _tolerating_moves(
                        routing.abandon_waiting(
                            connection, events, call.interaction_id, actor=actor
                        )
                    )
                    _end(call, "abandoned", cause=cause)
                case CallPhase.connecting | CallPhase.talking:
                    assert call.interaction_id is not None
                    await _tolerating_moves(
                        routing.end_talk(connection, events, call.interaction_id, actor=actor)
                    )
                    talked = call.phase is CallPhase.talking
                    _end(call, "answered" if talked else "abandoned", cause=cause)
            self._wake_matcher()

    async def bridge(self, interaction_id: uuid.UUID, agent_id: uuid.UUID, event_id: int) -> bool:
        """An agent accepted a call's offer: tell its gateway to connect the caller to the
        agent's voice endpoint. Every replica hears the acceptance and may run this; the call's
        lock and phase let one through, and the outbox's key sends its message once. Returns
        whether this run connected it."""
        async with self._work() as session:
            call = await _call_of_interaction(session, interaction_id)
            if call is None or call.phase is not CallPhase.queued:
                return False
            answer = await self._connect(session, call, agent_id)
            if not answer.repeat and call.gateway is Gateway.twilio:  # it rings the agent
                await self._redirect_live_call(session, call, answer, event_id)
            return True

    async def _connect_if_taken(self, interaction_id: uuid.UUID | None) -> None:
        """Intake commits a call's interaction (and may offer it) before the request that queued
        it commits the call: an agent who accepts at once is heard by the bridge while there is
        no call to connect yet. Once the call is committed, connect it if an agent has it."""
        if interaction_id is None:
            return
        async with self._sessions() as session:
            agent_id = await session.scalar(
                select(Interaction.agent_id).where(
                    Interaction.id == interaction_id,
                    Interaction.state == InteractionState.assigned,
                )
            )
            if agent_id is None:
                return
            # The acceptance's event names the outbox message, as when the bridge heard it.
            accepted = await session.scalar(
                select(func.max(Event.id)).where(
                    Event.subject_type == "interaction",
                    Event.subject_id == str(interaction_id),
                    Event.kind == "interaction.assigned",
                )
            )
        await self.bridge(interaction_id, agent_id, accepted or 0)

    # the steps

    async def _after_step(
        self, session: AsyncSession, call: Call, flow: Flow, step: Step, actor: str
    ) -> Answer:
        """The step's state kept and its outcome, if any, carried out: the actions to answer."""
        call.engine_state = step.state.model_dump(mode="json")
        actions: list[Action] = list(step.actions)
        outcome = step.outcome
        if outcome is None:
            return _answer(call, actions)
        call.learned = outcome.learned.model_dump(mode="json")
        match outcome:
            case Enqueue():
                actions.append(await self._enqueue(session, call, outcome, actor))
            case CallbackRequested():
                await self._callback(session, call, outcome, outcome.number, actor)
                _end(call, "callback")
            case VoicemailLeft():
                await self._voicemail(session, call, outcome, actor)
                _end(call, "voicemail")
            case Transferred():
                _end(call, "transfer")
            case HungUp():
                _end(call, "hang_up", cause="caller_hung_up" if outcome.by == "caller" else None)
        return _answer(call, actions)

    async def _enqueue(
        self, session: AsyncSession, call: Call, outcome: Enqueue, actor: str
    ) -> Action:
        """The call becomes an interaction in its queue; the caller holds."""
        data = InteractionCreate(
            channel=Channel.voice,
            queue=outcome.queue,
            external_ref=call.call_ref,
            priority=outcome.priority,
            skills=outcome.skills,
            subject=f"Call from {call.calling_number or call.caller or 'an unknown number'}",
            ivr=_ivr(outcome.learned),
            **await self._who(session, call, actor),
        )
        received = await self._intake.receive(data, actor=actor)
        interaction = received.interaction
        call.interaction_id, call.customer_id = interaction.id, interaction.customer_id
        call.phase, call.callback_key = CallPhase.queued, outcome.callback_key
        taken = await session.get(Interaction, interaction.id)
        assert taken is not None
        return await self._holding(session, call, taken)

    async def _who(self, session: AsyncSession, call: Call, actor: str) -> dict[str, Any]:
        """Who the interaction is for: the customer known, or the calling number (intake makes
        a new customer who keeps it), or, for a caller who hid their number, a new customer of
        their own (the agent learns who they are)."""
        if call.customer_id is not None:
            return {"customer_id": call.customer_id}
        if call.calling_number is not None:
            return {"contact": ContactIn(kind=ContactKind.phone, value=call.calling_number)}
        anonymous = await customers.create_customer(
            session,
            CustomerCreate(name="Caller with a hidden number"),
            settings=self._settings,
            actor=actor,
        )
        await session.flush()
        return {"customer_id": anonymous.id}

    async def _callback(
        self,
        session: AsyncSession,
        call: Call,
        outcome: CallbackRequested | VoicemailLeft,
        number: str,
        actor: str,
        *,
        place: Place | None = None,
        summary: str = "",
    ) -> None:
        """A `callback` interaction in the queue: the agent who gets it dials `number`."""
        who = await self._who(session, call, actor)
        data = InteractionCreate(
            channel=Channel.callback,
            queue=outcome.queue,
            external_ref=f"callback:{call.gateway.value}:{call.call_ref}",
            subject=f"Call back {number}",
            summary=summary,
            ivr=_ivr(outcome.learned),
            **who,
        )
        received = await self._intake.receive(data, actor=actor, place=place)
        call.interaction_id = call.interaction_id or received.interaction.id
        call.customer_id = received.interaction.customer_id

    async def _voicemail(
        self, session: AsyncSession, call: Call, outcome: VoicemailLeft, actor: str
    ) -> None:
        """A voicemail becomes a callback that waits for the queue's next opening."""
        moment = datetime.now(UTC)
        queue = await _queue_named(session, outcome.queue)
        opens = None if queue is None else next_opening(hours_of(queue), calendar_of(queue), moment)
        number = call.calling_number or call.caller
        await self._callback(
            session,
            call,
            outcome,
            number,
            actor,
            place=Place(waiting_since=moment, not_before=opens),
            summary=f"Voicemail: {outcome.recording_url}",
        )

    async def _turn_into_callback(self, session: AsyncSession, call: Call, actor: str) -> Answer:
        """The caller pressed the callback key while holding: the call ends in a state of its
        own (converted, neither answered nor abandoned) and a callback takes its place."""
        assert call.interaction_id is not None
        assert call.calling_number is not None
        connection, events = await driver_connection(session), events_of(session)
        waiting_since = await routing.convert_to_callback(
            connection, events, call.interaction_id, actor=actor
        )
        interaction = await session.get(Interaction, call.interaction_id)
        assert interaction is not None
        queue = await session.get(Queue, interaction.queue_id)
        assert queue is not None
        learned = Learned.model_validate(call.learned or {})
        request = CallbackRequested(queue=queue.name, number=call.calling_number, learned=learned)
        await self._callback(
            session,
            call,
            request,
            call.calling_number,
            actor,
            place=Place(waiting_since=waiting_since),
        )
        _end(call, "callback")
        self._wake_matcher()
        flow = await self._flow(session, call)
        language, voice = _language_of(call, flow)
        return _answer(call, [announcements.callback_confirmed(language, voice), Hangup()])

    async def _holding(self, session: AsyncSession, call: Call, interaction: Interaction) -> Hold:
        """The wait loop's next round: the caller's position and estimated wait when the queue's
        interval has passed since they were last told (the position never higher than told
        before: a platinum caller may have gone ahead), and the callback option."""
        queue = await session.get(Queue, interaction.queue_id)
        assert queue is not None
        every = queue.announce_every_seconds
        moment = datetime.now(UTC)
        flow = await self._flow(session, call)
        language, voice = _language_of(call, flow)
        prompts: list[Any] = []
        due = call.announced_at is None or moment - call.announced_at >= timedelta(seconds=every)
        if due:
            wait = await figures.read_caller_wait(
                await driver_connection(session), interaction.id, moment
            )
            if wait is not None:
                position = figures.announced_position(call.announced_position, wait.position)
                prompts += announcements.position_and_wait(
                    language, voice, position, wait.estimated
                )
                call.announced_position, call.announced_at = position, moment
            if call.callback_key is not None and call.calling_number is not None:
                prompts.append(announcements.callback_option(language, voice, call.callback_key))
        recheck = GENERIC_RECHECK_SECONDS if call.gateway is Gateway.generic else every
        listen_for = call.callback_key if call.calling_number is not None else None
        return Hold(prompts=prompts, recheck_seconds=recheck, listen_for=listen_for)

    async def _connect(self, session: AsyncSession, call: Call, agent_id: uuid.UUID) -> Answer:
        """Ring the agent's voice endpoint; an agent without one cannot take the call, which
        goes back to its queue (the agent counted as having missed it)."""
        agent = await session.get(Agent, agent_id)
        endpoint = None if agent is None else agent.voice_endpoint
        if endpoint is None:
            log.warning("agent took a call with no voice endpoint", agent_id=str(agent_id))
            assert call.interaction_id is not None
            await _tolerating_moves(
                routing.return_unanswered(
                    await driver_connection(session),
                    events_of(session),
                    call.interaction_id,
                    agent_id=agent_id,
                    actor="system:voice",
                    reason="the agent has no voice endpoint",
                )
            )
            self._wake_matcher()
            return _repeat(call)
        call.phase, call.agent_id = CallPhase.connecting, agent_id
        return _answer(call, [Connect(endpoint=endpoint)])

    async def _redirect_live_call(
        self, session: AsyncSession, call: Call, answer: Answer, event_id: int
    ) -> None:
        """Twilio's Calls API redirects the live call to the connect, through the outbox: written
        with the decision, sent after the commit, retried, visible when it fails."""
        account = TwilioAccount.from_settings(self._settings)
        base = self._settings.public_base_url
        if account is None or base is None:
            log.warning(
                "cannot redirect a Twilio call: CC_TWILIO_ACCOUNT_SID, CC_TWILIO_AUTH_TOKEN and "
                "CC_PUBLIC_BASE_URL are needed; the wait loop connects it at its next round",
                call_id=str(call.id),
            )
            return
        twiml = render_twiml(answer.actions, CallbackUrls(base, call.id, turn=answer.turn))
        request = redirect_call_request(account, call.call_ref, twiml=twiml)
        message = http_message(
            sender="twilio",
            method=request.method,
            url=request.url.removeprefix(account.api_url),
            form=request.form,
            dedupe_key=f"bridge:{call.interaction_id}:{event_id}",
            subject_type="call",
            subject_id=call.id,
        )
        await enqueue_in(session, message)

    # what the engine is told

    async def _facts(
        self, session: AsyncSession, flow: Flow, call: Call, customer: Customer | None
    ) -> CallFacts:
        moment = datetime.now(UTC)
        hours: dict[str, HoursNow] = {}
        names = flow.queues_named()
        if names:
            lowered = [name.lower() for name in names]
            found = await session.scalars(select(Queue).where(func.lower(Queue.name).in_(lowered)))
            for queue in found:
                status = status_at(hours_of(queue), calendar_of(queue), moment)
                hours[queue.name] = _hours_now(status)
        language = None
        if customer is not None and customer.language in {lang.value for lang in Language}:
            language = Language(customer.language)
        return CallFacts(
            calling_number=call.calling_number,
            tier=None if customer is None else customer.tier,
            language=language,
            hours={name: hours.get(name, HoursNow.open) for name in names},
        )

    async def _identify_by_account(
        self, session: AsyncSession, call: Call, flow: Flow, step: Step
    ) -> None:
        """An account number that passed its check names the customer, if we know it: the rest
        of the call (and its interaction) is theirs."""
        if not step.state.account_verified:
            return
        for node in flow.nodes.values():
            if isinstance(node, CollectNode) and node.account:
                value = step.state.variables.get(node.variable)
                if value is None:
                    continue
                customer = await customers.find_by_contact(
                    session, ContactKind.account, value, region=self._settings.default_phone_region
                )
                if customer is not None:
                    call.customer_id = customer.id
                return

    async def _flow(self, session: AsyncSession, call: Call) -> Flow:
        key = (call.flow_id, call.flow_version)
        if key not in self._flows:
            self._flows[key] = await flow_version(session, call.flow_id, call.flow_version)
        return self._flows[key]


@dataclass(frozen=True, slots=True)
class CallKey:
    """How a request names its call: our id (Twilio's callback URLs carry it) with the
    gateway's id it must match, or the gateway's id alone (status callbacks, generic events)."""

    gateway: Gateway
    call_ref: str
    call_id: uuid.UUID | None = None
    # The turn the request answers (Twilio's callback URLs carry it): an older one is a retry.
    turn: int | None = None


async def _locked(session: AsyncSession, key: CallKey) -> Call:
    """The call, locked for this event; 404 for a call we never saw (or one another gateway's
    request names)."""
    query = select(Call).where(Call.gateway == key.gateway, Call.call_ref == key.call_ref)
    if key.call_id is not None:
        query = query.where(Call.id == key.call_id)
    call = await session.scalar(query.with_for_update())
    if call is None:
        raise UnknownCall(
            f"no {key.gateway.value} call {key.call_ref!r}"
            + ("" if key.call_id is None else f" with id {key.call_id}")
            + ": a call starts with its incoming request"
        )
    return call


async def _call_by_ref(session: AsyncSession, gateway: Gateway, call_ref: str) -> Call | None:
    query = select(Call).where(Call.gateway == gateway, Call.call_ref == call_ref)
    return await session.scalar(query.with_for_update())


async def _call_of_interaction(session: AsyncSession, interaction_id: uuid.UUID) -> Call | None:
    query = select(Call).where(Call.interaction_id == interaction_id)
    return await session.scalar(query.with_for_update())


async def _customer(session: AsyncSession, customer_id: uuid.UUID | None) -> Customer | None:
    return None if customer_id is None else await session.get(Customer, customer_id)


async def _queue_named(session: AsyncSession, name: str) -> Queue | None:
    return await session.scalar(select(Queue).where(func.lower(Queue.name) == name.lower()))


async def _tolerating_moves(move: Any) -> None:
    """Carry out a routing move that a race may have made moot (the agent completed, the
    supervisor moved the work): the line's news is then history, not an error."""
    try:
        await move
    except IllegalTransition as error:
        log.info("a call's news found its interaction moved on", reason=str(error))


def _answer(call: Call, actions: Sequence[Action]) -> Answer:
    call.turn += 1
    call.last_answer = [action.model_dump(mode="json") for action in actions]
    return Answer(call.id, call.call_ref, call.turn, list(actions))


def _repeat(call: Call) -> Answer:
    return Answer(
        call.id, call.call_ref, call.turn, ACTIONS.validate_python(call.last_answer), True
    )


def _seen(call: Call, key: CallKey, delivery: str | None) -> bool:
    """A delivery applied before, or a request for a turn the call has left behind."""
    stale = key.turn is not None and key.turn != call.turn
    return stale or (delivery is not None and delivery in call.deliveries)


def _note(call: Call, delivery: str | None) -> None:
    if delivery is not None:
        call.deliveries = [*call.deliveries, delivery][-DELIVERIES_KEPT:]


def _queued_now(call: Call) -> uuid.UUID | None:
    """The interaction of a call waiting in its queue (None: the call is elsewhere)."""
    return call.interaction_id if call.phase is CallPhase.queued else None


def _end(call: Call, outcome: str, *, cause: str | None = None) -> None:
    call.phase, call.outcome = CallPhase.ended, outcome
    call.ended_at, call.end_cause = datetime.now(UTC), cause


def _calling_number(caller: str, region: str) -> str | None:
    """The caller's number in E.164, or None (a hidden number, a SIP address, `client:`)."""
    try:
        return dialled(caller, region)
    except InvalidField:
        return None


def _hours_now(status: QueueStatus) -> HoursNow:
    return HoursNow(status.value)


def _ivr(learned: Learned) -> IvrLearned:
    return IvrLearned.model_validate(learned.model_dump(mode="json"))


def _language_of(call: Call, flow: Flow) -> tuple[Language, str | None]:
    chosen = (call.learned or {}).get("language") or call.engine_state.get("language")
    language = Language(chosen) if chosen else flow.language
    return language, flow.voices.get(language)
