"""The outbox on real parts: a real PostgreSQL, real couriers, a real HTTP server on a loopback
port standing in for a gateway's REST API (tests/core/http_receiver.py).

What must hold: a message exists exactly when the transaction that wrote it committed, and is
sent after that commit (woken at once, no poll); the same decision twice is one message and one
request; failures are retried with backoff (or as Retry-After says) and refusals are final,
with the answer kept; a courier that dies mid-send leaves its message to another, and two
couriers never send one message twice; no credential reaches the table, an error or a log.
Where a test checks that something was NOT sent, it waits for a later message to be sent and
the courier to be idle, never for a fixed time.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
import structlog

from app.core import courier as courier_module
from app.core import pg
from app.core.courier import CLAIM, SETTLE, OutboxCourier, RetryPolicy
from app.core.outbox import OutboxState, Outgoing, counts_by_state, enqueue, http_message
from app.core.senders import Claimed, Delivered, HttpSender, Senders, retry_after
from tests.core.http_receiver import Answer, Receiver, until, until_true

ACCOUNT = "AC0123456789abcdef0123456789abcdef"
TOKEN = "twilio-auth-token-5f1e9c2a7b3d4e6f"  # a shape the logs' own redaction does not know
ENCODED = base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()

_numbers = itertools.count(1)


def bridge(number: int | str, *, key: str | None = None) -> Outgoing:
    """A call's bridge to an agent, as the voice channel asks Twilio's Calls API for it."""
    return http_message(
        sender="gateway",
        method="POST",
        url=f"/2010-04-01/Accounts/{ACCOUNT}/Calls/CA{number}.json",
        form={"Twiml": "<Response><Dial><Client>mei</Client></Dial></Response>"},
        dedupe_key=key or f"bridge:CA{number}",
        subject_type="interaction",
        subject_id=f"i-{number}",
    )


def path_of(number: int | str) -> str:
    return f"/2010-04-01/Accounts/{ACCOUNT}/Calls/CA{number}.json"


@pytest.fixture
def receiver() -> Any:
    with Receiver.running() as running:
        yield running


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    opened = await pg.create_pool(database_url, size=4)
    yield opened
    await opened.close()


CourierFactory = Callable[..., OutboxCourier]


@pytest.fixture
async def couriers(database_url: str, receiver: Receiver) -> AsyncIterator[CourierFactory]:
    """Makes couriers sending to the receiver as `gateway`, with basic auth, and started; each
    is stopped at the end. By default they sweep once an hour: only a wake sends at once."""
    made_here: list[OutboxCourier] = []

    def make(
        *,
        sweep_every: float = 3600,
        max_attempts: int = 5,
        first_delay: float = 0.05,
        send_timeout: float = 2.0,
        concurrency: int = 4,
        sender: HttpSender | None = None,
        stop_grace: float = 0.1,
    ) -> OutboxCourier:
        made = OutboxCourier(
            database_url,
            Senders([sender or gateway(receiver, send_timeout)]),
            policy=RetryPolicy(max_attempts=max_attempts, first_delay=first_delay, max_delay=5),
            send_timeout=send_timeout,
            sweep_every=sweep_every,
            concurrency=concurrency,
            jitter=lambda: 1.0,  # the longest wait each time: the tests measure the gaps
            stop_grace=stop_grace,
        )
        made_here.append(made)
        return made

    yield make
    for made in made_here:
        await made.stop()


async def started(courier: OutboxCourier) -> OutboxCourier:
    await courier.start()
    return courier


def gateway(receiver: Receiver, timeout: float = 2.0) -> HttpSender:
    return HttpSender(
        "gateway", base_url=receiver.base_url, basic_auth=(ACCOUNT, TOKEN), timeout=timeout
    )


async def row(pool: asyncpg.Pool, dedupe_key: str) -> dict[str, Any]:
    found = await pool.fetchrow("SELECT * FROM outbox_messages WHERE dedupe_key = $1", dedupe_key)
    assert found is not None, dedupe_key
    return dict(found)


async def until_state(pool: asyncpg.Pool, dedupe_key: str, state: OutboxState) -> dict[str, Any]:
    async def reached() -> bool:
        return bool((await row(pool, dedupe_key))["state"] == state)

    await until_true(reached, f"{dedupe_key} {state}")
    return await row(pool, dedupe_key)


async def write(pool: asyncpg.Pool, message: Outgoing) -> None:
    async with pg.transaction(pool) as connection:
        await enqueue(connection, message)


async def until_past_a_marker(
    pool: asyncpg.Pool, courier: OutboxCourier, receiver: Receiver
) -> None:
    """Write a message now, wake `courier`, and return once it is sent and the courier has
    nothing under way: every message that was due when the marker was claimed (claims take
    the oldest first) has been sent and recorded by then."""
    number = f"marker{next(_numbers)}"
    await write(pool, bridge(number))
    courier.wake()
    await receiver.until_received(path_of(number))
    await until_state(pool, f"bridge:CA{number}", OutboxState.sent)
    await until(lambda: courier.sending == 0, "the courier idle")


async def test_a_message_is_sent_after_its_transaction_commits_never_before(
    pool: asyncpg.Pool, couriers: CourierFactory, receiver: Receiver
) -> None:
    courier = await started(couriers())
    async with pool.acquire() as connection:
        transaction = connection.transaction()
        await transaction.start()
        written = await enqueue(connection, bridge(1))
        assert written.new
        courier.wake()  # woken too early: the message is not there for it yet
        await until_past_a_marker(pool, courier, receiver)
        assert receiver.to(path_of(1)) == []
        await transaction.commit()
    courier.wake()
    [request] = await receiver.until_received(path_of(1))
    sent = await until_state(pool, "bridge:CA1", OutboxState.sent)
    assert (sent["attempts"], sent["last_status"], sent["last_error"]) == (1, 200, None)
    assert sent["sent_at"] is not None
    assert sent["next_attempt_at"] is None
    # The request as written, with the sender's credentials and the message's id added.
    assert request.method == "POST"
    assert request.form == {"Twiml": ["<Response><Dial><Client>mei</Client></Dial></Response>"]}
    assert request.headers["authorization"] == f"Basic {ENCODED}"
    assert request.headers["idempotency-key"] == str(written.id)
    logged = await pool.fetchrow(
        "SELECT kind, subject_type, subject_id, payload FROM events"
        " WHERE kind LIKE 'outbox.%' AND subject_id = 'i-1'"
    )
    assert logged is not None
    assert (logged["kind"], logged["subject_type"], logged["subject_id"]) == (
        "outbox.sent",
        "interaction",
        "i-1",
    )
    assert logged["payload"]["message_id"] == str(written.id)


async def test_a_transaction_rolled_back_sends_nothing(
    pool: asyncpg.Pool, couriers: CourierFactory, receiver: Receiver
) -> None:
    courier = await started(couriers())

    with pytest.raises(Refused):
        await _enqueue_then_refuse(pool, bridge(2))
    courier.wake()
    await until_past_a_marker(pool, courier, receiver)
    assert receiver.to(path_of(2)) == []
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM outbox_messages WHERE dedupe_key = $1", "bridge:CA2"
        )
        == 0
    )


class Refused(Exception):
    """The decision failed after its message was written."""


async def _enqueue_then_refuse(pool: asyncpg.Pool, message: Outgoing) -> None:
    async with pg.transaction(pool) as connection:
        await enqueue(connection, message)
        raise Refused


async def test_the_same_decision_twice_is_one_message_and_one_request(
    pool: asyncpg.Pool, couriers: CourierFactory, receiver: Receiver
) -> None:
    courier = await started(couriers())
    async with pg.transaction(pool) as connection:
        first = await enqueue(connection, bridge(3))
    courier.wake()
    await receiver.until_received(path_of(3))
    # The accept delivered again, after the first was sent: nothing new.
    async with pg.transaction(pool) as connection:
        again = await enqueue(connection, bridge(3))
    assert (again.id, again.new) == (first.id, False)
    courier.wake()
    await until_past_a_marker(pool, courier, receiver)
    assert len(receiver.to(path_of(3))) == 1
    count = "SELECT count(*) FROM outbox_messages WHERE dedupe_key = 'bridge:CA3'"
    assert await pool.fetchval(count) == 1


async def test_two_transactions_writing_one_decision_at_once_write_one_message(
    pool: asyncpg.Pool,
) -> None:
    """The second waits for the first's row; once the first commits it finds it written."""
    async with pool.acquire() as first, pool.acquire() as second:
        transaction = first.transaction()
        await transaction.start()
        written = await enqueue(first, bridge(4))
        other = asyncio.create_task(_enqueue_in_a_transaction(second, bridge(4)))
        async with pool.acquire() as observer:
            pid = second.get_server_pid()
            await _until_waiting(observer, pid)
        await transaction.commit()
        again = await other
    assert (again.id, again.new) == (written.id, False)


