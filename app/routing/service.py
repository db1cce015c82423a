"""Routing's face to the edges (the desk socket, the REST desk, later the supervisor): what an
agent or a supervisor may ask of routing. Each call works inside the caller's transaction (or,
for accept and complete, is one autocommitted call) and adds its events to the caller's
`Events`; whoever commits publishes them and wakes the matcher.

The calls live where their concept does: offer decisions and completion in
app/routing/decisions.py, agent states in app/routing/agent_states.py.
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

__all__ = [
    "AgentNow",
    "OfferNotFound",
    "accept_offer",
    "change_state",
    "complete",
    "end_wrap_up",
    "lock_agent",
    "refresh_agent_state",
    "reject_offer",
    "release_agent",
]
