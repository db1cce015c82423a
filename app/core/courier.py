"""The courier: each replica's loop that sends the outbox's messages (app/core/outbox.py).

Woken by its own replica's writers after their commits (`wake`), and sweeping every
`CC_OUTBOX_SWEEP_SECONDS` for what is left over (messages written on other replicas whose
courier was busy or gone, retries that came due). Each round claims up to the room it has
(`CC_OUTBOX_CONCURRENCY` sends at once) in one statement, `FOR NO KEY UPDATE SKIP LOCKED`, which
marks them `sending` with a claim that lapses after the send's timeout and a margin: two couriers
never claim one message at once, and a message whose courier died mid-send is claimed again once
its claim lapses. Only the claim that sent a message may record its outcome, so a courier that
comes back late changes nothing.

Each claimed message goes to its sender (app/core/senders.py) in a task of its own, bounded by
`CC_OUTBOX_SEND_TIMEOUT_SECONDS`, so one that hangs holds up no other. Then: sent; or failed,
due again after a backoff (exponential with jitter, or the other side's Retry-After); or dead,
when refused for good or out of attempts (`CC_OUTBOX_MAX_ATTEMPTS`). `outbox.sent` and
`outbox.dead` events, on the message's subject, go into the log in the same statement.

Delivery is at least once: a courier that dies after the other side took a message but before it
recorded so leaves it to be sent again. HTTP messages carry an `Idempotency-Key` header (the
message's id) for receivers that can use one.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import random
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from app.core import pg
from app.core.logging import get_logger
from app.core.outbox import ERROR_LENGTH, OutboxState
from app.core.senders import Claimed, Senders, SendFailed, Transient
from app.core.settings import Settings

log = get_logger(__name__)

# A claim outlives its send's timeout by this much, so a living courier always records its
# outcome before another may claim the message.
CLAIM_MARGIN_SECONDS = 5.0
# How long a stopping courier lets its sends finish before it cancels them.
STOP_GRACE_SECONDS = 3.0
# The longest wait a Retry-After is followed for.
LONGEST_RETRY_AFTER = 86400.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often a message is tried, and how long apart."""

    max_attempts: int = 8
    first_delay: float = 2.0
    max_delay: float = 600.0

    def delay(self, attempt: int, *, jitter: float, retry_after: float | None = None) -> float:
        """Seconds from failed attempt `attempt` (1 for the first) to the next: what the other
        side asked (Retry-After), else `first_delay` doubled per attempt up to `max_delay`, of
        which `jitter` (0 to 1) draws the upper half, so that couriers retrying together drift
        apart."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), LONGEST_RETRY_AFTER)
        ceiling = min(self.max_delay, self.first_delay * 2.0 ** min(attempt - 1, 62))
        return ceiling * (0.5 + 0.5 * jitter)

    def outcome(self, message: Claimed, failure: SendFailed, *, jitter: float) -> Outcome:
        """What a failed attempt makes of the message."""
        if isinstance(failure, Transient) and message.attempt < self.max_attempts:
            wait = self.delay(message.attempt, jitter=jitter, retry_after=failure.retry_after)
            return Outcome(OutboxState.failed, failure.status, failure.detail, wait)
        if isinstance(failure, Transient):
            detail = f"gave up after {message.attempt} attempts: {failure.detail}"
            return Outcome(OutboxState.dead, failure.status, detail)
        return Outcome(OutboxState.dead, failure.status, failure.detail)


@dataclass(frozen=True, slots=True)
class Outcome:
    state: OutboxState  # sent, failed or dead
    status: int | None = None
    error: str | None = None  # why it failed; when sent, what the other side did not take
    retry_in: float | None = None  # seconds, when failed


CLAIM = """
    UPDATE outbox_messages m
    SET state = 'sending', attempts = m.attempts + 1, claim_id = gen_random_uuid(),
        last_attempt_at = statement_timestamp(),
        next_attempt_at = statement_timestamp() + make_interval(secs => $2)
    FROM (
        SELECT id FROM outbox_messages
        WHERE state IN ('pending', 'failed', 'sending') AND next_attempt_at <= statement_timestamp()
        ORDER BY next_attempt_at
        LIMIT $1
        FOR NO KEY UPDATE SKIP LOCKED
    ) AS due
    WHERE m.id = due.id
    RETURNING m.id, m.kind, m.sender, m.request::text AS request, m.dedupe_key, m.subject_type,
        m.subject_id, m.attempts, m.claim_id