async def _enqueue_in_a_transaction(connection: asyncpg.Connection, message: Outgoing) -> Any:
    async with connection.transaction():
        return await enqueue(connection, message)


async def _until_waiting(observer: asyncpg.Connection, pid: int) -> None:
    async def waiting() -> bool:
        query = "SELECT count(*) > 0 FROM pg_locks WHERE pid = $1 AND NOT granted"
        return bool(await observer.fetchval(query, pid))

    await until_true(waiting, f"session {pid} waiting for a lock")


async def test_a_server_error_is_retried_after_a_backoff_and_sent_once(
    pool: asyncpg.Pool, couriers: CourierFactory, receiver: Receiver
) -> None:
    courier = await started(couriers(first_delay=0.3))
    receiver.script(path_of(5), Answer(500, body="Internal error"), Answer(503))
    await write(pool, bridge(5))
    courier.wake()
    first, second, third = await receiver.until_received(path_of(5), 3)
    sent = await until_state(pool, "bridge:CA5", OutboxState.sent)
    assert (sent["attempts"], sent["last_status"]) == (3, 200)
    # Backoff doubles (jitter fixed at its longest): 0.3 s, then 0.6 s.
    assert second.at - first.at >= 0.3
    assert third.at - second.at >= 0.6
    await until_past_a_marker(pool, courier, receiver)
    assert len(receiver.to(path_of(5))) == 3


