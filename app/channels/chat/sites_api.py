"""The chat sites' admin API (`/v1/chat/sites`): staff read them, admins make, change, delete
them and rotate their secrets (docs/channels.md, "Web chat").

A site's identity secret is made here, by the server, and is in two answers only: the one that
makes the site and the one that rotates its secret. Nothing lists, reads or logs it after that;
its events name the site, never the secret.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, status
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.auth.dependencies import Admin, Session, Staff
from app.channels.chat.models import Chat, ChatSite
from app.channels.chat.schemas import (
    ChatSiteCreate,
    ChatSiteOut,
    ChatSiteUpdate,
    ChatSiteWithSecret,
)
from app.channels.chat.sites import new_identity_secret
from app.core.errors import Conflict, InvalidField, NotFound
from app.core.events import events_of
from app.core.pagination import Page, Pagination
from app.interactions.models import Interaction, InteractionState
from app.queues.models import Queue

router = APIRouter(prefix="/v1/chat/sites", tags=["chat"])

NAME_UNIQUE = "uq_chat_sites_name"


class ChatSiteNotFound(NotFound):
    code = "chat_site_not_found"


class ChatSiteNameTaken(Conflict):
    code = "chat_site_name_taken"


class ChatSiteHasChats(Conflict):
    code = "chat_site_has_chats"


@router.get("", summary="The websites the chat widget runs on (never their secrets)")
async def list_sites(_: Staff, session: Session, page: Pagination) -> Page[ChatSiteOut]:
    total = await session.scalar(select(func.count()).select_from(ChatSite))
    rows = await session.scalars(
        select(ChatSite).order_by(ChatSite.name).limit(page.limit).offset(page.offset)
    )
    items = [ChatSiteOut.model_validate(row) for row in rows]
    return Page(items=items, total=total or 0, limit=page.limit, offset=page.offset)


@router.get("/{site_id}", summary="One chat site (never its secret)")
async def get_site(site_id: uuid.UUID, _: Staff, session: Session) -> ChatSiteOut:
    return ChatSiteOut.model_validate(await _site(session, site_id))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Make a chat site: its queue, origins, timings; its secret is in this answer only",
    responses={409: {"description": "A site of that name exists"}},
)
async def create_site(
    body: ChatSiteCreate, principal: Admin, session: Session
) -> ChatSiteWithSecret:
    await _ensure_queue(session, body.queue_id)
    await _ensure_name_free(session, body.name, owner=None)
    site = ChatSite(**body.model_dump(), identity_secret=new_identity_secret())
    await _insert(session, site)
    await session.refresh(site)
    _record(session, "chat_site.created", site, principal.actor, _settings(body.model_dump()))
    return ChatSiteWithSecret.model_validate(site)


@router.patch(
    "/{site_id}",
    summary="Change a chat site's name, queue, origins, timings or limits",
    description="Origins and limits are read when a customer's socket opens: sockets opened "
    "after the change follow it; the timings hold at once (the sweep reads them). The site's "
    "name is part of the contact point its signed-in customers are known by (`chat` "
    "`<name>:<their id>`): once it has had a chat, it keeps its name.",
    responses={
        409: {"description": "Another site has that name, or this one has had chats (no rename)"}
    },
)
async def update_site(
    site_id: uuid.UUID, body: ChatSiteUpdate, principal: Admin, session: Session
) -> ChatSiteOut:
    site = await _site(session, site_id, lock=True)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "queue_id" in changes:
        await _ensure_queue(session, changes["queue_id"])
    if "name" in changes and changes["name"] != site.name:
        await _ensure_name_free(session, changes["name"], owner=site.id)
        if (await _chats_of(session, site))[0]:
            # Its signed-in customers are known by `<name>:<their id>`: renamed, they would
            # no longer be found, and each would become a new customer at their next chat.
            raise ChatSiteHasChats(
                f"chat site {site.name!r} has had chats: its name is part of how its signed-in"
                " customers are known, so it cannot change. Make a new site for a new name"
            )
    for name, value in changes.items():
        setattr(site, name, value)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as error:
        _raise_if_name_taken(error, changes.get("name", site.name))
        raise
    await session.refresh(site)
    _record(session, "chat_site.updated", site, principal.actor, _settings(changes))
    return ChatSiteOut.model_validate(site)


@router.post(
    "/{site_id}/secret",
    summary="Rotate a chat site's identity secret: the new one is in this answer only",
    description="From now on only signatures made with the new secret are taken: sign with "
    "it on your server at once (a socket already past its hello is not affected).",
)
async def rotate_secret(
    site_id: uuid.UUID, principal: Admin, session: Session
) -> ChatSiteWithSecret:
    site = await _site(session, site_id)
    site.identity_secret = new_identity_secret()
    await session.flush()
    await session.refresh(site)
    _record(session, "chat_site.secret_rotated", site, principal.actor, {})
    return ChatSiteWithSecret.model_validate(site)


@router.delete(
    "/{site_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a chat site that has had no chats",
    responses={409: {"description": "The site has chats: they are records of it"}},
)
async def delete_site(site_id: uuid.UUID, principal: Admin, session: Session) -> None:
    """Refused (409) once the site has had a chat, as a queue with interactions is: its chats,
    and its visitors with the customers they were linked to, would go with it (the tables
    cascade), and a contact center keeps the record of where each chat came from, for its
    reports and for a customer's history. An open chat would also lose its customer's socket
    mid-conversation. A site merely made by mistake, or never embedded, deletes cleanly.

    The site's row is locked first: a chat opening at that moment waits for the delete (its
    row refers to the site) and then finds no site, so none is counted out and then cascaded."""
    site = await _site(session, site_id, lock=True)
    chats, still_open = await _chats_of(session, site)
    if chats:
        raise ChatSiteHasChats(
            f"chat site {site.name!r} has {chats} chats ({still_open} open), which are records "
            "of it: it cannot be deleted. Take the widget off the site's pages to stop new chats"
        )
    await session.delete(site)
    await session.flush()
    _record(session, "chat_site.deleted", site, principal.actor, {})


async def _chats_of(session: Session, site: ChatSite) -> tuple[int, int]:
    """How many chats the site has had, and how many of them are going on (waiting, offered
    or with an agent)."""
    going_on = Interaction.state.in_(
        [InteractionState.queued, InteractionState.offered, InteractionState.assigned]
    )
    query = (
        select(func.count(), func.count().filter(going_on))
        .select_from(Chat)
        .join(Interaction, Interaction.id == Chat.interaction_id)
        .where(Chat.site_id == site.id)
    )
    chats, still_open = (await session.execute(query)).one()
    return int(chats), int(still_open)


async def _site(session: Session, site_id: uuid.UUID, *, lock: bool = False) -> ChatSite:
    site = await session.get(ChatSite, site_id, with_for_update=lock)
    if site is None:
        raise ChatSiteNotFound(f"no chat site with id {site_id}")
    return site


async def _ensure_queue(session: Session, queue_id: uuid.UUID) -> None:
    if await session.get(Queue, queue_id) is None:
        raise InvalidField("queue_id", f"no queue with id {queue_id}")


async def _ensure_name_free(session: Session, name: str, owner: uuid.UUID | None) -> None:
    """No two sites whose names differ only in case: the name is what customers' contact
    points and the demo page know a site by, and `Shop` beside `shop` is a mistake."""
    query = select(ChatSite.id).where(func.lower(ChatSite.name) == name.lower())
    holders = set((await session.scalars(query)).all()) - {owner}
    if holders:
        raise ChatSiteNameTaken(f"a chat site named {name!r} already exists")


async def _insert(session: Session, site: ChatSite) -> None:
    """Insert in a savepoint: two admins racing past the name's look-up get a 409, not a 500."""
    try:
        async with session.begin_nested():
            session.add(site)
    except IntegrityError as error:
        _raise_if_name_taken(error, site.name)
        raise


def _raise_if_name_taken(error: IntegrityError, name: str) -> None:
    if NAME_UNIQUE in str(error.orig):
        raise ChatSiteNameTaken(f"a chat site named {name!r} already exists") from error


def _settings(values: dict[str, Any]) -> dict[str, Any]:
    """What an event says of a site's settings: JSON's types (the secret is never among them)."""
    return {
        name: str(value) if isinstance(value, uuid.UUID) else value
        for name, value in values.items()
    }


def _record(
    session: Session, kind: str, site: ChatSite, actor: str, settings: dict[str, Any]
) -> None:
    events_of(session).add(
        kind,
        subject_type="chat_site",
        subject_id=site.id,
        actor=actor,
        payload={"name": site.name, **settings},
    )
