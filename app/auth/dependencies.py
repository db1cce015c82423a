"""Permissions as composable FastAPI dependencies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import service
from app.auth.models import Role
from app.auth.principal import Principal
from app.core import pg
from app.core.db import get_session
from app.core.errors import Forbidden, NotAuthenticated

_bearer = HTTPBearer(auto_error=False, description="A login token (cct_…) or a gateway key (cck_…)")

# scope="function": commit before the response leaves, so a 2xx always means "it is written".
Session = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def hot_connection(request: Request) -> AsyncIterator[asyncpg.Connection]:
    """FastAPI dependency: one connection of the hot-path pool (app.core.pg) for the request.

    Shared by the caller's look-up and the endpoint, so a request waits for a free connection
    once, not once per step. Statements on it run on their own, not in a request transaction.
    """
    async with request.app.state.pg.acquire(timeout=pg.ACQUIRE_TIMEOUT) as connection:
        yield connection


# scope="function": back to the pool before the response leaves, like Session.
HotConnection = Annotated[asyncpg.Connection, Depends(hot_connection, scope="function")]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def current_principal(
    request: Request, session: Session, credentials: Credentials
) -> Principal:
    secret = _secret(credentials)
    settings = request.app.state.settings
    return _known(await service.principal_for_secret(session, secret, settings))


async def hot_principal(
    request: Request, connection: HotConnection, credentials: Credentials
) -> Principal:
    """`current_principal` without the ORM session, for endpoints on the hot-path pool."""
    secret = _secret(credentials)
    settings = request.app.state.settings
    return _known(await service.hot_principal_for_secret(connection, secret, settings))


def _secret(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None:
        raise NotAuthenticated(
            "send an Authorization: Bearer <token> header; log in at /v1/auth/login"
        )
    return credentials.credentials


def _known(principal: Principal | None) -> Principal:
    if principal is None:
        raise NotAuthenticated("the token is unknown, expired or revoked; log in again")
    return principal


def require_role(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets through only users holding one of `roles`."""
    allowed = ", ".join(role.value for role in roles)

    async def dependency(
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        if not principal.has_role(*roles):
            raise Forbidden(f"this needs one of the roles: {allowed}")
        return principal

    return dependency


async def require_gateway(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if principal.kind != "gateway" and not principal.has_role(Role.admin):
        raise Forbidden("this needs a gateway key (or an admin)")
    return principal


AnyUser = Annotated[Principal, Depends(require_role(Role.agent, Role.supervisor, Role.admin))]
Staff = Annotated[Principal, Depends(require_role(Role.supervisor, Role.admin))]
Admin = Annotated[Principal, Depends(require_role(Role.admin))]
Gateway = Annotated[Principal, Depends(require_gateway)]
