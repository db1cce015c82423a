"""The wait loop: what a caller waiting in a queue hears at each round, and how often it asks
again.

Callers wait in our own queue, not the gateway's (whose order would not be the policy's): a
`Hold` plays its prompts, pauses, and comes back to ask what now. At each round the switchboard
connects the caller if an agent took the call; otherwise, once per the queue's
`announce_every_seconds`, the caller hears their position in the policy's order of service
(never told higher than before: a platinum caller who came later may go ahead) and the
estimated wait (app/routing/figures.py, docs/metrics.md), and the callback option.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import driver_connection
from app.interactions.models import Interaction
from app.ivr import announcements
from app.ivr.actions import Hold, Language, Prompt
from app.ivr.flow import Flow
from app.ivr.models import Call, Gateway
from app.queues.models import Queue
from app.routing import figures

# We have no way to call a generic gateway, so its loop is how it learns that an agent took the
# call: it asks again this often. Twilio's live call is redirected the moment an agent accepts
# (app/ivr/bridge.py), so its loop comes back only to announce.
GENERIC_RECHECK_SECONDS = 3


def language_of(call: Call, flow: Flow) -> tuple[Language, str | None]:
    """The language the call speaks (the caller's choice in the IVR, else the flow's), with
    the flow's voice for it."""
    chosen = (call.learned or {}).get("language") or call.engine_state.get("language")
    language = Language(chosen) if chosen else flow.language
    return language, flow.voices.get(language)


async def next_round(
    session: AsyncSession, call: Call, interaction: Interaction, flow: Flow
) -> Hold:
    """The wait loop's next round, with the figures when they are due."""
    queue = await session.get(Queue, interaction.queue_id)
    assert queue is not None, "an interaction's queue is never deleted"
    every = queue.announce_every_seconds
    moment = datetime.now(UTC)
    prompts: list[Prompt] = []
    if call.announced_at is None or moment - call.announced_at >= timedelta(seconds=every):
        prompts = await _announcements(session, call, interaction, flow, moment)
    recheck = GENERIC_RECHECK_SECONDS if call.gateway is Gateway.generic else every
    listen_for = call.callback_key if call.calling_number is not None else None
    return Hold(prompts=prompts, recheck_seconds=recheck, listen_for=listen_for)


async def _announcements(
    session: AsyncSession, call: Call, interaction: Interaction, flow: Flow, moment: datetime
) -> list[Prompt]:
    language, voice = language_of(call, flow)
    prompts: list[Prompt] = []
    connection = await driver_connection(session)
    wait = await figures.read_caller_wait(connection, interaction.id, moment)
    if wait is not None:
        position = figures.announced_position(call.announced_position, wait.position)
        prompts += announcements.position_and_wait(language, voice, position, wait.estimated)
        call.announced_position, call.announced_at = position, moment
    if call.callback_key is not None and call.calling_number is not None:
        prompts.append(announcements.callback_option(language, voice, call.callback_key))
    return prompts
