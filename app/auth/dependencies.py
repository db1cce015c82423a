"""Who may do what: the rules, and the FastAPI dependencies that hold every endpoint to them.

A rule names the callers it lets through (the roles of users, and `gateway` for gateway keys)
and the refusal a caller it does not let through hears (403), which says who may. Every
endpoint guards itself with one of them; docs/api.md's "Who may do what" is their table, and
tests/auth/test_who_may_do_what.py holds each of its rows to what the endpoints answer. Finer
rules that need the data (an agent sees only its own interactions, changes only customers it
served) live beside their data and are named in the table's cells.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Rule:
    """The callers (`Principal.who`: a role, or "gateway") an endpoint lets through."""

    who: frozenset[str]
    refusal: str

    def allows(self, principal: Principal) -> bool:
        return principal.who in self.who

    def check(self, principal: Principal) -> Principal:
        """The principal, or the 403 that says who may."""
        if principal.who not in self.who:
            raise Forbidden(self.refusal)
        return principal


def _roles(*roles: Role) -> Rule:
    names = ", ".join(role.value for role in roles)
    return Rule(frozenset(role.value for role in roles), f"this needs one of the roles: {names}")


ANY_USER = _roles(Role.agent, Role.supervisor, Role.admin)
STAFF = _roles(Role.supervisor, Role.admin)
ADMIN = _roles(Role.admin)
# Machine clients' endpoints (the channels' webhooks); an admin may stand in for one.
GATEWAY = Rule(frozenset({"gateway", Role.admin.value}), "this needs a gateway key (or an admin)")
# New work comes in through a channel. An agent raises none: work it holds that another team
# must serve is moved with a transfer, which keeps its history and its place in the new queue.
RAISE_WORK = Rule(
    GATEWAY.who,
    "new interactions come in through a channel: a gateway key (or an admin) posts them;"
    " an agent moves work it holds with POST /v1/interactions/{id}/transfer",
)
# The desk (its socket, and the ticket that opens it) is an agent's own.
DESK = Rule(frozenset({Role.agent.value}), "only an agent has a desk: log in as an agent")
# The customer left: the channel saw it (the gateway), or a supervisor closes it by hand.
REPORT_ABANDON = Rule(
    frozenset({"gateway", Role.supervisor.value, Role.admin.value}),
    "agents complete or transfer; gateways and supervisors report abandons",
)


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


def requires(rule: Rule) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets through only the callers `rule` allows."""

    async def dependency(
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        return rule.check(principal)

    return dependency


# Prometheus's scrapers carry no user's token: /metrics is read with a token of its own, the
# same on every replica and kept in the scraper's configuration (CC_METRICS_TOKEN). Not a
# login: a leaked one shows the center's figures and can do nothing else.
_metrics_bearer = HTTPBearer(
    auto_error=False, scheme_name="MetricsToken", description="The metrics token (CC_METRICS_TOKEN)"
)
METRICS_CLOSED = (
    "/metrics is read with the metrics token, and none is set: set CC_METRICS_TOKEN and send it"
    " as Authorization: Bearer <token>"
)
NOT_THE_SCRAPER = "send the metrics token (CC_METRICS_TOKEN) as Authorization: Bearer <token>"


async def metrics_scraper(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_metrics_bearer)],
) -> None:
    """Lets through a caller with the metrics token (compared in constant time), answers 401
    to anyone else, and to everyone while none is set: nothing is open by default."""
    token = request.app.state.settings.metrics_token
    if token is None:
        raise NotAuthenticated(METRICS_CLOSED)
    given = b"" if credentials is None else credentials.credentials.encode()
    if not hmac.compare_digest(given, token.get_secret_value().encode()):
        raise NotAuthenticated(NOT_THE_SCRAPER)


AnyUser = Annotated[Principal, Depends(requires(ANY_USER))]
Staff = Annotated[Principal, Depends(requires(STAFF))]
Admin = Annotated[Principal, Depends(requires(ADMIN))]
Gateway = Annotated[Principal, Depends(requires(GATEWAY))]
AbandonReporter = Annotated[Principal, Depends(requires(REPORT_ABANDON))]
DeskAgent = Annotated[Principal, Depends(requires(DESK))]
MetricsScraper = Annotated[None, Depends(metrics_scraper)]
