"""Password hashing (argon2) and bearer secrets (random, stored only as a keyed hash)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def new_secret(prefix: str) -> str:
    """A bearer secret that says what it is (`cct_` token, `cck_` gateway key)."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def digest_secret(secret: str, key: str) -> str:
    """Keyed SHA-256: secrets are random and long, so a fast keyed hash is enough to store them."""
    return hmac.new(key.encode(), secret.encode(), hashlib.sha256).hexdigest()


def new_password() -> str:
    return secrets.token_urlsafe(12)