"""

# Only the claim that sent it records the outcome; `sent` and `dead` are logged as events.
SETTLE = """
    WITH settled AS (
        UPDATE outbox_messages
        SET state = $3::varchar, last_status = $4, last_error = $5, claim_id = NULL,
            sent_at = CASE WHEN $3::varchar = 'sent' THEN statement_timestamp() END,
            next_attempt_at = CASE WHEN $3::varchar = 'failed'
                THEN statement_timestamp() + make_interval(secs => $6) END
        WHERE id = $1 AND claim_id = $2 AND state = 'sending'
        RETURNING id, state, kind, sender, subject_type, subject_id, attempts, last_status,
            last_error
    ), noted AS (
        INSERT INTO events (kind, subject_type, subject_id, actor, payload)
        SELECT 'outbox.' || state, subject_type, subject_id, 'system',
            jsonb_build_object('message_id', id, 'kind', kind, 'sender', sender,
                'attempts', attempts, 'status', last_status, 'error', last_error)
        FROM settled
        WHERE state IN ('sent', 'dead')
    )
    SELECT count(*) FROM settled
"""

# A stopping courier hands back the claims it could not finish: due again at once, the
# interrupted attempt not counted (whether it arrived is not known).
RELEASE = """
    UPDATE outbox_messages m
    SET state = 'failed', claim_id = NULL, attempts = greatest(m.attempts - 1, 0),
        next_attempt_at = statement_timestamp(),
        last_error = 'its courier stopped during the attempt'
    FROM unnest($1::uuid[], $2::uuid[]) AS released(id, claim_id)
    WHERE m.id = released.id AND m.claim_id = released.claim_id AND m.state = 'sending'
