"""Every string a request writes is limited in the API exactly as its column is.

A limit above the column's let PostgreSQL refuse the value (a 500: `language` had none, its
column holds 35); one below refuses what the column could hold. Each request model names the
tables it writes; a field is held to the column of its name there, or to the column named in
RENAMED; a string that reaches no column says why in NO_COLUMN. A new model or field that is
in none of them fails here.
"""

from __future__ import annotations

from typing import Any, get_args

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel
from sqlalchemy import Column, String, Table
from sqlalchemy.orm import InstrumentedAttribute

from app.agents.models import Agent
from app.auth.models import GatewayKey, User
from app.channels.chat.models import ChatSite, ChatVisitor
from app.channels.chat.protocol import CustomerMessage
from app.channels.email.models import EmailAddress
from app.core.settings import Settings
from app.customers.models import ContactPoint, Customer
from app.desk.protocol import AgentAction
from app.interactions.models import Interaction, InteractionMessage, Offer
from app.interactions.schemas import InteractionCreate
from app.ivr.models import Call, IvrFlow
from app.main import create_app
from app.queues.models import Queue
from app.skills.models import Skill
from app.tickets.models import (
    Complaint,
    ComplaintCategory,
    ComplaintNote,
    ComplaintPolicy,
    CorrectiveAction,
)
from tests.core.request_inputs import Input, fields_of

# The tables each request model writes (or, for a look-up, reads by the field).
WRITES: dict[str, tuple[Any, ...]] = {
    "LoginIn": (User,),
    "UserCreate": (User,),
    "UserUpdate": (User,),
    "GatewayKeyCreate": (GatewayKey,),
    "EmailAddressCreate": (EmailAddress,),
    "EmailAddressUpdate": (EmailAddress,),
    "ChatSiteCreate": (ChatSite,),
    "ChatSiteUpdate": (ChatSite,),
    "AgentCreate": (User, Agent),
    "AgentUpdate": (User, Agent),
    "AgentStateChange": (Agent,),
    "SkillLevel": (),
    "CustomerCreate": (Customer,),
    "CustomerUpdate": (Customer,),
    "ContactPointIn": (ContactPoint,),
    "QueueCreate": (Queue,),
    "QueueUpdate": (Queue,),
    "SkillCreate": (Skill,),
    "SkillUpdate": (Skill,),
    "InteractionCreate": (Interaction,),
    "CompleteIn": (Interaction,),
    "TransferIn": (Interaction,),
    "SetState": (Agent,),
    "Reject": (Offer,),
    "Complete": (Interaction,),
    "Accept": (),
    "EndWrapUp": (Interaction,),
    "Reply": (InteractionMessage,),
    "MarkRead": (),
    "RaiseComplaint": (Complaint,),
    # The chat customer's socket (app/channels/chat/protocol.py).
    "Hello": (ChatVisitor,),
    "Heartbeat": (),
    "Say": (InteractionMessage,),
    "Typing": (),
    "Read": (),
    "Leave": (),
    "LeaveMessage": (InteractionMessage,),
    "DryRunIn": (),
    "FlowCreate": (IvrFlow,),
    "FlowUpdate": (IvrFlow,),
    "FlowVersionCreate": (),
    "NumberMapping": (),
    "ReplyIn": (InteractionMessage,),
    # A generic gateway's call events (app/ivr/call_events.py): each names its call.
    "CallStarted": (Call,),
    "DigitsEntered": (Call,),
    "StillWaiting": (Call,),
    "LegAnswered": (Call,),
    "CallTransferred": (Call,),
    "CallEnded": (Call,),
    "RecordingDone": (Call,),
    # Complaints (app/tickets/schemas.py).
    "Policy": (ComplaintPolicy,),
    "ComplaintRaise": (Complaint,),
    "ActionRecords": (Complaint, CorrectiveAction),
    "RecordsUpdate": (Complaint,),
    "AcknowledgementSaid": (),
    "NoteCreate": (ComplaintNote,),
    "InteractionLink": (),
    "CategoryCreate": (ComplaintCategory,),
    "CategoryUpdate": (ComplaintCategory,),
    "CorrectiveActionCreate": (CorrectiveAction,),
    "CorrectiveActionDone": (CorrectiveAction,),
    # A supervisor's actions (app/supervisor/actions.py).
    "ForcedState": (Agent,),
    "MoveIn": (Interaction, Offer),
    "PriorityIn": (Interaction,),
    "NoticeIn": (),
    # A staffing plan (app/workforce/api.py): numbers only, nothing stored.
    "StaffingIn": (),
}

# Fields whose column has another name, by the end of their path.
RENAMED: dict[str, InstrumentedAttribute[Any]] = {
    "AgentStateChange.reason": Agent.state_reason,
    "SetState.reason": Agent.state_reason,
    "Reject.reason": Offer.reason,
    "phones[]": ContactPoint.value,
    "emails[]": ContactPoint.value,
    "chat_ids[]": ContactPoint.value,
    "contact.value": ContactPoint.value,
    "InteractionCreate.customer_name": Customer.name,
    "InteractionCreate.queue": Queue.name,  # a queue's name (or id), looked up
    "TransferIn.queue": Queue.name,
    ".skill": Skill.name,  # a skill's name, looked up, in every SkillLevel
    ".call_id": Call.call_ref,  # the gateway's id of the call
    "CallStarted.from_": Call.caller,
    "account_numbers[]": ContactPoint.value,
    "CallStarted.to": Call.dialled,
    "LeaveMessage.email": ContactPoint.value,
    "ActionRecords.reason": Complaint.rejected_reason,  # or the reopen's event
    "ActionRecords.corrective_action": CorrectiveAction.action,
    "ActionRecords.action_owner": CorrectiveAction.owner,
    "CorrectiveActionDone.note": CorrectiveAction.done_note,
    "ForcedState.reason": Agent.state_reason,
    "MoveIn.reason": Offer.reason,  # a directed offer's reason; else only in the move's event
    "MoveIn.to_queue": Queue.name,  # a queue's name (or id), looked up
}

