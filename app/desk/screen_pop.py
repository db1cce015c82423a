"""The screen pop: who the customer is, what the IVR learned about the call, what the customer
wrote (an email's messages) and what happened before, with every offer, so the agent knows the
customer before saying hello.

Composed here, at the edge that delivers it, from the customers' profile
(app/customers/profile.py), the interaction with its messages and history
(app/interactions/history.py) and the customer's open complaints
(app/tickets/open_complaints.py). It is read by the statement that writes the offers
(`ScreenPopDetails`, given to routing's `OfferWriter` by main), so an offer reaches a desk of
its own replica with no read of its own; `read` reads it for everything else (a replayed
offer, an offer written by another replica). Both go through `from_row`, so they cannot drift
apart.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from app.core.pg import Reader
from app.customers import profile
from app.customers.profile import CustomerProfile
from app.interactions import history
from app.interactions.history import OfferedInteraction, OfferedMessage, PastInteraction
from app.interactions.schemas import IvrLearned
from app.interactions.service import InteractionNotFound
from app.tickets import open_complaints
from app.tickets.open_complaints import OpenComplaint


class OfferRouting(BaseModel):
    """Why the interaction went to this agent."""

    reason: str
    matched_skills: dict[str, int]
    effective_priority: float | None


class ScreenPop(BaseModel):
    interaction: OfferedInteraction
    customer: CustomerProfile
    ivr: IvrLearned | None = Field(
        description="What the IVR learned about the call before it was queued (the path it "
        "took, the menu keys, the digits collected as the caller typed them, whether the "
        "account number was verified, self-service done); null: it came through no IVR"
    )
    messages: list[OfferedMessage] = Field(
        description="The interaction's own messages (an email's thread; a chat's transcript "
        f"later), its latest {history.MESSAGES_SHOWN}, oldest first; empty for a call"
    )
    history: list[PastInteraction]  # the customer's latest interactions, newest first
    open_complaints: list[OpenComplaint] = Field(
        description="The customer's open complaints (any step but closed or rejected), newest "
        f"first, {open_complaints.SHOWN} at most, with step, owner and soonest running deadline"
    )
    routing: OfferRouting


# The pop's columns, for the interaction `i` with its customer `c` and queue `q`.
COLUMNS = ",\n".join(
    (history.COLUMNS, history.MESSAGE_COLUMNS, profile.COLUMNS, open_complaints.COLUMNS)
)
POP = f"""
    SELECT {COLUMNS}
    FROM interactions i JOIN customers c ON c.id = i.customer_id JOIN queues q ON q.id = i.queue_id
    WHERE i.id = $1
"""  # noqa: S608 - constants only, no outside text


def routing_of(payload: Mapping[str, Any]) -> OfferRouting:
    """The `routing` slot from an `interaction.offered` event's payload."""
    return OfferRouting(
        reason=payload.get("reason", ""),
        matched_skills=payload.get("matched_skills", {}),
        effective_priority=payload.get("effective_priority"),
    )


def routing_of_offer(reason: str, matched: Mapping[str, Any]) -> OfferRouting:
    """The `routing` slot from an offer row's `reason` and `matched` (app.routing.offers
    `NewOffer.matched`), for an offer replayed from the table rather than its event."""
    return routing_of(
        {
            "reason": reason,
            "matched_skills": matched.get("skills", {}),
            "effective_priority": matched.get("effective_priority"),
        }
    )


def from_row(row: Mapping[str, Any], routing: OfferRouting) -> ScreenPop:
    """The pop from a row holding `COLUMNS`."""
    return ScreenPop(
        interaction=history.offered_from_row(row),
        customer=profile.from_row(row),
        ivr=history.ivr_from_row(row),
        messages=history.messages_from_row(row),
        history=history.history_from_row(row),
        open_complaints=open_complaints.from_row(row),
        routing=routing,
    )


class ScreenPopDetails:
    """The screen pop as routing's offer writer reads it with each offer
    (app.routing.offers.OfferDetails), attached to the `interaction.offered` event."""

    name = "screen_pop"
    columns = COLUMNS

    def from_row(self, row: Mapping[str, Any], payload: Mapping[str, Any]) -> ScreenPop:
        return from_row(row, routing_of(payload))


async def read(db: Reader, interaction_id: uuid.UUID, routing: OfferRouting) -> ScreenPop:
    row = await db.fetchrow(POP, interaction_id)
    if row is None:
        raise InteractionNotFound(f"no interaction with id {interaction_id}")
    return from_row(row, routing)
