"""A supervisor's offer of waiting work to a named agent (app/supervisor/actions.py), within
the agent's capacity: the agent and the work are read under their row locks, the agent's room
is checked with the policy's own rules (`has_room`, the skills it needs), and the offer goes
through the one offer writer (app/routing/offers.py) in the same transaction, which lands it
only while the agent's row is as read and the interaction still queued. So the rules a pass
keeps hold here by the same code: one pending offer per interaction, never over capacity
(docs/routing.md, rules 1 and 2). Everything else a supervisor does to routing is
app/routing/directing.py.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import asyncpg

from app.agents.models import AgentState
from app.agents.service import AgentNotFound
from app.core.channels import Channel
from app.core.events import Events
from app.core.pg import now
from app.routing import policy
from app.routing.directing import (
    AgentCannotTakeIt,
    NothingToChange,
    lock_waiting,
    withdraw_offer,
)
from app.routing.offers import NewOffer, OfferWriter, Written

# The agent locked, with what the offer writer checks (state, user, desk under a live lease,
# `routing_version`) and what the policy's rules weigh: capacity, load, skills.
LOCK_AGENT = """
    SELECT a.state, a.routing_version, a.idle_since, a.capacity_voice, a.capacity_chat,
           a.capacity_email, u.is_active,
           EXISTS (SELECT FROM agent_presence p JOIN replicas r ON r.id = p.replica_id
                   WHERE p.agent_id = a.id AND r.lease_until > statement_timestamp()) AS at_desk,
           (SELECT count(*) FROM offers o WHERE o.agent_id = a.id AND o.state = 'pending'
              AND o.interaction_id = $2) AS offered_it
    FROM agents a JOIN users u ON u.id = a.user_id
    WHERE a.id = $1
    FOR NO KEY UPDATE OF a
"""
HELD = """
    SELECT channel FROM offers WHERE agent_id = $1 AND state = 'pending'
    UNION ALL
    SELECT channel FROM interactions WHERE agent_id = $1 AND state IN ('assigned', 'wrap_up')
"""
SKILLS = """
    SELECT k.name, s.proficiency FROM agent_skills s JOIN skills k ON k.id = s.skill_id
    WHERE s.agent_id = $1
"""


async def offer_to_agent(
    connection: asyncpg.Connection,
    events: Events,
    writer: OfferWriter,
    interaction_id: uuid.UUID,
    agent_id: uuid.UUID,
    *,
    reason: str,
    actor: str,
) -> Written:
    """Offer waiting work to a named agent, within the agent's capacity, through the one offer
    writer: a pending offer to another agent is withdrawn first. Refused (409, saying why)
    when the agent is not in routing (away, offline, no desk open, user deactivated), has no
    room for the channel, or lacks a skill the interaction needs; or when the work is not
    waiting. The events added so far are written before the offer's, so the log reads in
    order (the withdrawal, then the offer)."""
    agent_row = await connection.fetchrow(LOCK_AGENT, agent_id, interaction_id)
    if agent_row is None:
        raise AgentNotFound(f"no agent with id {agent_id}")
    moment = now()
    work = await lock_waiting(connection, interaction_id, "offer it to an agent", moment)
    if agent_row["offered_it"]:
        raise NothingToChange("the interaction is offered to that agent already")
    item = _waiting(interaction_id, work)
    agent = await _agent(connection, agent_id, agent_row)
    _ensure_can_take(agent_row, agent, item)
    await withdraw_offer(connection, events, interaction_id, moment, actor)
    await events.write(connection)
    match = policy.Match(
        interaction_id=interaction_id,
        agent_id=agent_id,
        effective_priority=work["effective"],
        matched_skills={need.skill: agent.skills.get(need.skill, 0) for need in item.needs},
        reason=reason,
    )
    timeout = timedelta(seconds=work["offer_timeout_seconds"])
    offer = NewOffer(
        uuid.uuid4(),
        match,
        item,
        moment + timeout,
        agent_row["routing_version"],
        extra={"directed": True},
    )
    written = await writer.write(connection, [offer], moment, actor=actor)
    if not written:  # the row was read under its lock: only a lapsed lease gets here
        raise AgentCannotTakeIt("the agent's desk left routing just now; try again")
    events.note_written([written[0].event])
    return written[0]


def _waiting(interaction_id: uuid.UUID, row: asyncpg.Record) -> policy.WaitingInteraction:
    return policy.WaitingInteraction(
        id=interaction_id,
        channel=Channel(row["channel"]),
        queue_id=row["queue_id"],
        priority=row["priority"],
        tier=row["tier"],
        waiting_since=row["waiting_since"],
        needs=tuple(policy.SkillNeed(n["skill"], int(n["level"])) for n in row["needs"]),
    )


async def _agent(
    connection: asyncpg.Connection, agent_id: uuid.UUID, row: asyncpg.Record
) -> policy.AvailableAgent:
    """The agent as the policy weighs it, its load read under its row lock."""
    load = policy.Load()
    for held in await connection.fetch(HELD, agent_id):
        load = policy.with_one_more(load, Channel(held["channel"]))
    skills = {
        skill["name"]: skill["proficiency"] for skill in await connection.fetch(SKILLS, agent_id)
    }
    return policy.AvailableAgent(
        id=agent_id,
        skills=skills,
        capacity=policy.Capacity(
            voice=row["capacity_voice"], chat=row["capacity_chat"], email=row["capacity_email"]
        ),
        load=load,
        idle_since=row["idle_since"],
        in_wrap_up=row["state"] == AgentState.wrap_up.value,
    )


def _ensure_can_take(
    row: asyncpg.Record, agent: policy.AvailableAgent, item: policy.WaitingInteraction
) -> None:
    """Why the agent cannot be offered the work, in a 409; nothing when it can."""
    state = row["state"]
    if state not in {AgentState.available.value, AgentState.busy.value, AgentState.wrap_up.value}:
        raise AgentCannotTakeIt(f"the agent is {state}: only an agent in routing is offered work")
    if not row["is_active"]:
        raise AgentCannotTakeIt("the agent's user is deactivated")
    if not row["at_desk"]:
        raise AgentCannotTakeIt("the agent has no desk open: nothing would show it the offer")
    if not policy.has_room(agent, item.channel, agent.load):
        raise AgentCannotTakeIt(_no_room(agent, item.channel))
    missing = [need for need in item.needs if agent.skills.get(need.skill, 0) < need.level]
    if missing:
        lacks = ", ".join(
            f"{need.skill} {need.level} (holds {agent.skills.get(need.skill, 0)})"
            for need in missing
        )
        raise AgentCannotTakeIt(f"the agent lacks skills the interaction needs: {lacks}")


def _no_room(agent: policy.AvailableAgent, channel: Channel) -> str:
    load, capacity = agent.load, agent.capacity
    holds = f"it holds {load.voice} call(s), {load.chat} chat(s), {load.email} email(s)"
    if channel in (Channel.voice, Channel.callback) and agent.in_wrap_up:
        return f"no room for a {channel.value}: the agent is in wrap-up after a call"
    limits = f"capacity {capacity.voice} voice, {capacity.chat} chat, {capacity.email} email"
    return f"no room for a {channel.value}: {holds}; {limits} (a call and chats exclude each other)"
