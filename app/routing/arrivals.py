"""Arrivals offered as they come in: the offer written right after the interaction's insert.

At a light load most interactions arrive to find agents free and nothing else waiting. Queued
for the matcher, each waits for a wake, a pass's reads and a pass's write before its offer is
on its way. Here, on the replica whose
matcher leads, the policy picks the arrival's agent while the request is in hand, from the
agents the matcher's directory keeps and against the work its last pass left waiting, and the
one offer writer (app/routing/offers.py) writes the offer right after intake's insert. Intake
calls this through its `Router` protocol (app/interactions/intake.py); anything this cannot
place stays queued, and the matcher is woken.

Why the rules of DESIGN.md section 3 still hold:

- **One agent per interaction, never over capacity.** The offer is written by the same writer
  as a pass's, which takes the agent's row lock and lands only while the row is as the
  directory read it, and claims the interaction only while it is still queued (a pass may
  have offered it in between).
- **Highest effective priority first.** The policy weighs the arrival against everything the
  last pass left waiting, and the write lands only while nothing else is queued that it did
  not know of (but the arrivals under way here, each weighed in turn in the same standing).
  Otherwise it stays queued like any other.
- **Longest idle, best proficiency, sticky agent.** It is the policy's own choice: with nothing
  else waiting, the arrival's turn in a `policy.Standing` of the agents as the directory last
  read them, in which every arrival matched since has taken its agent (so the pools are built
  once per read of the agents, not once per arrival); else one `policy.match` over what waits
  and the arrival. An agent whose row moved since it was read is not written to: the arrival
  then waits for a pass, which reads it afresh.

Under load this steps aside, because a pass matches a batch for less than one locked write per
arrival: while more than `ARRIVING_LIMIT` other arrivals are under way, while the last pass left
more than `LEFT_LIMIT` waiting, or while an arrival queued here waits for the next pass to read
it (`Matcher.arrival_view`), arrivals are queued, and the matcher woken, as before. So is an
arrival held back until a later moment (`not_before`: a voicemail's callback), which a pass
offers once it is due (app/routing/waiting.py).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg

from app.interactions.intake import Arrival, Inserted, Routed
from app.routing import policy
from app.routing.directory import ArrivalStanding
from app.routing.matcher import ArrivalView, Matcher
from app.routing.offers import NewOffer, OfferWriter, Written, new_offer

LEFT_LIMIT = 32
ARRIVING_LIMIT = 4  # other arrivals under way, beyond which this one queues


@dataclass(frozen=True, slots=True)
class Proposal:
    offer: NewOffer
    known: list[uuid.UUID]  # the waiting work the policy weighed the arrival against
    standing: ArrivalStanding | None = None  # the standing that chose, if one did


class _Offering:
    """Intake's `Offering`: the offer the policy proposed for one arrival, written by the one
    offer writer in the statement that writes the arrival."""

    def __init__(
        self, arrivals: Arrivals, view: ArrivalView, arrival: Arrival, proposal: Proposal
    ) -> None:
        self.view, self.arrival, self.proposal = view, arrival, proposal
        self.landed: Written | None = None
        self.written = False  # False too for a repeated reference: no arrival was written
        self._arrivals = arrivals

    async def write(self, connection: asyncpg.Connection) -> Inserted | None:
        """The arrival and its offer, in one statement of the one offer writer."""
        offer = self.proposal.offer
        written = await self._arrivals.writer.write_arrival(
            connection,
            offer,
            self.arrival.arguments(),
            self.arrival.moment,
            only_waiting=[*self.proposal.known, *self._arrivals.arriving],
        )
        if written is None:
            return None
        self.written = True
        self.landed = written.offer
        queued = self.arrival.queued_event(written.queued_event_id)
        if self.landed is None:
            return Inserted(written.row, queued)
        routed = Routed([self.landed.event], offer.match.agent_id)
        return Inserted(written.row, queued, routed)


class Arrivals:
    """Intake's `Router` on this replica: offers arrivals at once while its matcher leads."""

    def __init__(self, matcher: Matcher, writer: OfferWriter) -> None:
        self._matcher = matcher
        self.writer = writer
        self._in_flight: set[uuid.UUID] = set()  # agents of offerings under way
        # Arrivals under way here, from before their insert until routed: each is weighed in
        # its own turn (the same standing serves them one by one), so the offer of one may land
        # while another is queued, as it would in one pass.
        self.arriving: set[uuid.UUID] = set()

    @contextlib.contextmanager
    def arriving_now(self, arrival: Arrival) -> Iterator[_Offering | None]:
        """Around the arrival's write: the offer to write with it, if the policy makes one at
        once; afterwards (the write committed), the matcher, the directory and the standing
        are told what landed, and the matcher is woken for an arrival left queued."""
        self.arriving.add(arrival.id)
        offering = self._offering(arrival)
        agent_id = None if offering is None else offering.proposal.offer.match.agent_id
        if agent_id is not None:
            self._in_flight.add(agent_id)
        try:
            yield offering
            if offering is None:
                self._matcher.wake(queued=arrival.id)
            else:
                self._settle(offering)
        finally:
            self.arriving.discard(arrival.id)
            if agent_id is not None:
                self._in_flight.discard(agent_id)

    def _offering(self, arrival: Arrival) -> _Offering | None:
        if not arrival.due:  # held back (a voicemail's callback): a pass offers it once due
            return None
        view = self._matcher.arrival_view(arrival.queues_version)
        proposal = None if view is None else self._propose(view, arrival)
        if view is None or proposal is None:
            return None
        return _Offering(self, view, arrival, proposal)

    def _settle(self, offering: _Offering) -> None:
        """Tell the matcher, the directory and the standing what the write did."""
        view, arrival, proposal = offering.view, offering.arrival, offering.proposal
        agent_id, standing = proposal.offer.match.agent_id, proposal.standing
        landed = offering.landed
        if landed is None:  # the agent's row moved, other work waits, or a repeated reference
            if standing is not None:
                standing.set_aside(agent_id)
            view.directory.mark([agent_id])  # its row may have moved all the same: read afresh
            if offering.written:  # queued: a pass must take it
                self._matcher.wake(queued=arrival.id)
            return
        self._matcher.placed(arrival.id)
        read = proposal.offer.agent_read
        view.directory.offered(agent_id, [arrival.data.channel], read, landed.agent_version)
        if standing is not None:
            standing.landed(agent_id, read, landed.agent_version)

    def _propose(self, view: ArrivalView, arrival: Arrival) -> Proposal | None:
        if (
            len(view.left) > LEFT_LIMIT
            or len(self.arriving) - 1 > ARRIVING_LIMIT  # others than this one
            or arrival.queue_id not in view.queues
        ):
            return None
        # An agent with a placement under way is passed over: its row moves when that lands.
        item = waiting_item(arrival, excluded=frozenset(self._in_flight))
        rules = {queue_id: queue.rules for queue_id, queue in view.queues.items()}
        # Each branch takes the version the chosen agent's load was read with: the offer
        # lands only on that row.
        if view.left:  # weighed against what waits: a pass of its own over all of it
            waiting = [*view.left, item]
            agents, versions = view.directory.kept_as_read(
                view.silence, any_of=policy.skills_any_of(waiting, rules, arrival.moment)
            )
            matches = policy.match(waiting, agents, rules, arrival.moment)
            match = next((m for m in matches if m.interaction_id == arrival.id), None)
            standing = None
            if match is None:
                return None
            agent_read = versions[match.agent_id]
        else:  # nothing else waits: its turn in the standing kept since the last read
            standing = view.directory.standing(view.silence)
            match = standing.policy.serve(item, rules, arrival.moment)
            if match is None:
                return None
            agent_read = standing.version(match.agent_id)
        timeout = view.queues[arrival.queue_id].offer_timeout
        return Proposal(
            offer=new_offer(match, item, timeout, arrival.moment, agent_read),
            known=[left.id for left in view.left],
            standing=standing,
        )


def waiting_item(
    arrival: Arrival, *, excluded: frozenset[uuid.UUID] = frozenset()
) -> policy.WaitingInteraction:
    return policy.WaitingInteraction(
        id=arrival.id,
        channel=arrival.data.channel,
        queue_id=arrival.queue_id,
        priority=arrival.data.priority,
        tier=arrival.tier,
        waiting_since=arrival.waits_since,
        needs=tuple(policy.SkillNeed(n["skill"], int(n["level"])) for n in arrival.needs),
        last_agent_id=arrival.last_agent_id,
        last_agent_at=arrival.last_agent_at,
        thread_agent_id=arrival.thread_agent_id,
        thread_ended_at=arrival.thread_ended_at,
        complaint_owner_id=arrival.complaint_owner_id,
        complaint_reference=arrival.complaint_reference,
        excluded_agents=excluded,
    )
