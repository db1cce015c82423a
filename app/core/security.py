"""Password hashing (argon2) and bearer secrets (random, stored only as a keyed hash)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
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


async def hash_password_off_loop(password: str) -> str:
    """argon2 is slow on purpose (~0.2 s a hash): run it in a thread so sockets keep flowing."""
    return await asyncio.to_thread(hash_password, password)


async def verify_password_off_loop(password_hash: str, password: str) -> bool:
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
