"""Mail about complaints: a new thread to a complaints address (a support address with
`complaints` on) raises a complaint at step 1, in the customer's words, for an agent to complete
(the remedy they seek is asked, not guessed); a mail that names a complaint's reference (the
center's mails about one carry it in their subject) is linked to it, if it is the sender's.

Run after the mail's interaction is written, in a transaction of its own, and again for a
delivery of it that comes back (mail servers retry until they hear 250): a complaint is raised
once per interaction and a link made once, so a crash between the two is mended by the retry.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.db import unit_of_work
from app.core.models import utcnow
from app.interactions.models import Interaction
from app.tickets import references
from app.tickets import service as complaints
from app.tickets.models import Complaint
from app.tickets.schemas import ComplaintRaise
from app.tickets.workflow import Actor

NO_SUBJECT = "(no subject)"


class ComplaintMail:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], notices: complaints.CustomerNotices
    ) -> None:
        self._sessions = sessions
        self._notices = notices

    async def taken(
        self, interaction_id: uuid.UUID, subject: str, text: str, *, raise_one: bool
    ) -> None:
        """Link the interaction to the complaints it names; with `raise_one` (a new thread to
        a complaints address), raise one if it names none and none was raised from it."""
        async with unit_of_work(self._sessions) as session:
            interaction = await session.get(Interaction, interaction_id)
            if interaction is None:
                return
            who = complaints.Who(Actor.customer, f"customer:{interaction.customer_id}")
            context = complaints.Context(now=utcnow(), notices=self._notices, link_base="")
            named = await _named(session, interaction, f"{subject}\n{text}")
            for complaint in named:
                await complaints.link_interaction(
                    session, complaint, interaction.id, who, context.now
                )
            if raise_one and not named and not await _raised_from(session, interaction.id):
                body = ComplaintRaise(
                    interaction_id=interaction.id,
                    summary=(subject.strip() or NO_SUBJECT)[:200],
                    original_message=(text.strip() or subject.strip() or NO_SUBJECT)[:20_000],
                )
                await complaints.raise_complaint(session, body, who, context)


async def _named(session: AsyncSession, interaction: Interaction, text: str) -> list[Complaint]:
    """The sender's own complaints the mail names by reference."""
    mentioned = references.mentioned(text)
    if not mentioned:
        return []
    rows = await session.scalars(
        select(Complaint).where(
            Complaint.reference.in_(mentioned),
            Complaint.customer_id == interaction.customer_id,
        )
    )
    return list(rows)


async def _raised_from(session: AsyncSession, interaction_id: uuid.UUID) -> bool:
    found = await session.scalar(
        select(Complaint.id).where(Complaint.source_interaction_id == interaction_id).limit(1)
    )
    return found is not None