async def test_a_429_waits_as_long_as_its_retry_after_says(
    pool: asyncpg.Pool, couriers: CourierFactory, receiver: Receiver
) -> None:
    courier = await started(couriers(first_delay=0.01))
    receiver.script(path_of(6), Answer(429, headers={"Retry-After": "1"}, body="Too many"))
    await write(pool, bridge(6))
    courier.wake()
    await receiver.until_received(path_of(6))
    failed = await until_state(pool, "bridge:CA6", OutboxState.failed)
    assert failed["last_status"] == 429
    assert failed["last_error"] == "429 Too Many Requests: Too many"
    wait = (failed["next_attempt_at"] - failed["last_attempt_at"]).total_seconds()
    assert 1.0 <= wait < 2.0
    first, second = await receiver.until_received(path_of(6), 2)
    assert second.at - first.at >= 1.0
    await until_state(pool, "bridge:CA6", OutboxState.sent)


async def test_a_refusal_is_dead_at_once_with_the_answer_kept(
    pool: asyncpg.Pool, couriers: CourierFactory, receiver: Receiver
) -> None:
    courier = await started(couriers())
    receiver.script(path_of(7), Answer(400, body='{"message": "The \'To\' number is not valid"}'))
    await write(pool, bridge(7))
    courier.wake()
    dead = await until_state(pool, "bridge:CA7", OutboxState.dead)
    assert (dead["attempts"], dead["last_status"], dead["next_attempt_at"]) == (1, 400, None)
    assert dead["last_error"] == '400 Bad Request: {"message": "The \'To\' number is not valid"}'
    await until_past_a_marker(pool, courier, receiver)
    assert len(receiver.to(path_of(7))) == 1
    logged = await pool.fetchrow(
        "SELECT subject_id, payload FROM events WHERE kind = 'outbox.dead' AND subject_id = 'i-7'"
    )
    assert logged is not None
    assert logged["subject_id"] == "i-7"
    assert logged["payload"]["status"] == 400
    counts = await counts_by_state(pool)
    assert (counts[OutboxState.dead], counts[OutboxState.sent]) == (1, 1)  # and the marker
    assert set(counts) == set(OutboxState)


async def test_a_message_out_of_attempts_is_dead(
    pool: asyncpg.Pool, couriers: CourierFactory, receiver: Receiver
) -> None:
    courier = await started(couriers(max_attempts=3, first_delay=0.01))
    receiver.script(path_of(8), *[Answer(502)] * 5)
    await write(pool, bridge(8))
    courier.wake()
    dead = await until_state(pool, "bridge:CA8", OutboxState.dead)
    assert dead["attempts"] == 3
    assert dead["last_error"] == "gave up after 3 attempts: 502 Bad Gateway"
    await until_past_a_marker(pool, courier, receiver)
    assert len(receiver.to(path_of(8))) == 3


async def test_an_answer_that_never_comes_is_a_failed_attempt(
    pool: asyncpg.Pool, couriers: CourierFactory, receiver: Receiver
) -> None:
    courier = await started(couriers(send_timeout=0.3, first_delay=0.01))
    receiver.script(path_of(9), Answer(hang=True))
    await write(pool, bridge(9))
    courier.wake()
    sent = await until_state(pool, "bridge:CA9", OutboxState.sent)
    assert sent["attempts"] == 2
    assert len(receiver.to(path_of(9))) == 2


