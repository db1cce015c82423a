"""IVR flows: saved as immutable versions, published one at a time, and read at a call's
start. Services flush but never commit. Dialled numbers are mapped in app/ivr/numbers.py.

A version's document never changes. Publishing a version retires the one before (a roll back
is publishing an earlier version again), and a call keeps the version it started on: the
gateway reads `flow_for_call` once, at the call's start, and `flow_version` for every event
after.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeAlias

import asyncpg
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import driver_connection
from app.core.errors import AppError, Conflict, InvalidField, NotFound
from app.core.events import events_of
from app.ivr import numbers
from app.ivr.flow import EnqueueNode, Flow
from app.ivr.models import IvrFlow, IvrFlowVersion, VersionState
from app.ivr.numbers import FlowNotFound
from app.ivr.schemas import (
    FlowCreate,
    FlowOut,
    FlowUpdate,
    FlowVersionCreate,
    FlowVersionOut,
    VersionSummary,
)
from app.ivr.validate import problems
from app.queues.models import Queue
from app.skills.models import Skill


class InvalidFlow(AppError):
    """A flow whose nodes do not fit together: `fields` names each node at fault."""

    status_code = 422
    code = "invalid_flow"


class FlowVersionNotFound(NotFound):
    code = "ivr_flow_version_not_found"


class FlowNameTaken(Conflict):
    code = "ivr_flow_name_taken"


class NoFlowForCall(NotFound):
    code = "no_ivr_flow"


class CallFlow(NamedTuple):
    """The flow a call runs on: keep `flow_id` and `version` with the call."""

    flow_id: uuid.UUID
    version: int
    flow: Flow


# An ORM session (its transaction), or a hot-path connection or pool (app/core/pg.py).
Database: TypeAlias = AsyncSession | asyncpg.Connection | asyncpg.Pool


def ensure_valid(flow: Flow, *, field: str = "document") -> None:
    """Refuse `flow` (a 422) with every problem, each field under `field` (`document.start`,
    `document.nodes.menu.options.2`)."""
    _refuse([(f"{field}.{p.field}", p.problem) for p in problems(flow)])


def _refuse(found: list[tuple[str, str]]) -> None:
    if found:
        fields = [{"field": field, "problem": problem} for field, problem in found]
        detail = "; ".join(f"{field}: {problem}" for field, problem in found)
        raise InvalidFlow(f"the flow is not valid: {detail}", fields=fields)


async def ensure_savable(session: AsyncSession, flow: Flow) -> None:
    """Valid, and every queue and skill it names exists (a call would fail there)."""
    ensure_valid(flow)
    queues = await _known(session, Queue.name, flow.queues_named())
    skills = await _known(
        session,
        Skill.name,
        {
            s.skill
            for node in flow.nodes.values()
            if isinstance(node, EnqueueNode)
            for s in node.skills
        },
    )
    found = []
    for node_id, node in flow.nodes.items():
        queue = getattr(node, "queue", None)
        if queue is not None and queue.lower() not in queues:
            found.append((f"document.nodes.{node_id}.queue", f"no queue is named {queue!r}"))
        for index, need in enumerate(node.skills if isinstance(node, EnqueueNode) else []):
            if need.skill not in skills:
                found.append(
                    (f"document.nodes.{node_id}.skills[{index}].skill", f"no skill {need.skill!r}")
                )
    _refuse(found)


async def _known(session: AsyncSession, column: Any, names: Iterable[str]) -> set[str]:
    wanted = {name.lower() for name in names}
    if not wanted:
        return set()
    query = select(func.lower(column)).where(func.lower(column).in_(wanted))
    return set((await session.execute(query)).scalars())


# flows and their versions


async def create_flow(session: AsyncSession, data: FlowCreate, *, actor: str) -> FlowOut:
    await ensure_savable(session, data.document)
    await _ensure_name_free(session, data.name, owner=None)
    flow = IvrFlow(id=uuid.uuid4(), name=data.name, description=data.description, created_by=actor)
    session.add(flow)
    await session.flush()
    events_of(session).add(
        "ivr_flow.created",
        subject_type="ivr_flow",
        subject_id=flow.id,
        actor=actor,
        payload={"name": flow.name},
    )
    await _save_version(session, flow, data.document, actor=actor)
    if data.publish:
        await publish(session, flow.id, 1, actor=actor)
    if data.is_default:
        await _make_default(session, flow, actor=actor)
    return await get_flow_view(session, flow.id)


async def _ensure_name_free(session: AsyncSession, name: str, owner: uuid.UUID | None) -> None:
    query = select(IvrFlow.id).where(func.lower(IvrFlow.name) == name.lower())
    holder = (await session.execute(query)).scalar_one_or_none()
    if holder is not None and holder != owner:
        raise FlowNameTaken(f"a flow named {name!r} already exists")


async def _flow(session: AsyncSession, flow_id: uuid.UUID, *, lock: bool = False) -> IvrFlow:
    """The flow; locked, its versions and default are changed one writer at a time."""
    query = select(IvrFlow).where(IvrFlow.id == flow_id).execution_options(populate_existing=True)
    flow = (await session.execute(query.with_for_update() if lock else query)).scalar_one_or_none()
    if flow is None:
        raise FlowNotFound(f"no IVR flow with id {flow_id}")
    return flow


async def get_flow_view(session: AsyncSession, flow_id: uuid.UUID) -> FlowOut:
    flow = await _flow(session, flow_id)
    return (await _views(session, [flow]))[0]


async def list_flows(
    session: AsyncSession, *, limit: int, offset: int
) -> tuple[list[FlowOut], int]:
    """A page of the flows by name, and how many there are in all."""
    total = (await session.execute(select(func.count()).select_from(IvrFlow))).scalar_one()
    page = select(IvrFlow).order_by(IvrFlow.name, IvrFlow.id).limit(limit).offset(offset)
    return await _views(session, list((await session.execute(page)).scalars())), total


async def _views(session: AsyncSession, flows: list[IvrFlow]) -> list[FlowOut]:
    versions: dict[uuid.UUID, list[VersionSummary]] = {flow.id: [] for flow in flows}
    if flows:
        query = (
            select(IvrFlowVersion)
            .where(IvrFlowVersion.flow_id.in_(versions))
            .order_by(IvrFlowVersion.flow_id, IvrFlowVersion.version.desc())
        )
        for row in (await session.execute(query)).scalars():
            versions[row.flow_id].append(VersionSummary.model_validate(row))
    return [
        FlowOut(
            id=flow.id,
            name=flow.name,
            description=flow.description,
            is_default=flow.is_default,
            published_version=next(
                (v.version for v in versions[flow.id] if v.state is VersionState.published), None
            ),
            versions=versions[flow.id],
            created_by=flow.created_by,
            created_at=flow.created_at,
            updated_at=flow.updated_at,
        )
        for flow in flows
    ]


async def update_flow(
    session: AsyncSession, flow_id: uuid.UUID, data: FlowUpdate, *, actor: str
) -> FlowOut:
    flow = await _flow(session, flow_id, lock=True)
    if data.name is not None:
        await _ensure_name_free(session, data.name, owner=flow.id)
        flow.name = data.name
    if data.description is not None:
        flow.description = data.description
    if data.is_default is True:
        await _make_default(session, flow, actor=actor)
    elif data.is_default is False:
        flow.is_default = False
    await session.flush()
    events_of(session).add(
        "ivr_flow.updated",
        subject_type="ivr_flow",
        subject_id=flow.id,
        actor=actor,
        payload=data.model_dump(mode="json", exclude_unset=True),
    )
    return await get_flow_view(session, flow.id)


async def _make_default(session: AsyncSession, flow: IvrFlow, *, actor: str) -> None:
    """`flow` becomes the default; the one before stops being it first (one default at most,
    held by a partial unique index)."""
    await session.execute(
        update(IvrFlow)
        .where(IvrFlow.is_default, IvrFlow.id != flow.id)
        .values(is_default=False)
        .execution_options(synchronize_session=False)
    )
    flow.is_default = True
    await session.flush()


async def add_version(
    session: AsyncSession, flow_id: uuid.UUID, data: FlowVersionCreate, *, actor: str
) -> FlowVersionOut:
    await ensure_savable(session, data.document)
    flow = await _flow(session, flow_id, lock=True)
    saved = await _save_version(session, flow, data.document, actor=actor)
    if data.publish:
        return await publish(session, flow.id, saved.version, actor=actor)
    return _version_view(saved)


async def _save_version(
    session: AsyncSession, flow: IvrFlow, document: Flow, *, actor: str
) -> IvrFlowVersion:
    """The flow's next version, a draft; the caller holds the flow's lock (or made it)."""
    latest = select(func.coalesce(func.max(IvrFlowVersion.version), 0)).where(
        IvrFlowVersion.flow_id == flow.id
    )
    number = (await session.execute(latest)).scalar_one() + 1
    saved = IvrFlowVersion(
        flow_id=flow.id,
        version=number,
        state=VersionState.draft,
        # Whole, defaults written out: a default changed in code later must not change
        # what a saved version does.
        document=document.model_dump(mode="json"),
        created_by=actor,
    )
    session.add(saved)
    flow.updated_at = datetime.now(UTC)
    await session.flush()
    events_of(session).add(
        "ivr_flow.version_saved",
        subject_type="ivr_flow",
        subject_id=flow.id,
        actor=actor,
        payload={"version": number, "nodes": len(document.nodes)},
    )
    return saved


async def get_version(session: AsyncSession, flow_id: uuid.UUID, version: int) -> FlowVersionOut:
    await _flow(session, flow_id)
    return _version_view(await _version(session, flow_id, version))


async def _version(session: AsyncSession, flow_id: uuid.UUID, version: int) -> IvrFlowVersion:
    found = await session.get(IvrFlowVersion, (flow_id, version), populate_existing=True)
    if found is None:
        raise FlowVersionNotFound(f"flow {flow_id} has no version {version}")
    return found


async def stored_flow(session: AsyncSession, flow_id: uuid.UUID, version: int | None) -> Flow:
    """A stored flow's `version`, or its published one when `version` is None."""
    await _flow(session, flow_id)
    if version is not None:
        return _version_view(await _version(session, flow_id, version)).document
    query = select(IvrFlowVersion.version).where(
        IvrFlowVersion.flow_id == flow_id, IvrFlowVersion.state == VersionState.published
    )
    published = (await session.execute(query)).scalar_one_or_none()
    if published is None:
        raise FlowVersionNotFound(f"flow {flow_id} has no published version: name a version")
    return _version_view(await _version(session, flow_id, published)).document


