"""Where a call's IVR part ends: into a queue, a callback, a voicemail, a transfer, a hang-up.

Only an enqueue or a callback makes an interaction, through the one way in (`Intake.receive`):
a call is counted in a queue's figures from the moment it waits there, never for its time in
the IVR. A call that ends inside the IVR stays a call record with its path and its outcome
(`calls.outcome`), for containment figures.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.channels import Channel
from app.core.db import driver_connection
from app.core.events import events_of
from app.core.settings import Settings
from app.interactions.intake import Intake, Place
from app.interactions.models import Interaction
from app.interactions.schemas import InteractionCreate, IvrLearned
from app.ivr import call_records as records
from app.ivr import callbacks, callers
from app.ivr.engine import (
    CallbackRequested,
    Enqueue,
    HungUp,
    Learned,
    Outcome,
    Transferred,
    VoicemailLeft,
)
from app.ivr.models import Call, CallPhase
from app.queues.hours import next_opening
from app.queues.models import Queue
from app.queues.service import calendar_of, hours_of
from app.routing import service as routing
from app.tickets import service as complaints

# A complaint the caller raised with the IVR's complaints option, until the agent takes it.
COMPLAINT_BY_PHONE = "Complaint by phone"
COMPLAINT_WORDS = (
    "The caller chose the complaints option: take down their complaint in their words and"
    " what they ask for, then complete the intake."
)


class Endings:
    """Carries out the outcomes of one replica's calls (the switchboard's)."""

    def __init__(
        self, intake: Intake, sessions: async_sessionmaker[AsyncSession], settings: Settings
    ) -> None:
        self._intake, self._sessions, self._settings = intake, sessions, settings

    async def carry_out(
        self, session: AsyncSession, call: Call, outcome: Outcome, actor: str
    ) -> Interaction | None:
        """What the IVR learned kept with the call, and its outcome carried out; the interaction
        the caller now waits for in a queue, if it was an enqueue."""
        call.learned = outcome.learned.model_dump(mode="json")
        match outcome:
            case Enqueue():
                return await self.enqueue(session, call, outcome, actor)
            case CallbackRequested():
                await self.callback(session, call, outcome, actor)
                records.end(call, "callback")
            case VoicemailLeft():
                await self.voicemail(session, call, outcome, actor)
                records.end(call, "voicemail")
            case Transferred():
                records.end(call, "transfer")
            case HungUp():
                by_caller = outcome.by == "caller"
                records.end(call, "hang_up", cause="caller_hung_up" if by_caller else None)
        return None

    async def enqueue(
        self, session: AsyncSession, call: Call, outcome: Enqueue, actor: str
    ) -> Interaction:
        """The call becomes an interaction in its queue (the call's id its reference: a retry
        finds it); the caller holds."""
        data = InteractionCreate(
            channel=Channel.voice,
            queue=outcome.queue,
            external_ref=call.call_ref,
            priority=outcome.priority,
            skills=outcome.skills,
            subject=f"Call from {call.calling_number or call.caller or 'an unknown number'}",
            ivr=_ivr(outcome.learned),
            **await callers.who(self._sessions, call, self._settings, actor),
        )
        received = (await self._intake.receive(data, actor=actor)).interaction
        call.interaction_id, call.customer_id = received.id, received.customer_id
        call.phase, call.callback_key = CallPhase.queued, outcome.callback_key
        interaction = await session.get(Interaction, received.id)
        assert interaction is not None, "intake has committed it"
        if outcome.complaint:  # once per call, however often the gateway retries
            await complaints.raised_by_the_customer(
                session, interaction, COMPLAINT_BY_PHONE, COMPLAINT_WORDS, datetime.now(UTC)
            )
        return interaction

    async def callback(
        self,
        session: AsyncSession,
        call: Call,
        outcome: CallbackRequested | VoicemailLeft,
        actor: str,
        *,
        place: Place | None = None,
        summary: str = "",
    ) -> None:
        """A `callback` interaction in the queue: the agent who gets it dials the caller back."""
        number = call.calling_number or call.caller
        data = InteractionCreate(
            channel=Channel.callback,
            queue=outcome.queue,
            external_ref=callbacks.reference(call.gateway, call.call_ref),
            subject=f"Call back {number}",
            summary=summary,
            ivr=_ivr(outcome.learned),
            **await callers.who(self._sessions, call, self._settings, actor),
        )
        received = (await self._intake.receive(data, actor=actor, place=place)).interaction
        call.interaction_id = call.interaction_id or received.id
        call.customer_id = received.customer_id

    async def turn_into_callback(self, session: AsyncSession, call: Call, actor: str) -> None:
        """The caller pressed the callback key while holding: the call's interaction ends in a
        state of its own (converted: neither answered nor abandoned) and a callback takes its
        place in line."""
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
        await self.callback(session, call, request, actor, place=Place(waiting_since=waiting_since))
        records.end(call, "callback")

    async def voicemail(
        self, session: AsyncSession, call: Call, outcome: VoicemailLeft, actor: str
    ) -> None:
        """A voicemail becomes a callback that no agent is offered before the queue's next
        opening."""
        moment = datetime.now(UTC)
        queue = await callers.queue_named(session, outcome.queue)
        opens = None
        if queue is not None:
            opens = next_opening(hours_of(queue), calendar_of(queue), moment)
        await self.callback(
            session,
            call,
            outcome,
            actor,
            place=Place(waiting_since=moment, not_before=opens),
            summary=f"Voicemail: {outcome.recording_url}",
        )


def _ivr(learned: Learned) -> IvrLearned:
    return IvrLearned.model_validate(learned.model_dump(mode="json"))
