"""The complaints API, `/v1/complaints` (docs/complaints.md; who may do what: docs/api.md).

Agents raise complaints from their interactions and work steps 1-4 of those they own;
supervisors (and admins) assign, reject, close, reopen and see all; admins keep the deadline
policy and the categories. Whether an action may be taken is the workflow's to say
(app/tickets/workflow.py): a refusal names the step, the actor or the records missing.
Nothing in a complaint's history (`.../timeline`) can be changed here: a correction is a new
entry.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.agents import service as agents
from app.auth.dependencies import Admin, AnyUser, Session, Staff
from app.auth.models import Role
from app.auth.principal import Principal
from app.core.errors import Conflict, InvalidField, NotFound
from app.core.events import events_of
from app.core.inputs import REFUSES_NUL
from app.core.models import utcnow
from app.core.pagination import Page, Pagination
from app.queues.models import Queue
from app.tickets import acts, service, views, work
from app.tickets import policy as policies
from app.tickets.models import Complaint, ComplaintCategory, CorrectiveAction
from app.tickets.schemas import (
    AcknowledgementSaid,
    ActionRecords,
    CategoryCreate,
    CategoryOut,
    CategoryUpdate,
    ComplaintOut,
    ComplaintRaise,
    ComplaintSummary,
    CorrectiveActionCreate,
    CorrectiveActionDone,
    CorrectiveActionOut,
    InteractionLink,
    NoteCreate,
    NoteOut,
    RecordsUpdate,
    TimelineEntry,
)
from app.tickets.workflow import Action, Actor, Step

router = APIRouter(prefix="/v1/complaints", tags=["complaints"])

ComplaintKey = Annotated[
    str,
    Path(max_length=40, description="The complaint's id, or its reference (C-2026-004217)"),
    REFUSES_NUL,
]


async def who_of(principal: Principal, session: AsyncSession) -> acts.Who:
    if principal.has_role(Role.agent):
        agent_id = await agents.agent_id_for_user(session, principal.id)
        return acts.Who(Actor.agent, principal.actor, agent_id)
    return acts.Who(Actor.supervisor, principal.actor)


def context_of(request: Request) -> acts.Context:
    settings = request.app.state.settings
    return acts.Context(
        now=utcnow(),
        notices=request.app.state.customer_notices,
        link_base=settings.public_base_url or str(request.base_url),
    )


# --- policy and categories (before /{complaint}, so their paths are not read as one) ------------


@router.get("/policy", summary="The deadline policy, reopen window, answer wait and warnings")
async def get_policy(_: Staff, session: Session) -> policies.Policy:
    return await policies.load(session)


@router.put("/policy", summary="Replace the complaint policy (new clocks follow it)")
async def put_policy(body: policies.Policy, principal: Admin, session: Session) -> policies.Policy:
    if body.queue_id is not None and await session.get(Queue, body.queue_id) is None:
        raise InvalidField("queue_id", f"no queue {body.queue_id}")
    await policies.save(session, body, actor=principal.actor)
    events_of(session).add(
        "complaint_policy.changed",
        subject_type="complaint_policy",
        subject_id=1,
        actor=principal.actor,
        payload=body.model_dump(mode="json"),
    )
    return await policies.load(session)


@router.get("/categories", summary="Complaint categories and root causes")
async def list_categories(_: AnyUser, session: Session, page: Pagination) -> Page[CategoryOut]:
    total = await session.scalar(select(func.count()).select_from(ComplaintCategory))
    rows = await session.scalars(
        select(ComplaintCategory)
        .order_by(ComplaintCategory.kind, ComplaintCategory.name)
        .limit(page.limit)
        .offset(page.offset)
    )
    items = [CategoryOut.model_validate(row) for row in rows]
    return Page(items=items, total=total or 0, limit=page.limit, offset=page.offset)


@router.post("/categories", status_code=status.HTTP_201_CREATED, summary="Add a category")
async def create_category(body: CategoryCreate, principal: Admin, session: Session) -> CategoryOut:
    await _ensure_category_name_free(session, body.kind.value, body.name, owner=None)
    row = ComplaintCategory(kind=body.kind.value, name=body.name)
    session.add(row)
    await session.flush()
    await session.refresh(row)
    _category_event(session, "complaint_category.created", row, principal.actor)
    return CategoryOut.model_validate(row)


@router.patch("/categories/{category_id}", summary="Rename or retire a category")
async def update_category(
    category_id: uuid.UUID, body: CategoryUpdate, principal: Admin, session: Session
) -> CategoryOut:
    row = await session.get(ComplaintCategory, category_id, with_for_update=True)
    if row is None:
        raise CategoryNotFound(f"no category {category_id}")
    if body.name is not None and body.name != row.name:
        await _ensure_category_name_free(session, row.kind, body.name, owner=row.id)
        row.name = body.name
    if body.active is not None:
        row.active = body.active
    await session.flush()
    await session.refresh(row)
    _category_event(session, "complaint_category.updated", row, principal.actor)
    return CategoryOut.model_validate(row)


class CategoryNotFound(NotFound):
    code = "complaint_category_not_found"


class CategoryNameTaken(Conflict):
    code = "complaint_category_name_taken"


async def _ensure_category_name_free(
    session: AsyncSession, kind: str, name: str, *, owner: uuid.UUID | None
) -> None:
    query = select(ComplaintCategory.id).where(
        ComplaintCategory.kind == kind, ComplaintCategory.name == name
    )
    found = await session.scalar(query)
    if found is not None and found != owner:
        raise CategoryNameTaken(f"a {kind.replace('_', ' ')} category {name!r} exists")


def _category_event(session: AsyncSession, kind: str, row: ComplaintCategory, actor: str) -> None:
    events_of(session).add(
        kind,
        subject_type="complaint_category",
        subject_id=row.id,
        actor=actor,
        payload={"kind": row.kind, "name": row.name, "active": row.active},
    )


# --- corrective actions --------------------------------------------------------------------------


@router.get("/corrective-actions", summary="Corrective actions: open ones by due date, or all")
async def list_corrective_actions(
    _: Staff,
    session: Session,
    page: Pagination,
    open_only: Annotated[bool, Query(alias="open", description="only those not done yet")] = False,
) -> Page[CorrectiveActionOut]:
    query = select(CorrectiveAction)
    if open_only:
        query = query.where(CorrectiveAction.done_at.is_(None))
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        query.order_by(
            CorrectiveAction.done_at.is_not(None),
            CorrectiveAction.due_on.asc().nulls_last(),
            CorrectiveAction.created_at,
        )
        .limit(page.limit)
        .offset(page.offset)
    )
    items = [CorrectiveActionOut.model_validate(row) for row in rows]
    return Page(items=items, total=total or 0, limit=page.limit, offset=page.offset)


@router.post(
    "/corrective-actions/{action_id}/done",
    summary="Mark a corrective action done (once; the event keeps who and when)",
)
async def corrective_action_done(
    action_id: uuid.UUID, body: CorrectiveActionDone, principal: Staff, session: Session
) -> CorrectiveActionOut:
    row = await session.get(CorrectiveAction, action_id, with_for_update=True)
    if row is None:
        raise NotFound(f"no corrective action {action_id}")
    if row.done_at is not None:
        raise acts.StepRefused(f"the corrective action was done already, at {row.done_at}")
    row.done_at, row.done_by, row.done_note = utcnow(), principal.actor, body.note
    complaint = await service.find(session, str(row.complaint_id))
    events_of(session).add(
        "complaint.corrective_action_done",
        subject_type=acts.SUBJECT,
        subject_id=complaint.id,
        actor=principal.actor,
        payload={
            "reference": complaint.reference,
            "corrective_action_id": str(row.id),
            "note": body.note,
        },
    )
    await session.flush()
    return CorrectiveActionOut.model_validate(row)


# --- complaints ----------------------------------------------------------------------------------


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Raise a complaint (from an interaction, or for a customer)",
    description="With `remedy_sought` it leaves step 1 at once and the acknowledgement goes "
    "to the customer on the interaction's channel (a mail on its thread, a line in its open "
    "chat), or is kept for the agent to read out.",
)
async def raise_complaint(
    body: ComplaintRaise, principal: AnyUser, session: Session, request: Request
) -> ComplaintOut:
    who = await who_of(principal, session)
    complaint = await service.raise_complaint(session, body, who, context_of(request))
    return await views.complaint_out(session, complaint)


@router.get("", summary="List complaints, newest first (agents: those they own or raised)")
async def list_complaints(
    principal: AnyUser,
    session: Session,
    page: Pagination,
    step: Annotated[Step | None, Query()] = None,
    open_only: Annotated[bool, Query(alias="open", description="only steps 1-5")] = False,
    overdue: Annotated[bool | None, Query()] = None,
    customer_id: Annotated[uuid.UUID | None, Query()] = None,
    owner_agent_id: Annotated[uuid.UUID | None, Query()] = None,
    raised_from: Annotated[datetime | None, Query()] = None,
    raised_to: Annotated[datetime | None, Query()] = None,
) -> Page[ComplaintSummary]:
    who = await who_of(principal, session)
    where = views.ComplaintFilter(
        step=step,
        open_only=open_only,
        overdue=overdue,
        customer_id=customer_id,
        owner_agent_id=owner_agent_id,
        raised_from=_aware(raised_from, "raised_from"),
        raised_to=_aware(raised_to, "raised_to"),
    )
    items, total = await views.list_complaints(
        session, where, who, limit=page.limit, offset=page.offset
    )
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


def _aware(moment: datetime | None, field: str) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        raise InvalidField(field, "give a time zone (2026-12-01T00:00:00Z)")
    return moment


async def _visible(
    principal: Principal, session: AsyncSession, key: str, *, lock: bool = False
) -> tuple[acts.Who, Complaint]:
    """The complaint, if the caller may see it; locked for a change, which an agent holding an
    interaction about an unowned complaint makes as its new owner (`service.claim`)."""
    who = await who_of(principal, session)
    complaint = await service.find(session, key, lock=lock)
    await service.ensure_visible(session, complaint, who)
    if lock:
        await service.claim(session, complaint, who)
    return who, complaint


@router.get("/{complaint}", summary="One complaint, by id or reference (C-2026-004217)")
async def get_complaint(
    complaint: ComplaintKey, principal: AnyUser, session: Session
) -> ComplaintOut:
    _, found = await _visible(principal, session, complaint)
    return await views.complaint_out(session, found)


@router.get("/{complaint}/timeline", summary="The complaint's history, oldest first")
async def get_timeline(
    complaint: ComplaintKey, principal: AnyUser, session: Session, page: Pagination
) -> Page[TimelineEntry]:
    _, found = await _visible(principal, session, complaint)
    items, total = await views.timeline(session, found, limit=page.limit, offset=page.offset)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post(
    "/{complaint}/actions/{action}",
    summary="Take a workflow action: it checks the step, who acts and the records",
    responses={
        403: {"description": "Not for this caller (the detail says who may)"},
        409: {"description": "Not taken at this step (the detail says where it is)"},
        422: {"description": "Records missing (`fields` names each)"},
    },
)
async def take_action(
    complaint: ComplaintKey,
    action: Action,
    body: ActionRecords,
    principal: AnyUser,
    session: Session,
    request: Request,
) -> ComplaintOut:
    who, found = await _visible(principal, session, complaint, lock=True)
    await service.act(session, found, action, body, who, context_of(request))
    return await views.complaint_out(session, found)


@router.patch("/{complaint}", summary="Keep records of the step it is at")
async def keep_records(
    complaint: ComplaintKey, body: RecordsUpdate, principal: AnyUser, session: Session
) -> ComplaintOut:
    who, found = await _visible(principal, session, complaint, lock=True)
    await work.keep_records(session, found, body.model_dump(exclude_unset=True), who)
    await session.flush()
    return await views.complaint_out(session, found)


@router.post("/{complaint}/notes", status_code=status.HTTP_201_CREATED, summary="Add a note")
async def add_note(
    complaint: ComplaintKey, body: NoteCreate, principal: AnyUser, session: Session
) -> NoteOut:
    who, found = await _visible(principal, session, complaint, lock=True)
    note = await work.add_note(session, found, body.text, body.evidence, who, utcnow())
    return NoteOut.model_validate(note)


@router.post("/{complaint}/interactions", summary="Link another interaction about it")
async def link_interaction(
    complaint: ComplaintKey, body: InteractionLink, principal: AnyUser, session: Session
) -> ComplaintOut:
    who, found = await _visible(principal, session, complaint, lock=True)
    await work.link_interaction(session, found, body.interaction_id, who, utcnow())
    return await views.complaint_out(session, found)


@router.post(
    "/{complaint}/acknowledgement",
    summary="Confirm the acknowledgement was read out to the customer",
)
async def acknowledgement_said(
    complaint: ComplaintKey, body: AcknowledgementSaid, principal: AnyUser, session: Session
) -> ComplaintOut:
    if not body.said:
        raise InvalidField("said", "send true once the acknowledgement was said")
    who, found = await _visible(principal, session, complaint, lock=True)
    await work.acknowledgement_said(session, found, who, utcnow())
    return await views.complaint_out(session, found)


@router.post(
    "/{complaint}/corrective-actions",
    status_code=status.HTTP_201_CREATED,
    summary="Record a corrective action (step 5)",
)
async def add_corrective_action(
    complaint: ComplaintKey, body: CorrectiveActionCreate, principal: Staff, session: Session
) -> CorrectiveActionOut:
    who, found = await _visible(principal, session, complaint, lock=True)
    row = await work.add_corrective_action(
        session, found, body.action, body.owner, body.due_on, who, utcnow()
    )
    return CorrectiveActionOut.model_validate(row)
