"""Users, logins and gateway keys. Services flush but never commit: callers own the transaction."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.login_limits import Attempt, LoginLimits
from app.auth.models import AccessToken, GatewayKey, Role, SocketTicket, User
from app.auth.principal import Principal
from app.auth.schemas import GatewayKeyCreate, UserCreate, UserUpdate
from app.core import pg, security
from app.core.errors import Conflict, InvalidField, NotAuthenticated, NotFound
from app.core.events import events_of
from app.core.settings import Settings

TOKEN_PREFIX = "cct"  # noqa: S105
GATEWAY_KEY_PREFIX = "cck"
TICKET_PREFIX = "ccs"


class UserNotFound(NotFound):
    code = "user_not_found"


class UsernameTaken(Conflict):
    code = "username_taken"


class GatewayKeyNotFound(NotFound):
    code = "gateway_key_not_found"


# The user a login names, read on the hot pool inside the login's hashing turn.
LOGIN_USER = "SELECT id, password_hash, is_active FROM users WHERE lower(username) = $1"


async def find_user_by_username(session: AsyncSession, username: str) -> User | None:
    query = select(User).where(func.lower(User.username) == username.strip().lower())
    return (await session.execute(query)).scalar_one_or_none()


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise UserNotFound(f"no user with id {user_id}")
    return user


async def list_users(
    session: AsyncSession, *, role: Role | None, limit: int, offset: int
) -> tuple[list[User], int]:
    query = select(User)
    if role is not None:
        query = query.where(User.role == role)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    page = query.order_by(User.username).limit(limit).offset(offset)
    return list((await session.execute(page)).scalars()), total


async def create_user(
    session: AsyncSession, data: UserCreate, *, actor: str, allow_agent: bool = False
) -> tuple[User, str | None]:
    """Create a user; returns the user and the generated password when none was given."""
    if data.role is Role.agent and not allow_agent:
        raise InvalidField(
            "role", "agents are created with POST /v1/agents, which also sets skills and capacity"
        )
    generated = security.new_password() if data.password is None else None
    password = data.password or generated
    assert password is not None
    # Hashed before the session takes a connection: waiting for a hashing turn while holding
    # one would keep it from the login that holds the turn (see `login`).
    password_hash = await security.hash_password_off_loop(password)
    if await find_user_by_username(session, data.username) is not None:
        raise UsernameTaken(f"username {data.username!r} is already taken")
    user = User(
        id=uuid.uuid4(),
        username=data.username,
        display_name=data.display_name,
        role=data.role,
        password_hash=password_hash,
    )
    if not await _inserted(session, user, constraint="uq_users_username_lower"):
        raise UsernameTaken(f"username {data.username!r} is already taken")
    events_of(session).add(
        "user.created",
        subject_type="user",
        subject_id=user.id,
        actor=actor,
        payload={"username": user.username, "role": user.role.value},
    )
    return user, generated


async def _inserted(session: AsyncSession, row: User | GatewayKey, *, constraint: str) -> bool:
    """Insert `row` in a savepoint; False when a concurrent insert already took `constraint`.

    The look-up before the insert catches the usual duplicate; this catches two requests (on any
    replica) racing past that look-up at once, which would otherwise end in a 500.
    """
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError as error:
        if constraint in str(error.orig):
            return False
        raise
    return True


async def new_password_hash(data: UserUpdate) -> str | None:
    """The hash of the new password a change sends, if any: worked out before the change's
    session takes a connection (waiting for a hashing turn while holding one would keep it
    from the login that holds the turn: see `login`)."""
    return None if data.password is None else await security.hash_password_off_loop(data.password)


async def update_user(
    session: AsyncSession,
    user: User,
    data: UserUpdate,
    *,
    actor: str,
    password_hash: str | None = None,
) -> User:
    """Change a user; a new password comes as its hash (`new_password_hash`)."""
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    new_role = changes.get("role")
    if new_role is not None and (new_role is Role.agent) != (user.role is Role.agent):
        raise InvalidField("role", "a user cannot become or stop being an agent; create a new user")
    leaves_admins = (new_role not in (None, Role.admin)) or changes.get("is_active") is False
    if user.role is Role.admin and leaves_admins and await _other_active_admins(session, user) == 0:
        raise Conflict("this is the last active admin: make another admin first")
    if "password" in changes:
        assert password_hash is not None, "hash the new password first: new_password_hash"
        changes.pop("password")
        user.password_hash = password_hash
        await _revoke_tokens(session, user.id)
        changes["password"] = "changed"  # noqa: S105
    for field in ("display_name", "role", "is_active"):
        if field in changes:
            setattr(user, field, changes[field])
    if changes.get("is_active") is False:
        await _revoke_tokens(session, user.id)
    await session.flush()
    payload = {k: (v.value if isinstance(v, Role) else v) for k, v in changes.items()}
    events_of(session).add(
        "user.updated",
        subject_type="user",
        subject_id=user.id,
        actor=actor,
        payload=payload,
    )
    return user


async def _other_active_admins(session: AsyncSession, user: User) -> int:
    query = select(func.count()).where(
        User.role == Role.admin, User.is_active.is_(True), User.id != user.id
    )
    return (await session.execute(query)).scalar_one()


async def _revoke_tokens(session: AsyncSession, user_id: uuid.UUID) -> None:
    await session.execute(delete(AccessToken).where(AccessToken.user_id == user_id))


async def login(
    session: AsyncSession,
    username: str,
    password: str,
    settings: Settings,
    *,
    limits: LoginLimits,
    address: str | None,
    pool: asyncpg.Pool,
) -> tuple[User, str, datetime]:
    """Check the password and open a session token. One vague error for every failure, and a
    429 while the username or the address has failed too often (login_limits.py).

    The check of the counts, the password's and the note of a failure run in one hashing turn:
    logins that wait for one hold no connection, and no more than the turns can pass the check
    together before their failures are counted. Inside the turn only the hot pool is used
    (`pool`), whose connections nobody holds while waiting for a turn: a turn that waited for
    one of the ORM's, which a request creating a user holds while it waits for a turn to hash
    the new password, could wait for ever (it did: every login of the benchmark's set-up
    answered 500 after the ORM pool's 30 s)."""
    attempt = Attempt.of(username, address)
    async with security.hashing_turn():
        await limits.ensure_allowed(attempt)
        async with pool.acquire(timeout=pg.ACQUIRE_TIMEOUT) as connection:
            found = await connection.fetchrow(LOGIN_USER, username.strip().lower())
        # Verify even when there is no such user, so the answer's timing does not tell who exists.
        known_hash = found["password_hash"] if found is not None else await _decoy_hash()
        password_ok = await security.verify_in_thread(known_hash, password)
        if found is None or not found["is_active"] or not password_ok:
            await limits.failed(attempt)
            raise NotAuthenticated("wrong username or password")
    await limits.succeeded(attempt)
    user = await get_user(session, found["id"])
    if security.password_needs_rehash(user.password_hash):
        user.password_hash = await security.hash_password_off_loop(password)
    secret = security.new_secret(TOKEN_PREFIX)
    expires_at = datetime.now(UTC) + timedelta(minutes=settings.token_ttl_minutes)
    session.add(
        AccessToken(
            user_id=user.id,
            token_digest=security.digest_secret(secret, settings.secret_key),
            expires_at=expires_at,
        )
    )
    events_of(session).add(
        "user.logged_in", subject_type="user", subject_id=user.id, actor=f"user:{user.id}"
    )
    return user, secret, expires_at


_decoy: list[str] = []


async def _decoy_hash() -> str:
    """A hash no password matches, made once (in a thread), for logins of unknown users."""
    if not _decoy:
        _decoy.append(await asyncio.to_thread(security.hash_password, secrets.token_urlsafe(32)))
    return _decoy[0]


async def logout(session: AsyncSession, secret: str, settings: Settings) -> None:
    digest = security.digest_secret(secret, settings.secret_key)
    await session.execute(delete(AccessToken).where(AccessToken.token_digest == digest))


async def principal_for_secret(
    session: AsyncSession, secret: str, settings: Settings
) -> Principal | None:
    digest = security.digest_secret(secret, settings.secret_key)
    if secret.startswith(f"{GATEWAY_KEY_PREFIX}_"):
        return await _gateway_principal(session, digest)
    query = (
        select(User)
        .join(AccessToken, AccessToken.user_id == User.id)
        .where(
            AccessToken.token_digest == digest,
            AccessToken.expires_at > func.now(),
            User.is_active.is_(True),
        )
    )
    user = (await session.execute(query)).scalar_one_or_none()
    if user is None:
        return None
    return Principal(kind="user", id=user.id, name=user.username, role=user.role)


async def issue_socket_ticket(
    session: AsyncSession, user_id: uuid.UUID, settings: Settings
) -> tuple[str, datetime]:
    """A one-use ticket to open a socket as `user_id`, valid for `socket_ticket_seconds` by the
    database's clock (the replica that redeems it may be another); returns it and its expiry.
    Tickets that expired unused are dropped on the way, so the table stays small."""
    await session.execute(delete(SocketTicket).where(SocketTicket.expires_at <= func.now()))
    secret = security.new_secret(TICKET_PREFIX)
    issued = insert(SocketTicket).values(
        ticket_digest=security.digest_secret(secret, settings.secret_key),
        user_id=user_id,
        expires_at=func.now() + timedelta(seconds=settings.socket_ticket_seconds),
    )
    expires_at = (await session.execute(issued.returning(SocketTicket.expires_at))).scalar_one()
    return secret, expires_at


async def redeem_socket_ticket(
    session: AsyncSession, secret: str, settings: Settings
) -> Principal | None:
    """The user a ticket was issued to, if it is unused, unexpired and the user still active.
    A ticket found is spent (deleted: a second socket with it finds nothing, on any replica,
    as the delete holds the row's lock until it commits)."""
    if not secret.startswith(f"{TICKET_PREFIX}_"):
        return None
    spent = (
        delete(SocketTicket)
        .where(
            SocketTicket.ticket_digest == security.digest_secret(secret, settings.secret_key),
            SocketTicket.expires_at > func.now(),
        )
        .returning(SocketTicket.user_id)
    )
    user_id = (await session.execute(spent)).scalar_one_or_none()
    user = None if user_id is None else await session.get(User, user_id)
    if user is None or not user.is_active:
        return None
    return Principal(kind="user", id=user.id, name=user.username, role=user.role)


# The caller of a hot-path request: a PL/pgSQL function (its one definition is
# app/auth/caller.sql), so that a statement can authenticate and do its work in one round trip
# (intake's look-up) without pasting auth's SQL into it. Its arguments: `caller_arguments`.
CALLER_ONLY = "SELECT kind, id, name, role FROM auth_caller($1, $2, $3, $4)"
LAST_USED_GRAIN = timedelta(minutes=1)


def caller_arguments(secret: str, settings: Settings) -> tuple[str, bool, datetime, datetime]:
    """The arguments of `auth_caller` (app/auth/caller.sql): the secret's digest, whether it is
    a gateway key, now, and the moment before which a key's last use is noted again."""
    moment = datetime.now(UTC)
    is_key = secret.startswith(f"{GATEWAY_KEY_PREFIX}_")
    return (
        security.digest_secret(secret, settings.secret_key),
        is_key,
        moment,
        moment - LAST_USED_GRAIN,
    )


def caller_from(
    kind: str | None, id_: uuid.UUID | None, name: str | None, role: str | None
) -> Principal | None:
    """The principal of an `auth_caller` row's columns; None when no row matched."""
    if kind is None or id_ is None or name is None:
        return None
    if kind == "gateway":
        return Principal(kind="gateway", id=_plain(id_), name=name)
    assert role is not None  # a user always has one
    return Principal(kind="user", id=_plain(id_), name=name, role=Role(role))


async def hot_principal_for_secret(
    connection: asyncpg.Connection, secret: str, settings: Settings
) -> Principal | None:
    """`principal_for_secret` in one plain statement, for the hot paths (app.core.pg)."""
    row = await connection.fetchrow(CALLER_ONLY, *caller_arguments(secret, settings))
    if row is None:
        return None
    return caller_from(row["kind"], row["id"], row["name"], row["role"])


def _plain(value: uuid.UUID) -> uuid.UUID:
    """asyncpg's own UUID subclass, as the uuid.UUID the rest of the app gets from the ORM."""
    return uuid.UUID(int=value.int)


async def _gateway_principal(session: AsyncSession, digest: str) -> Principal | None:
    query = select(GatewayKey).where(
        GatewayKey.key_digest == digest, GatewayKey.revoked_at.is_(None)
    )
    key = (await session.execute(query)).scalar_one_or_none()
    if key is None:
        return None
    key.last_used_at = datetime.now(UTC)
    return Principal(kind="gateway", id=key.id, name=key.name)


async def create_gateway_key(
    session: AsyncSession, data: GatewayKeyCreate, *, actor: str, settings: Settings
) -> tuple[GatewayKey, str]:
    taken = await session.execute(select(GatewayKey.id).where(GatewayKey.name == data.name))
    if taken.first() is not None:
        raise Conflict(f"a gateway key named {data.name!r} already exists")
    secret = security.new_secret(GATEWAY_KEY_PREFIX)
    key = GatewayKey(
        id=uuid.uuid4(),
        name=data.name,
        key_prefix=secret[:10],
        key_digest=security.digest_secret(secret, settings.secret_key),
        created_by=_user_id_of(actor),
    )
    if not await _inserted(session, key, constraint="uq_gateway_keys_name"):
        raise Conflict(f"a gateway key named {data.name!r} already exists")
    events_of(session).add(
        "gateway_key.created",
        subject_type="gateway_key",
        subject_id=key.id,
        actor=actor,
        payload={"name": key.name},
    )
    return key, secret


def _user_id_of(actor: str) -> uuid.UUID | None:
    kind, _, raw = actor.partition(":")
    return uuid.UUID(raw) if kind == "user" else None


async def list_gateway_keys(
    session: AsyncSession, *, limit: int, offset: int
) -> tuple[list[GatewayKey], int]:
    """A page of the keys by name (revoked ones too), and how many there are in all."""
    total = (await session.execute(select(func.count()).select_from(GatewayKey))).scalar_one()
    page = select(GatewayKey).order_by(GatewayKey.name, GatewayKey.id).limit(limit).offset(offset)
    return list((await session.execute(page)).scalars()), total


async def revoke_gateway_key(session: AsyncSession, key_id: uuid.UUID, *, actor: str) -> GatewayKey:
    key = await session.get(GatewayKey, key_id)
    if key is None:
        raise GatewayKeyNotFound(f"no gateway key with id {key_id}")
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        events_of(session).add(
            "gateway_key.revoked",
            subject_type="gateway_key",
            subject_id=key.id,
            actor=actor,
        )
    return key


async def count_users(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(User))).scalar_one()
