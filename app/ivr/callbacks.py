"""Placing a callback: when an agent accepts a `callback` interaction that a Twilio call left
(a callback chosen in the IVR or while holding, a voicemail), Twilio is asked to call the
customer back from the number they dialled, and to ring the agent's voice endpoint once they
answer. The agent sees the number in the offer too (its subject, the customer's profile), so a
gateway that cannot place calls (the generic format) leaves the agent to dial it.

The request goes through the outbox, keyed once per acceptance, like the bridge of a live call.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.agents.models import Agent
from app.core.channels import Channel
from app.core.logging import get_logger
from app.core.outbox import enqueue_in
from app.core.settings import Settings
from app.interactions.models import Interaction
from app.ivr import call_records as records
from app.ivr.models import Gateway
from app.ivr.twilio_api import TwilioAccount, calls_api_message, place_call_request
from app.ivr.twiml import render_ring

log = get_logger(__name__)

PREFIX = f"callback:{Gateway.twilio.value}:"  # a callback's external_ref: the call it came from


def reference(gateway: Gateway, call_ref: str) -> str:
    """The `external_ref` of the callback a call leaves: one per call, however often asked."""
    return f"callback:{gateway.value}:{call_ref}"


async def place(
    session: AsyncSession,
    settings: Settings,
    interaction_id: uuid.UUID,
    agent_id: uuid.UUID,
    event_id: int,
) -> bool:
    """Ask Twilio to place the callback the agent accepted; False when it is not a Twilio
    call's callback, or nothing can be placed (no account, no number, no endpoint)."""
    interaction = await session.get(Interaction, interaction_id)
    if interaction is None or interaction.channel is not Channel.callback:
        return False
    ref = interaction.external_ref or ""
    if not ref.startswith(PREFIX):
        return False
    call = await records.by_ref(session, Gateway.twilio, ref.removeprefix(PREFIX))
    agent = await session.get(Agent, agent_id)
    account = TwilioAccount.from_settings(settings)
    if call is None or call.calling_number is None or account is None:
        return False
    if agent is None or agent.voice_endpoint is None:
        log.info("the agent dials this callback: no voice endpoint", agent_id=str(agent_id))
        return False
    request = place_call_request(
        account, to=call.calling_number, from_=call.dialled, twiml=render_ring(agent.voice_endpoint)
    )
    key = f"place:{interaction_id}:{event_id}"
    await enqueue_in(session, calls_api_message(account, request, dedupe_key=key, call_id=call.id))
    return True