def _version_view(row: IvrFlowVersion) -> FlowVersionOut:
    return FlowVersionOut(
        flow_id=row.flow_id,
        version=row.version,
        state=row.state,
        created_by=row.created_by,
        created_at=row.created_at,
        published_at=row.published_at,
        document=Flow.model_validate(row.document),
    )


async def publish(
    session: AsyncSession, flow_id: uuid.UUID, version: int, *, actor: str
) -> FlowVersionOut:
    """New calls get `version` from now on; the version published before is retired. An
    earlier version published again is a roll back. Calls under way keep theirs."""
    await _flow(session, flow_id, lock=True)
    target = await _version(session, flow_id, version)
    if target.state is VersionState.published:
        return _version_view(target)
    current = (
        await session.execute(
            select(IvrFlowVersion).where(
                IvrFlowVersion.flow_id == flow_id,
                IvrFlowVersion.state == VersionState.published,
            )
        )
    ).scalar_one_or_none()
    if current is not None:
        current.state = VersionState.retired
        await session.flush()  # retired before the next is published: one published at most
    target.state = VersionState.published
    target.published_at = datetime.now(UTC)
    await session.flush()
    events_of(session).add(
        "ivr_flow.published",
        subject_type="ivr_flow",
        subject_id=flow_id,
        actor=actor,
        payload={"version": version, "retired": None if current is None else current.version},
    )
    return _version_view(target)


