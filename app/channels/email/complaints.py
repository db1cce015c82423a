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
from app.tickets import acts, references, work
from app.tickets import service as complaints
from app.tickets.models import Complaint
from app.tickets.workflow import Actor


class ComplaintMail:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def taken(
        self, interaction_id: uuid.UUID, subject: str, text: str, *, raise_one: bool
    ) -> None:
        """Link the interaction to the complaints it names; with `raise_one` (a new thread to
        a complaints address), raise one if it names none."""
        async with unit_of_work(self._sessions) as session:
            interaction = await session.get(Interaction, interaction_id)
            if interaction is None:
                return
            now = utcnow()
            named = await _named(session, interaction, f"{subject}\n{text}")
            who = acts.Who(Actor.customer, f"customer:{interaction.customer_id}")
            for complaint in named:
                await work.link_interaction(session, complaint, interaction.id, who, now)
            if raise_one and not named:
                await complaints.raised_by_the_customer(session, interaction, subject, text, now)


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
