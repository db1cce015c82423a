"""Every table, imported once so that Alembic and the tests see the whole schema."""

from app.agents.models import Agent, AgentPresence, AgentSkill
from app.auth.models import AccessToken, GatewayKey, LoginFailure, SocketTicket, User
from app.channels.chat.models import Chat, ChatSite, ChatVisitor
from app.channels.email.models import EmailAddress
from app.core.events import Event
from app.core.lease import Replica
from app.core.models import Base
from app.core.outbox import OutboxMessage
from app.customers.models import ContactPoint, Customer
from app.interactions.models import Interaction, InteractionMessage, MessageAttachment, Offer
from app.ivr.models import Call, IvrFlow, IvrFlowVersion, IvrNumber
from app.queues.models import Queue, QueueSkill
from app.skills.models import Skill
from app.supervisor.models import AgentMark, AgentQuarter, QueueQuarter, RollupMark
from app.tickets.models import (
    AnswerLink,
    Complaint,
    ComplaintCategory,
    ComplaintDeadline,
    ComplaintInteraction,
    ComplaintNote,
    ComplaintNumber,
    ComplaintPolicy,
    ComplaintVisit,
    CorrectiveAction,
)

metadata = Base.metadata

__all__ = [
    "AccessToken",
    "Agent",
    "AgentMark",
    "AgentPresence",
    "AgentQuarter",
    "AgentSkill",
    "AnswerLink",
    "Call",
    "Chat",
    "ChatSite",
    "ChatVisitor",
    "Complaint",
    "ComplaintCategory",
    "ComplaintDeadline",
    "ComplaintInteraction",
    "ComplaintNote",
    "ComplaintNumber",
    "ComplaintPolicy",
    "ComplaintVisit",
    "ContactPoint",
    "CorrectiveAction",
    "Customer",
    "EmailAddress",
    "Event",
    "GatewayKey",
    "Interaction",
    "InteractionMessage",
    "IvrFlow",
    "IvrFlowVersion",
    "IvrNumber",
    "LoginFailure",
    "MessageAttachment",
    "Offer",
    "OutboxMessage",
    "Queue",
    "QueueQuarter",
    "QueueSkill",
    "Replica",
    "RollupMark",
    "Skill",
    "SocketTicket",
    "User",
    "metadata",
]