# a call's flow: read by the gateways, at a call's start and at each event

# The dialled number's own flow if it has a published version, else the default flow's.
FLOW_FOR_CALL = """
SELECT v.flow_id, v.version, v.document
FROM ivr_flow_versions v
JOIN ivr_flows f ON f.id = v.flow_id
LEFT JOIN ivr_numbers n ON n.flow_id = f.id AND n.number = $1
WHERE v.state = 'published' AND (n.number IS NOT NULL OR f.is_default)
ORDER BY n.number IS NULL
LIMIT 1
"""

FLOW_VERSION = "SELECT document FROM ivr_flow_versions WHERE flow_id = $1 AND version = $2"


async def flow_for_call(
    db: Database, dialled_number: str, *, default_region: str | None = None
) -> CallFlow:
    """The flow a new call to `dialled_number` runs on: the number's own published flow, or
    the default flow's published version. Keep its id and version with the call. A number
    that does not parse (a SIP address) gets the default flow."""
    try:
        number: str | None = numbers.dialled(dialled_number, default_region)
    except InvalidField:
        number = None
    row = await _fetchrow(db, FLOW_FOR_CALL, number)
    if row is None:
        raise NoFlowForCall(
            f"no published flow answers {dialled_number!r}: map the number to a flow, or "
            "publish a default flow"
        )
    return CallFlow(row["flow_id"], row["version"], _document(row["document"]))


async def flow_version(db: Database, flow_id: uuid.UUID, version: int) -> Flow:
    """The version a call started on, published or not since."""
    row = await _fetchrow(db, FLOW_VERSION, flow_id, version)
    if row is None:
        raise FlowVersionNotFound(f"flow {flow_id} has no version {version}")
    return _document(row["document"])


async def _fetchrow(db: Database, query: str, *arguments: object) -> asyncpg.Record | None:
    connection = await driver_connection(db) if isinstance(db, AsyncSession) else db
    return await connection.fetchrow(query, *arguments)


def _document(value: str | dict[str, Any]) -> Flow:
    """A stored document (text where no JSON codec is set on the connection)."""
    return Flow.model_validate(json.loads(value) if isinstance(value, str) else value)
