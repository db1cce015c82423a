"""Permissions as composable FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import asyncpg
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import service
from app.auth.models import Role
from app.auth.principal import Principal
from app.core.db import get_session
from app.core.errors import Forbidden, NotAuthenticated
from app.core.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="A login token (cct_…) or a gateway key (cck_…)")

# scope="function": commit before the response leaves, so a 2xx always means "it is written".
Session = Annotated[AsyncSession, Depends(get_session, scope="function")]


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def current_principal(
    request: Request, session: Session, credentials: Credentials
) -> Principal:
    secret = _secret(None if credentials is None else credentials.credentials)
    settings = request.app.state.settings
    return known_principal(await service.principal_for_secret(session, secret, settings))


def bearer_secret(authorization: str | None) -> str:
    """The secret of an `Authorization: Bearer <secret>` header as given, or the 401 asking for
    one: for endpoints that skip FastAPI's dependencies (POST /v1/interactions)."""
    scheme, _, given = (authorization or "").partition(" ")
    return _secret(given.strip() if scheme.lower() == "bearer" else None)


async def hot_principal(
    connection: asyncpg.Connection, secret: str, settings: Settings
) -> Principal:
    """`current_principal` on a hot-path connection (app.core.pg), with the same errors."""
    return known_principal(await service.hot_principal_for_secret(connection, secret, settings))


def _secret(given: str | None) -> str:
    if not given:
        raise NotAuthenticated(
            "send an Authorization: Bearer <token> header; log in at /v1/auth/login"
        )
    return given


def known_principal(principal: Principal | None) -> Principal:
    """The principal, or the 401 for a token or key that matched no one."""
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