"""


class OutboxCourier:
    """This replica's sender loop. `start` it with the app, `wake` it after a commit that wrote
    messages, `stop` it on the way out (it closes its senders)."""

    def __init__(
        self,
        database_url: str,
        senders: Senders,
        *,
        policy: RetryPolicy,
        send_timeout: float,
        sweep_every: float,
        concurrency: int = 8,
        jitter: Callable[[], float] = random.random,
        stop_grace: float = STOP_GRACE_SECONDS,
    ) -> None:
        self._database_url = database_url
        self._senders = senders
        self._policy = policy
        self._send_timeout = send_timeout
        self._claim_seconds = send_timeout + CLAIM_MARGIN_SECONDS
        self._sweep_every = sweep_every
        self._concurrency = concurrency
        self._jitter = jitter
        self._stop_grace = stop_grace
        self._woken = asyncio.Event()
        self._retries: list[float] = []  # monotonic times our failed messages come due
        self._claimed: dict[uuid.UUID, Claimed] = {}  # claimed here, not settled yet
        self._sends: set[asyncio.Task[None]] = set()
        self._pool: asyncpg.Pool | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(
        cls, database_url: str, senders: Senders, settings: Settings
    ) -> OutboxCourier:
        return cls(
            database_url,
            senders,
            policy=RetryPolicy(
                max_attempts=settings.outbox_max_attempts,
                first_delay=settings.outbox_backoff_seconds,
                max_delay=settings.outbox_max_backoff_seconds,
            ),
            send_timeout=settings.outbox_send_timeout_seconds,
            sweep_every=settings.outbox_sweep_seconds,
            concurrency=settings.outbox_concurrency,
        )

    @property
    def sending(self) -> int:
        """Messages this courier has claimed and not settled yet."""
        return len(self._claimed)

    def wake(self) -> None:
        """Look for due messages now (a commit wrote some)."""
        self._woken.set()

    async def start(self) -> None:
        # Its own small pool: sends never wait for the hot pool, and its events' inserts send
        # their NOTIFY like any other writer's (these connections are not the hub's).
        self._pool = await pg.create_pool(self._database_url, size=2)
        self._task = asyncio.create_task(self._run(), name="outbox courier")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=5)
        if self._sends:
            _, unfinished = await asyncio.wait(self._sends, timeout=self._stop_grace)
            for task in unfinished:
                task.cancel()
            if unfinished:
                await asyncio.wait(unfinished, timeout=2)
        with contextlib.suppress(Exception):
            await self._release()
        await self._senders.close()
        if self._pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pool.close(), timeout=5)

    async def _run(self) -> None:
        while True:
            self._woken.clear()  # before the claim: a wake during it asks for another round
            claimed_at = time.monotonic()
            try:
                await self._claim_and_send()
            except Exception as error:  # the database is busy or away: the next round tries
                log.warning("outbox claim failed", error=self._senders.blank(repr(error)))
            await self._until_woken(claimed_at)

    async def _until_woken(self, claimed_at: float) -> None:
        """Until woken, a retry of ours comes due, or the sweep's time comes."""
        while self._retries and self._retries[0] <= claimed_at:  # due before that claim
            heapq.heappop(self._retries)
        wait = self._sweep_every
        if self._retries:
            wait = min(wait, max(0.0, self._retries[0] - time.monotonic()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), timeout=wait)

    async def _claim_and_send(self) -> None:
        room = self._concurrency - len(self._claimed)
        if room <= 0 or self._pool is None:
            return  # a send that ends wakes the loop
        for row in await self._pool.fetch(CLAIM, room, self._claim_seconds):
            message = _claimed(row)
            self._claimed[message.id] = message
            task = asyncio.create_task(self._deliver(message), name=f"outbox {message.id}")
            self._sends.add(task)
            task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sends.discard(task)
        self._woken.set()  # room for another

    async def _deliver(self, message: Claimed) -> None:
        # Cancelled (by `stop`), the claim stays in `_claimed`, for `stop` to hand back.
        outcome = await self._attempt(message)
        try:
            await self._settle(message, outcome)
        except Exception as error:  # its claim lapses, and it is sent again
            log.error(
                "outbox outcome not recorded",
                **_about(message),
                outcome=outcome.state.value,
                error=self._senders.blank(repr(error)),
            )
        self._claimed.pop(message.id, None)

    async def _attempt(self, message: Claimed) -> Outcome:
        if message.attempt > self._policy.max_attempts:
            # Claimed again after its courier stopped during the last attempt allowed.
            detail = f"no attempt left: the courier of attempt {message.attempt - 1} stopped"
            return Outcome(OutboxState.dead, None, detail)
        try:
            sender = self._senders.for_message(message)
            async with asyncio.timeout(self._send_timeout):
                delivered = await sender.send(message)
        except SendFailed as failure:
            return self._policy.outcome(message, failure, jitter=self._jitter())
        except TimeoutError:
            silence = Transient(f"no answer within {self._send_timeout:g} s")
            return self._policy.outcome(message, silence, jitter=self._jitter())
        except Exception as error:  # a sender's bug: tried again later
            # Where it failed, not the exception's text, which might quote a credential.
            frame = traceback.extract_tb(error.__traceback__)[-1]
            where = f"{frame.filename}:{frame.lineno}"
            log.error("outbox sender failed", **_about(message), at=where)
            bug = Transient(f"the sender failed: {type(error).__name__} at {where}")
            return self._policy.outcome(message, bug, jitter=self._jitter())
        return Outcome(OutboxState.sent, delivered.status, delivered.detail)

    async def _settle(self, message: Claimed, outcome: Outcome) -> None:
        assert self._pool is not None
        error = self._senders.blank(outcome.error)[:ERROR_LENGTH] if outcome.error else None
        recorded = await self._pool.fetchval(
            SETTLE,
            message.id,
            message.claim_id,
            outcome.state.value,
            outcome.status,
            error,
            outcome.retry_in,
        )
        about = {**_about(message), "status": outcome.status}
        if not recorded:
            log.warning("outbox outcome not recorded: the claim lapsed", **about)
        elif outcome.state is OutboxState.sent:
            log.info("outbox message sent", **about)
        elif outcome.state is OutboxState.failed:
            assert outcome.retry_in is not None
            heapq.heappush(self._retries, time.monotonic() + outcome.retry_in)
            log.warning("outbox message failed", **about, error=error, retry_in=outcome.retry_in)
        else:
            log.warning("outbox message dead", **about, error=error)

    async def _release(self) -> None:
        if not self._claimed or self._pool is None:
            return
        claims = list(self._claimed.values())
        await self._pool.execute(
            RELEASE, [claim.id for claim in claims], [claim.claim_id for claim in claims]
        )
        self._claimed.clear()


def _claimed(row: asyncpg.Record) -> Claimed:
    return Claimed(
        id=row["id"],
        kind=row["kind"],
        sender=row["sender"],
        request=json.loads(row["request"]),
        dedupe_key=row["dedupe_key"],
        subject_type=row["subject_type"],
        subject_id=row["subject_id"],
        attempt=row["attempts"],
        claim_id=row["claim_id"],
    )


def _about(message: Claimed) -> dict[str, object]:
    """A message's log fields: what and whom it is about, never its request (which may hold
    a customer's words)."""
    return {
        "message_id": str(message.id),
        "kind": message.kind,
        "sender": message.sender,
        "subject": f"{message.subject_type}:{message.subject_id}",
        "attempt": message.attempt,
    }
