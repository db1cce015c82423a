"""Password hashing (argon2) and bearer secrets (random, stored only as a keyed hash)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

HashingProfile = Literal["standard", "fast"]

# RFC 9106's low-memory profile (64 MiB, 3 passes) guards real passwords; the cheapest profile
# exists for test suites that create hundreds of users and is refused in production (settings).
_PROFILES = {"standard": profiles.RFC_9106_LOW_MEMORY, "fast": profiles.CHEAPEST}
_hasher = PasswordHasher.from_parameters(_PROFILES["standard"])


def use_hashing_profile(profile: HashingProfile) -> None:
    """Hash new passwords with `profile`; hashes made with another still verify (and rehash)."""
    global _hasher
    _hasher = PasswordHasher.from_parameters(_PROFILES[profile])


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# argon2 is slow on purpose (~0.2 s and 64 MiB a hash): each runs in a thread, so sockets keep
# flowing, and only a few at once, so a burst of logins neither fills the memory nor takes every
# core (nor the loop's default threads). One semaphore per event loop: asyncio's bind to one.
_concurrent_hashes = 2
_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def limit_concurrent_hashes(limit: int) -> None:
    """Run at most `limit` hashes or verifications at once (CC_PASSWORD_HASH_CONCURRENCY)."""
    global _concurrent_hashes
    _concurrent_hashes = limit
    _turns.clear()


@asynccontextmanager
async def hashing_turn() -> AsyncIterator[None]:
    """One of the few turns to hash, waited for without blocking the loop. A login holds its
    turn from its check of the failure counts to the note of its failure, so no more than the
    turns can pass the check together on what turns out to be the limit."""
    loop = asyncio.get_running_loop()
    turns = _turns.get(loop)
    if turns is None:
        turns = _turns[loop] = asyncio.Semaphore(_concurrent_hashes)
    async with turns:
        yield


async def hash_password_off_loop(password: str) -> str:
    async with hashing_turn():
        return await asyncio.to_thread(hash_password, password)


async def verify_password_off_loop(password_hash: str, password: str) -> bool:
    async with hashing_turn():
        return await verify_in_thread(password_hash, password)


async def verify_in_thread(password_hash: str, password: str) -> bool:
    """`verify_password` in a thread, for a caller that holds a `hashing_turn` already."""
    return await asyncio.to_thread(verify_password, password_hash, password)


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


# Every bearer secret the service hands out: `cc`, a letter saying what it is, `_`, then 43
# URL-safe characters. The logs blank anything of this shape (app/core/logging.py).
SECRET_PREFIX = re.compile(r"cc[a-z]")
SECRET = re.compile(r"\bcc[a-z]_[A-Za-z0-9_-]{16,}")


def new_secret(prefix: str) -> str:
    """A bearer secret that says what it is (`cct_` token, `cck_` gateway key, `ccs_` socket
    ticket)."""
    if not SECRET_PREFIX.fullmatch(prefix):
        raise ValueError(f"a secret's prefix is cc and one letter (the logs blank those): {prefix}")
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def digest_secret(secret: str, key: str) -> str:
    """Keyed SHA-256: secrets are random and long, so a fast keyed hash is enough to store them."""
    return hmac.new(key.encode(), secret.encode(), hashlib.sha256).hexdigest()


def new_password() -> str:
    return secrets.token_urlsafe(12)