async def test_a_message_whose_courier_died_mid_send_is_sent_again_once_its_claim_lapses(
    pool: asyncpg.Pool, couriers: CourierFactory, receiver: Receiver
) -> None:
    """A courier claimed it and died: its claim holds it for the claim's time, then another
    courier's sweep (nobody wakes it) sends it, once; the dead one's late word changes nothing."""
    await write(pool, bridge(10))
    claimed_at = time.monotonic()
    [claim] = await pool.fetch(CLAIM, 1, 0.5)  # as the courier that died claimed it
    assert claim["attempts"] == 1
    survivor = await started(couriers(sweep_every=0.05))
    [request] = await receiver.until_received(path_of(10))
    assert request.at - claimed_at >= 0.5
    sent = await until_state(pool, "bridge:CA10", OutboxState.sent)
    assert sent["attempts"] == 2
    # The first courier comes back and says it failed: its claim is no longer the message's.
    late = await pool.fetchval(SETTLE, claim["id"], claim["claim_id"], "failed", 500, "x", 1.0)
    assert late == 0
    assert (await row(pool, "bridge:CA10"))["state"] == OutboxState.sent
    await until_past_a_marker(pool, survivor, receiver)
    assert len(receiver.to(path_of(10))) == 1


async def test_a_courier_that_stops_hands_back_what_it_was_sending(
    pool: asyncpg.Pool, couriers: CourierFactory, receiver: Receiver
) -> None:
    stopping = await started(couriers())
    receiver.script(path_of(11), Answer(hang=True))
    await write(pool, bridge(11))
    stopping.wake()
    await receiver.until_received(path_of(11))
    await stopping.stop()
    handed_back = await row(pool, "bridge:CA11")
    assert handed_back["state"] == OutboxState.failed
    assert handed_back["attempts"] == 0  # the interrupted attempt is not counted
    assert handed_back["last_error"] == "its courier stopped during the attempt"
    other = await started(couriers())
    other.wake()
    await until_state(pool, "bridge:CA11", OutboxState.sent)
    assert len(receiver.to(path_of(11))) == 2


class CountingSender(HttpSender):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent = 0

    async def send(self, message: Claimed) -> Delivered:
        self.sent += 1
        return await super().send(message)


async def test_two_couriers_on_one_database_never_send_a_message_twice(
    pool: asyncpg.Pool, couriers: CourierFactory, receiver: Receiver
) -> None:
    receiver.default = Answer(delay=0.02)  # sends overlap: both couriers are kept busy
    senders = [
        CountingSender("gateway", base_url=receiver.base_url, basic_auth=(ACCOUNT, TOKEN))
        for _ in range(2)
    ]
    pair = [await started(couriers(sweep_every=0.02, sender=sender)) for sender in senders]
    numbers = [f"pair{n}" for n in range(60)]
    async with pg.transaction(pool) as connection:
        for number in numbers:
            await enqueue(connection, bridge(number))
    for courier in pair:
        courier.wake()

    async def all_sent() -> bool:
        sent = "SELECT count(*) = 60 FROM outbox_messages WHERE state = 'sent'"
        return bool(await pool.fetchval(sent))

    await until_true(all_sent, "60 messages sent", seconds=30)
    assert all(sender.sent > 0 for sender in senders), [sender.sent for sender in senders]
    assert sorted(r.path for r in receiver.received) == sorted(path_of(n) for n in numbers)
    assert receiver.overlapping == []
    assert await pool.fetchval("SELECT max(attempts) FROM outbox_messages") == 1


async def test_no_credential_reaches_the_table_an_error_or_a_log(
    pool: asyncpg.Pool, couriers: CourierFactory, receiver: Receiver
) -> None:
    courier = await started(couriers(first_delay=0.01))
    # A careless server repeats what it was sent in its error pages.
    receiver.script(
        path_of(12),
        Answer(500, body=f"token {TOKEN}", echo_credentials=True),
        Answer(401, body="Authenticate", echo_credentials=True),
    )
    with structlog.testing.capture_logs() as logs:
        await write(pool, bridge(12))
        courier.wake()
        dead = await until_state(pool, "bridge:CA12", OutboxState.dead)
    [first, _] = receiver.to(path_of(12))
    assert first.headers["authorization"] == f"Basic {ENCODED}"  # it was sent, as it must be
    assert (
        dead["last_error"]
        == "401 Unauthorized: Authenticate (you sent Authorization: Basic [redacted])"
    )
    stored = await pool.fetch(
        "SELECT m::text AS line FROM outbox_messages m"
        " UNION ALL SELECT e::text FROM events e WHERE kind LIKE 'outbox.%'"
    )
    lines = [r["line"] for r in stored] + [repr(entry) for entry in logs]
    failed = [e for e in logs if e["event"] == "outbox message failed"]
    assert failed
    assert "[redacted]" in failed[0]["error"]  # the 500's body, blanked
    assert any(e["event"] == "outbox message dead" for e in logs)
    assert [line for line in lines if TOKEN in line or ENCODED in line] == []


