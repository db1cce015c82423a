from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials

from app.auth import service
from app.auth.dependencies import Admin, AnyUser, Session, Staff, _bearer
from app.auth.models import Role
from app.auth.schemas import (
    GatewayKeyCreate,
    GatewayKeyCreated,
    GatewayKeyOut,
    LoginIn,
    TokenOut,
    UserCreate,
    UserCreated,
    UserOut,
    UserUpdate,
)
from app.core.pagination import Page, Pagination

router = APIRouter(prefix="/v1")


@router.post(
    "/auth/login",
    tags=["auth"],
    summary="Log in and get a bearer token",
    responses={
        401: {"description": "Wrong username or password (the same answer for either)"},
        429: {
            "description": "Too many failed logins for this username or from this address;"
            " the Retry-After header says in how many seconds to try again"
        },
    },
)
async def login(body: LoginIn, session: Session, request: Request) -> TokenOut:
    state = request.app.state
    user, secret, expires_at = await service.login(
        session,
        body.username,
        body.password,
        state.settings,
        limits=state.login_limits,
        address=None if request.client is None else request.client.host,
        pool=state.pg,
    )
    return TokenOut(access_token=secret, expires_at=expires_at, user=UserOut.model_validate(user))


@router.post(
    "/auth/logout",
    tags=["auth"],
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke this token",
)
async def logout(
    _: AnyUser,
    session: Session,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    assert credentials is not None
    await service.logout(session, credentials.credentials, request.app.state.settings)


@router.get("/auth/me", tags=["auth"], summary="The logged-in user")
async def me(principal: AnyUser, session: Session) -> UserOut:
    return UserOut.model_validate(await service.get_user(session, principal.id))


@router.get("/users", tags=["users"], summary="List users")
async def list_users(
    _: Staff, session: Session, page: Pagination, role: Annotated[Role | None, Query()] = None
) -> Page[UserOut]:
    users, total = await service.list_users(
        session, role=role, limit=page.limit, offset=page.offset
    )
    items = [UserOut.model_validate(u) for u in users]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post(
    "/users",
    tags=["users"],
    status_code=status.HTTP_201_CREATED,
    summary="Create an admin or supervisor",
)
async def create_user(body: UserCreate, principal: Admin, session: Session) -> UserCreated:
    user, generated = await service.create_user(session, body, actor=principal.actor)
    return UserCreated(**UserOut.model_validate(user).model_dump(), initial_password=generated)


@router.get("/users/{user_id}", tags=["users"], summary="One user")
async def get_user(user_id: uuid.UUID, _: Staff, session: Session) -> UserOut:
    return UserOut.model_validate(await service.get_user(session, user_id))


@router.patch("/users/{user_id}", tags=["users"], summary="Change name, role, password or activity")
async def update_user(
    user_id: uuid.UUID, body: UserUpdate, principal: Admin, session: Session
) -> UserOut:
    password_hash = await service.new_password_hash(body)  # before the session's connection
    user = await service.get_user(session, user_id)
    return UserOut.model_validate(
        await service.update_user(
            session, user, body, actor=principal.actor, password_hash=password_hash
        )
    )


@router.get("/gateway-keys", tags=["gateway keys"], summary="List gateway keys")
async def list_gateway_keys(_: Admin, session: Session, page: Pagination) -> Page[GatewayKeyOut]:
    keys, total = await service.list_gateway_keys(session, limit=page.limit, offset=page.offset)
    items = [GatewayKeyOut.model_validate(k) for k in keys]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post(
    "/gateway-keys",
    tags=["gateway keys"],
    status_code=status.HTTP_201_CREATED,
    summary="Create a key for a telephony gateway or mail relay (shown once)",
)
async def create_gateway_key(
    body: GatewayKeyCreate, principal: Admin, session: Session, request: Request
) -> GatewayKeyCreated:
    key, secret = await service.create_gateway_key(
        session, body, actor=principal.actor, settings=request.app.state.settings
    )
    return GatewayKeyCreated(**GatewayKeyOut.model_validate(key).model_dump(), key=secret)


@router.delete("/gateway-keys/{key_id}", tags=["gateway keys"], summary="Revoke a gateway key")
async def revoke_gateway_key(
    key_id: uuid.UUID, principal: Admin, session: Session
) -> GatewayKeyOut:
    return GatewayKeyOut.model_validate(
        await service.revoke_gateway_key(session, key_id, actor=principal.actor)
    )
