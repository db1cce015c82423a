"""Routing's face to the edges (the desk socket, the REST desk, the live call service, later
the supervisor): what an agent, a supervisor or a customer's line may ask of routing. Each call
works inside the caller's transaction (or, for accept and complete, is one autocommitted call)
and adds its events to the caller's `Events`; whoever commits publishes them and wakes the
matcher.

The calls live where their concept does: offer decisions and completion in
app/routing/decisions.py, agent states in app/routing/agent_states.py, what the customer's line
does (hanging up, a callback instead, an agent's phone that never answered) in
app/routing/line.py.
"""

from app.routing.agent_states import (
    AgentNow,
    change_state,
    lock_agent,
    refresh_agent_state,
    release_agent,
)
from app.routing.decisions import (
    OfferNotFound,
    accept_offer,
    complete,
    end_wrap_up,
    reject_offer,
)
from app.routing.line import abandon_waiting, convert_to_callback, end_talk, return_unanswered

__all__ = [
    "AgentNow",
    "OfferNotFound",
    "abandon_waiting",
    "accept_offer",
    "change_state",
    "complete",
    "convert_to_callback",
    "end_talk",
    "end_wrap_up",
    "lock_agent",
    "refresh_agent_state",
    "reject_offer",
    "release_agent",
    "return_unanswered",
]