def test_a_request_that_would_carry_a_credential_is_refused_before_it_is_written() -> None:
    def message(**overrides: Any) -> Outgoing:
        fields: dict[str, Any] = {
            "sender": "gateway",
            "method": "POST",
            "url": "/calls",
            "dedupe_key": "k",
            "subject_type": "interaction",
            "subject_id": "i",
            **overrides,
        }
        return http_message(**fields)

    with pytest.raises(ValueError, match="Authorization looks like a credential"):
        message(headers={"Authorization": "Basic abc"})
    with pytest.raises(ValueError, match="X-Api-Key looks like a credential"):
        message(headers={"X-Api-Key": "abc"})
    with pytest.raises(ValueError, match="credentials in it"):
        message(url="https://user:pw@example.com/hook")
    with pytest.raises(ValueError, match="secret in its query"):
        message(url="/hook?token=abc123")
    with pytest.raises(ValueError, match="a form or a JSON body"):
        message(form={"a": "b"}, json_body={"a": "b"})
    with pytest.raises(ValueError, match="dedupe_key needs 1 to 255"):
        message(dedupe_key="k" * 256)
    assert message(headers={"Content-Language": "zh-CN"}).request["headers"] == {
        "Content-Language": "zh-CN"
    }


async def test_a_message_for_a_sender_nobody_configured_is_dead_saying_so(
    pool: asyncpg.Pool, couriers: CourierFactory, receiver: Receiver
) -> None:
    courier = await started(couriers())
    await write(pool, _for(bridge(13), "carrier"))
    courier.wake()
    dead = await until_state(pool, "bridge:CA13", OutboxState.dead)
    assert dead["last_error"] == (
        "no sender named 'carrier' is configured on this replica (configured: gateway);"
        ' see docs/deployment.md, "The outbox"'
    )
    assert receiver.to(path_of(13)) == []


def _for(message: Outgoing, sender: str) -> Outgoing:
    return Outgoing(
        kind=message.kind,
        sender=sender,
        request=message.request,
        dedupe_key=message.dedupe_key,
        subject_type=message.subject_type,
        subject_id=message.subject_id,
    )


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = datetime(2026, 12, 6, 10, 0, 0, tzinfo=UTC)
    assert retry_after("120", now=now) == 120
    assert retry_after("Sun, 06 Dec 2026 10:00:30 GMT", now=now) == 30
    assert retry_after("Sun, 06 Dec 2026 09:00:00 GMT", now=now) == 0
    assert retry_after("soon", now=now) is None
    assert retry_after(None, now=now) is None


def test_backoff_doubles_within_its_bounds_and_retry_after_wins() -> None:
    policy = RetryPolicy(max_attempts=10, first_delay=2.0, max_delay=60.0)
    assert [policy.delay(n, jitter=1.0) for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]
    assert [policy.delay(n, jitter=0.0) for n in range(1, 4)] == [1, 2, 4]
    assert policy.delay(1, jitter=0.5, retry_after=30) == 30
    assert policy.delay(1000, jitter=1.0) == 60
    assert policy.delay(1, jitter=0, retry_after=10**9) == courier_module.LONGEST_RETRY_AFTER


class BrokenSender(HttpSender):
    """A sender with a bug, whose exception quotes its credentials."""

    async def send(self, message: Claimed) -> Delivered:
        raise RuntimeError(f"bug while signing with {TOKEN}")


async def test_a_sender_s_bug_is_a_failed_attempt_that_names_where_not_what(
    pool: asyncpg.Pool, couriers: CourierFactory, receiver: Receiver
) -> None:
    broken = BrokenSender("gateway", base_url=receiver.base_url, basic_auth=(ACCOUNT, TOKEN))
    courier = await started(couriers(sender=broken, first_delay=3600))
    with structlog.testing.capture_logs() as logs:
        await write(pool, bridge(14))
        courier.wake()
        failed = await until_state(pool, "bridge:CA14", OutboxState.failed)
    assert failed["last_error"].startswith("the sender failed: RuntimeError at ")
    assert "test_outbox.py" in failed["last_error"]
    assert [e for e in logs if TOKEN in repr(e)] == []
    assert any(e["event"] == "outbox sender failed" for e in logs)
