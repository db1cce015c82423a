"""Failed logins, limited per username and per client address over a sliding window.

Counted in PostgreSQL (`login_failures`), so every replica sees every failure, and on the hot
pool in statements of their own: a failure must stay noted although the request that failed
rolls back. A username or an address with `limit` failures in the window is refused (429, with
Retry-After) until the oldest of them leaves it, the right password too; a refused attempt is
not checked, so it counts for nothing and costs no hash. The username counts whether or not a
user has it, so a refusal tells nothing about who exists. A login that succeeds forgets its
username's failures (they were the user's own typing); its address's stay.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from app.core import pg
from app.core.errors import TooManyRequests
from app.core.settings import Settings

# The moment each limit ends, if it holds now: the limit-th newest failure in the window, plus
# the window. ($3 the window, $4 and $5 the limits less one: rows to skip.)
LOCKED_UNTIL = """
    SELECT
        (SELECT f.failed_at FROM login_failures f
         WHERE f.username = $1 AND f.failed_at > now() - $3::interval
         ORDER BY f.failed_at DESC OFFSET $4 LIMIT 1) + $3::interval - now() AS username_wait,
        (SELECT f.failed_at FROM login_failures f
         WHERE f.address = $2 AND f.failed_at > now() - $3::interval
         ORDER BY f.failed_at DESC OFFSET $5 LIMIT 1) + $3::interval - now() AS address_wait
"""

# The failure, and a few rows past the window forgotten (skipping any another login is
# forgetting at the same moment): the table holds about one window of failures.
NOTE_FAILURE = """
    WITH forgotten AS (
        DELETE FROM login_failures WHERE id IN (
            SELECT id FROM login_failures WHERE failed_at <= now() - $3::interval
            ORDER BY failed_at LIMIT 100 FOR UPDATE SKIP LOCKED
        )
    )
    INSERT INTO login_failures (username, address, failed_at) VALUES ($1, $2, now())
"""

FORGET_USERNAME = "DELETE FROM login_failures WHERE username = $1"


class TooManyLoginFailures(TooManyRequests):
    code = "too_many_login_failures"


@dataclass(frozen=True, slots=True)
class Attempt:
    """Who is trying: the username as counted (trimmed, lower case) and the client address."""

    username: str
    address: str

    @classmethod
    def of(cls, username: str, address: str | None) -> Attempt:
        return cls(username.strip().lower()[:64], (address or "unknown")[:64])


class LoginLimits:
    """The failure counts of one replica's logins (app.state.login_limits)."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self._pool = pool
        self._window = timedelta(seconds=settings.login_failure_window_seconds)
        self._per_user = settings.login_failures_per_user
        self._per_address = settings.login_failures_per_address

    async def ensure_allowed(self, attempt: Attempt) -> None:
        """Nothing, or the 429 of the limit that holds, saying for how long."""
        async with self._pool.acquire(timeout=pg.ACQUIRE_TIMEOUT) as connection:
            row = await connection.fetchrow(
                LOCKED_UNTIL,
                attempt.username,
                attempt.address,
                self._window,
                self._per_user - 1,
                self._per_address - 1,
            )
        assert row is not None
        for wait, whose, limit in (
            (row["username_wait"], "for this username", self._per_user),
            (row["address_wait"], "from this address", self._per_address),
        ):
            if wait is not None and wait > timedelta(0):
                seconds = max(1, math.ceil(wait.total_seconds()))
                raise TooManyLoginFailures(
                    f"too many failed logins {whose} ({limit} in"
                    f" {self._window.total_seconds():g} s): try again in {seconds} s",
                    retry_after=seconds,
                )

    async def failed(self, attempt: Attempt) -> None:
        async with self._pool.acquire(timeout=pg.ACQUIRE_TIMEOUT) as connection:
            await connection.execute(NOTE_FAILURE, attempt.username, attempt.address, self._window)

    async def succeeded(self, attempt: Attempt) -> None:
        async with self._pool.acquire(timeout=pg.ACQUIRE_TIMEOUT) as connection:
            await connection.execute(FORGET_USERNAME, attempt.username)