NO_COLUMN = {
    "LoginIn.password": "checked against a hash, never stored",
    "UserCreate.password": "stored as its hash",
    "UserUpdate.password": "stored as its hash",
    "AgentCreate.password": "stored as its hash",
    "TransferIn.note": "kept in the transfer's event (jsonb)",
    "business_hours.timezone": "kept in the queue's business_hours (jsonb)",
    "holidays.closed_dates[].name": "kept in the queue's holidays (jsonb)",
    "holidays.country": "kept in the queue's holidays (jsonb)",
    "holidays.subdivision": "kept in the queue's holidays (jsonb)",
    ".event_id": "kept among the call's latest deliveries (jsonb)",
    "CallStarted.gateway": "the gateway's own name, not kept (calls.gateway is its format)",
    "CallTransferred.to": "where the call went: not kept, the call ends",
    "DigitsEntered.digits": "kept in the call's engine state (jsonb), at most 32 kept",
    "LegAnswered.endpoint": "the endpoint that answered: not kept (the agent's is)",
    "RecordingDone.recording_url": "kept in the callback's summary (text)",
    "Hello.visitor_token": "a secret, kept only as its sha256",
    "Hello.identity.customer": "kept with the site's name before it in a contact point (320)",
    "Hello.identity.signature": "checked, never kept",
    "Say.client_id": "hashed into the message's dedupe key",
    "allowed_origins[]": "kept in the chat site's allowed_origins (jsonb)",
    "NoteCreate.evidence[]": "kept in the note's evidence (jsonb)",
    "PriorityIn.reason": "kept in the priority change's event (jsonb)",
    "NoticeIn.text": "kept in the notice's event (jsonb)",
    "NoticeIn.reason": "kept in the notice's event (jsonb)",
}

# Whole parts of a request that reach no column, by the start of their path, and why: the
# strings inside are bounded by their own models (app/ivr/flow.py).
NO_COLUMN_UNDER = {
    "DryRunIn.": "a dry run stores nothing",
    "FlowCreate.document.": "kept whole in its version's document (jsonb)",
    "FlowVersionCreate.document.": "kept whole in its version's document (jsonb)",
    "InteractionCreate.ivr.": "kept whole in the interaction's ivr (jsonb)",
}


@pytest.fixture(scope="module")
def app() -> FastAPI:
    settings = Settings(environment="test", load_demo=False)
    return create_app(settings, "postgresql+asyncpg://nobody@localhost/none")


def request_models(app: FastAPI) -> set[type[BaseModel]]:
    """The models requests carry at their top: bodies (a list's items), the intake's, the
    desk's actions."""
    found: set[type[BaseModel]] = {
        InteractionCreate,
        *AgentAction.__args__,
        *get_args(get_args(CustomerMessage)[0]),  # Annotated[a union, its discriminator]
    }
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and route.body_field is not None:
            annotation = route.body_field.field_info.annotation
            found |= {a for a in (annotation, *getattr(annotation, "__args__", ())) if _model(a)}
    return found


def _model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def test_every_request_model_names_what_it_writes(app: FastAPI) -> None:
    names = {model.__name__ for model in request_models(app)}
    assert names == WRITES.keys(), f"name the tables of {names - WRITES.keys()} in WRITES"


def test_every_string_is_as_long_as_its_column(app: FastAPI) -> None:
    problems: list[str] = []
    for model in sorted(request_models(app), key=lambda m: m.__name__):
        for field in fields_of(model, model.__name__):
            if field.type is str:
                problems += _against_column(field, WRITES[model.__name__])
    assert not problems, "\n".join(problems)


def _against_column(field: Input, tables: tuple[Any, ...]) -> list[str]:
    if any(field.where.endswith(end) for end in NO_COLUMN):
        return []
    if any(field.where.startswith(start) for start in NO_COLUMN_UNDER):
        return []
    column = _column(field, tables)
    if column is None:
        return [f"{field.where}: no column of that name; add it to RENAMED or NO_COLUMN"]
    length = column.type.length if isinstance(column.type, String) else None
    limit = field.max_length()
    if limit is None:
        return [f"{field.where}: no max_length (its column {_name(column)} holds {length})"]
    if length is not None and limit != length:
        return [f"{field.where}: max_length {limit}, its column {_name(column)} holds {length}"]
    return []


def _column(field: Input, tables: tuple[Any, ...]) -> Column[Any] | None:
    for end, attribute in RENAMED.items():
        if field.where.endswith(end):
            return _table(attribute.class_).columns[attribute.key]
    name = field.where.rsplit(".", 1)[-1]
    for model in tables:
        if name in _table(model).columns:
            column: Column[Any] = _table(model).columns[name]
            return column
    return None


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


def _name(column: Column[Any]) -> str:
    return f"{column.table.name}.{column.name}"
