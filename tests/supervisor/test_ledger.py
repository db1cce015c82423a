"""The live figures (docs/metrics.md) on hand-built event histories: the ledger's fold
(app/supervisor/ledger.py) and the definitions it uses (app/routing/figures.py).

Each history is written as the log would hold it: the payloads are those the writers put
there (intake's `interaction.queued`, routing_accept's `interaction.assigned`, line.py's ends,
a transfer's and a supervisor's move); tests/supervisor/test_ledger_reads.py checks on a real
database that the writers do write them so.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.hub import EventRecord
from app.queues.models import AbandonPolicy
from app.routing.figures import (
    LineEnd,
    ServiceRules,
    Tally,
    abandonment_rate,
    average_speed_of_answer,
    service_level,
    wait_ended,
)
from app.supervisor.ledger import Ledger, QueueSettings, day_start

SUPPORT = uuid.UUID(int=1)
BILLING = uuid.UUID(int=2)
ALICE = uuid.UUID(int=100)
PARIS = ZoneInfo("Europe/Paris")
# 10:00 in Paris (UTC+1 in December).
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
RULES = ServiceRules(
    target_seconds=20, abandon_policy=AbandonPolicy.against, short_abandon_seconds=5
)

_ids = itertools.count(1)


def event(kind: str, at: datetime, payload: dict[str, Any], subject: str = "") -> EventRecord:
    subject_type = kind.split(".")[0]
    return EventRecord(
        id=next(_ids),
        occurred_at=at,
        kind=kind,
        subject_type=subject_type,
        subject_id=subject or str(uuid.uuid4()),
        actor="test",
        payload=payload,
    )


def arrived(at: datetime, queue: uuid.UUID = SUPPORT, channel: str = "voice") -> EventRecord:
    return event("interaction.queued", at, {"channel": channel, "queue_id": str(queue)})


def answered(at: datetime, waited: float, queue: uuid.UUID = SUPPORT) -> EventRecord:
    payload = {"from": "offered", "agent_id": str(ALICE), "queue_id": str(queue)}
    return event("interaction.assigned", at, {**payload, "waited_seconds": waited})


def ended(kind: str, at: datetime, waited: float, queue: uuid.UUID = SUPPORT) -> EventRecord:
    payload = {"from": "queued", "agent_id": None, "queue_id": str(queue), "channel": "voice"}
    return event(f"interaction.{kind}", at, {**payload, "waited_seconds": waited})


def ledger(policy: AbandonPolicy = AbandonPolicy.against, zone: ZoneInfo = PARIS) -> Ledger:
    rules = ServiceRules(20, policy, short_abandon_seconds=5)
    return Ledger({SUPPORT: QueueSettings(zone, rules), BILLING: QueueSettings(zone, rules)})


def fed(book: Ledger, *events: EventRecord) -> Ledger:
    for e in events:
        book.apply(e)
    return book


# --- the definitions -----------------------------------------------------------------------------


def test_an_answer_within_the_target_meets_it_and_one_after_misses_it() -> None:
    assert wait_ended(LineEnd.answered, 20.0, RULES) == Tally(
        answered=1, answered_in_target=1, answer_wait_seconds=20.0
    )
    assert wait_ended(LineEnd.answered, 20.5, RULES) == Tally(answered=1, answer_wait_seconds=20.5)


def test_a_short_abandon_counts_nowhere_but_in_the_lines_balance() -> None:
    short = wait_ended(LineEnd.abandoned, 4.9, RULES)
    assert short == Tally(short_abandoned=1)
    assert service_level(short, AbandonPolicy.against) is None
    assert abandonment_rate(short) is None
    assert short.left == 1


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        # 3 answered (2 within 20 s), 2 abandoned (one at 10 s, one at 60 s), 1 short abandon.
        (AbandonPolicy.ignore, 2 / 3),
        (AbandonPolicy.against, 2 / 5),
        (AbandonPolicy.in_favour, 3 / 5),
    ],
)
def test_abandons_count_in_the_service_level_the_queues_way(
    policy: AbandonPolicy, expected: float
) -> None:
    book = fed(
        ledger(policy),
        answered(NOW, 5),
        answered(NOW, 15),
        answered(NOW, 40),
        ended("abandoned", NOW, 10),
        ended("abandoned", NOW, 60),
        ended("abandoned", NOW, 2),
    )
    today = book.periods(SUPPORT, NOW).today
    assert today.service_level == pytest.approx(expected)
    assert today.asa_s == pytest.approx(20.0)
    assert today.abandon_rate == pytest.approx(2 / 5)
    assert today.tally.short_abandoned == 1


def test_no_answer_and_no_abandon_tells_no_service_level_rather_than_zero() -> None:
    today = fed(ledger(), arrived(NOW)).periods(SUPPORT, NOW).today
    assert today.tally.offered == 1
    assert (today.service_level, today.asa_s, today.abandon_rate) == (None, None, None)
    assert average_speed_of_answer(Tally()) is None


def test_a_rejected_offer_ends_no_wait_and_the_answer_counts_the_whole_wait() -> None:
    requeued = event("interaction.queued", NOW, {"from": "offered", "agent_id": None})
    book = fed(ledger(), arrived(NOW - timedelta(seconds=50)), requeued, answered(NOW, 50))
    today = book.periods(SUPPORT, NOW).today
    assert (today.tally.offered, today.tally.answered, today.tally.answered_in_target) == (1, 1, 0)


def test_a_transfer_to_another_queue_is_a_new_wait_there() -> None:
    transfer = event(
        "interaction.queued",
        NOW,
        {"from": "assigned", "to_queue_id": str(BILLING), "from_agent_id": str(ALICE)},
    )
    book = fed(ledger(), arrived(NOW), answered(NOW, 3), transfer, answered(NOW, 30, BILLING))
    support, billing = book.periods(SUPPORT, NOW).today, book.periods(BILLING, NOW).today
    assert (support.tally.offered, support.tally.answered, support.service_level) == (1, 1, 1.0)
    assert (billing.tally.offered, billing.tally.answered, billing.service_level) == (1, 1, 0.0)


def test_a_supervisors_move_leaves_one_line_and_joins_the_other() -> None:
    move = event(
        "interaction.moved",
        NOW,
        {
            "from_queue_id": str(SUPPORT),
            "to_queue_id": str(BILLING),
            "channel": "voice",
            "waited_seconds": 30,
            "reason": "billing question",
        },
    )
    book = fed(ledger(), arrived(NOW), move, answered(NOW, 45, BILLING))
    support, billing = book.periods(SUPPORT, NOW).today.tally, book.periods(BILLING, NOW).today
    assert (support.offered, support.transferred, support.answered) == (1, 1, 0)
    assert (billing.tally.offered, billing.tally.answered, billing.asa_s) == (1, 1, 45.0)


def test_converted_and_expired_waits_are_neither_answered_nor_abandoned() -> None:
    book = fed(ledger(), ended("converted", NOW, 90), ended("expired", NOW, 600), answered(NOW, 1))
    today = book.periods(SUPPORT, NOW).today
    assert (today.tally.converted, today.tally.expired) == (1, 1)
    assert today.service_level == 1.0
    assert today.abandon_rate == 0.0


def test_a_call_turned_into_a_callback_is_converted_and_the_callback_waits_from_the_call() -> None:
    call_joined = NOW - timedelta(minutes=10)
    callback = event(
        "interaction.queued",
        NOW - timedelta(minutes=8),
        {"channel": "callback", "queue_id": str(SUPPORT), "waiting_since": call_joined.isoformat()},
    )
    book = fed(
        ledger(),
        arrived(call_joined),
        ended("converted", NOW - timedelta(minutes=8), 120),
        callback,
        answered(NOW, 600),  # the callback's answer: its wait runs from the call's
    )
    today = book.periods(SUPPORT, NOW).today
    assert (today.tally.offered, today.tally.converted, today.tally.answered) == (2, 1, 1)
    assert today.asa_s == 600
    assert today.service_level == 0.0  # converted counts in neither part


def test_a_transfer_out_after_the_answer_ends_no_wait() -> None:
    out = event("interaction.transferred_out", NOW, {"from": "assigned", "queue_id": str(SUPPORT)})
    assert fed(ledger(), out).periods(SUPPORT, NOW).today.tally == Tally()


def test_an_event_seen_twice_counts_once() -> None:
    once = answered(NOW, 5)
    book = fed(ledger(), once, once)
    assert book.periods(SUPPORT, NOW).today.tally.answered == 1


def test_an_answer_written_before_ends_said_their_queue_counts_nowhere() -> None:
    old = event("interaction.assigned", NOW, {"from": "offered", "agent_id": str(ALICE)})
    assert fed(ledger(), old).periods(SUPPORT, NOW).today.tally == Tally()


# --- periods: today in the queue's zone, the last 30 minutes -------------------------------------


def test_today_begins_at_the_queues_midnight_not_utcs() -> None:
    paris_midnight = datetime(2026, 12, 6, 23, 0, tzinfo=UTC)
    book = fed(
        ledger(),
        answered(paris_midnight - timedelta(minutes=1), 5),  # 23:59 yesterday in Paris
        answered(paris_midnight + timedelta(minutes=1), 5),  # 00:01 today
    )
    assert book.periods(SUPPORT, NOW).today.tally.answered == 1
    utc = fed(ledger(zone=ZoneInfo("UTC")), answered(paris_midnight - timedelta(minutes=1), 5))
    assert utc.periods(SUPPORT, NOW).today.tally.answered == 0  # 23:59 UTC is yesterday


def test_a_day_that_springs_forward_has_23_hours_of_quarters_and_one_that_falls_back_25() -> None:
    spring = datetime(2026, 3, 29, 21, 30, tzinfo=UTC)  # 23:30 local (CEST): nearly over
    autumn = datetime(2026, 10, 25, 22, 50, tzinfo=UTC)  # 23:50 local (CET)
    assert day_start(spring, PARIS) == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert day_start(autumn, PARIS) == datetime(2026, 10, 24, 22, 0, tzinfo=UTC)
    assert len(ledger().intervals(SUPPORT, spring)) == 23 * 4 - 1  # 23:45 is still to come
    assert len(ledger().intervals(SUPPORT, autumn)) == 25 * 4


def test_an_answer_after_the_clocks_change_counts_in_its_days_quarter() -> None:
    change = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 02:00 CET becomes 03:00 CEST
    at = change + timedelta(minutes=20)  # 03:20 local
    book = fed(ledger(), arrived(at), answered(at, 5))
    quarters = book.periods(SUPPORT, at + timedelta(hours=1)).by_interval
    busy = [q for q in quarters if q.offered]
    assert [q.start.astimezone(PARIS).strftime("%H:%M") for q in busy] == ["03:15"]
    assert busy[0].service_level == 1.0
    assert [q.start.astimezone(PARIS).hour for q in quarters[7:9]] == [1, 3]  # no 02:xx


def test_the_last_30_minutes_are_the_current_minute_and_the_29_before() -> None:
    book = fed(
        ledger(),
        answered(NOW - timedelta(seconds=30 * 60 - 1), 5),  # the 31st minute back: out
        answered(NOW - timedelta(minutes=29), 50),  # the 30th minute back: in
        ended("abandoned", NOW - timedelta(seconds=10), 30),
    )
    recent = book.periods(SUPPORT, NOW + timedelta(seconds=15)).last_30_min
    assert (recent.tally.answered, recent.tally.abandoned) == (1, 1)
    assert recent.service_level == 0.0
    assert recent.abandon_rate == 0.5
    assert book.periods(SUPPORT, NOW).today.tally.answered == 2


def test_forgetting_the_past_keeps_every_figure_of_now() -> None:
    book = fed(ledger(), answered(NOW - timedelta(hours=2), 5), answered(NOW, 50))
    before = book.periods(SUPPORT, NOW)
    book.forget_before(NOW)
    assert book.periods(SUPPORT, NOW) == before


# --- the line balances over any period -----------------------------------------------------------

ENDINGS = ["answered", "abandoned", "expired", "converted", "moved"]


@settings(max_examples=60, deadline=None)
@given(
    waits=st.lists(
        st.tuples(
            st.integers(0, 24 * 60),  # joined, in minutes after the start of the history
            st.integers(0, 180),  # waited, in minutes
            st.sampled_from(ENDINGS),
        ),
        max_size=40,
    ),
    period=st.tuples(st.integers(0, 24 * 4), st.integers(1, 24 * 4)),
)
def test_waiting_at_start_plus_offered_is_what_left_plus_waiting_at_end(
    waits: list[tuple[int, int, str]], period: tuple[int, int]
) -> None:
    begin = datetime(2026, 12, 7, 0, 0, tzinfo=UTC)
    book = ledger(zone=ZoneInfo("UTC"))
    history = []
    for joined, waited, how in waits:
        at = begin + timedelta(minutes=joined)
        left = at + timedelta(minutes=waited)
        history.append((at, arrived(at)))
        history.append((left, _leaving(how, left, waited * 60.0)))
    for _, e in sorted(history, key=lambda pair: pair[0]):
        book.apply(e)
    start = begin + timedelta(minutes=15 * period[0])
    end = start + timedelta(minutes=15 * period[1])
    tally = book.tally(SUPPORT, start, end - timedelta(microseconds=1))

    def waiting_at(moment: datetime) -> int:
        """Joined before `moment` and not left before it (the history's own truth)."""
        return sum(
            begin + timedelta(minutes=j) < moment <= begin + timedelta(minutes=j + w)
            for j, w, _ in waits
        )

    joined = sum(start <= begin + timedelta(minutes=j) < end for j, _, _ in waits)
    assert tally.offered == joined
    assert waiting_at(start) + tally.offered == tally.left + waiting_at(end)


def _leaving(how: str, at: datetime, waited: float) -> EventRecord:
    if how == "answered":
        return answered(at, waited)
    if how == "moved":
        payload = {"from_queue_id": str(SUPPORT), "to_queue_id": str(BILLING), "channel": "voice"}
        return event("interaction.moved", at, {**payload, "waited_seconds": waited})
    return ended(how, at, waited)


# --- an agent's occupancy over the last 30 minutes -----------------------------------------------


def state(at: datetime, to: str, source: str = "available") -> EventRecord:
    payload = {"from": source, "to": to, "reason": None}
    return event("agent.state_changed", at, payload, subject=str(ALICE))


def held_by_alice(kind: str, at: datetime, source: str) -> EventRecord:
    return event(f"interaction.{kind}", at, {"from": source, "agent_id": str(ALICE)})


def minutes_ago(n: float) -> datetime:
    return NOW - timedelta(minutes=n)


def test_occupancy_is_the_staffed_time_spent_holding_work() -> None:
    book = ledger()
    book.start_agent(ALICE, minutes_ago(30), staffed=True, holding=0)
    fed(
        book,
        held_by_alice("assigned", minutes_ago(20), "offered"),
        held_by_alice("wrap_up", minutes_ago(10), "assigned"),  # still held in its wrap-up
        held_by_alice("completed", minutes_ago(5), "wrap_up"),
    )
    assert book.occupancy(ALICE, NOW) == pytest.approx(15 / 30)


def test_away_time_counts_neither_as_staffed_nor_as_handling() -> None:
    book = ledger()
    book.start_agent(ALICE, minutes_ago(40), staffed=True, holding=1)  # since before the window
    fed(
        book,
        state(minutes_ago(10), "away", "busy"),
        held_by_alice("completed", minutes_ago(5), "assigned"),
    )
    # staffed 20 of the last 30 minutes, holding all of them; away with the call: not counted
    assert book.occupancy(ALICE, NOW) == pytest.approx(1.0)
    fed(book, state(NOW, "available", "away"))
    # the window is now the last 20 minutes before the break and 10 after it: 10 held of 20
    assert book.occupancy(ALICE, NOW + timedelta(minutes=10)) == pytest.approx(10 / 20)


def test_a_transfer_takes_the_work_out_of_the_agents_hands() -> None:
    book = ledger()
    book.start_agent(ALICE, minutes_ago(30), staffed=True, holding=0)
    transfer = event(
        "interaction.queued",
        minutes_ago(15),
        {
            "from": "assigned",
            "agent_id": None,
            "from_agent_id": str(ALICE),
            "to_queue_id": str(BILLING),
        },
    )
    fed(book, held_by_alice("assigned", minutes_ago(30), "offered"), transfer)
    assert book.occupancy(ALICE, NOW) == pytest.approx(0.5)


def test_an_agent_never_staffed_has_no_occupancy() -> None:
    book = ledger()
    book.start_agent(ALICE, minutes_ago(30), staffed=False, holding=0)
    assert book.occupancy(ALICE, NOW) is None
    assert book.occupancy(uuid.UUID(int=999), NOW) is None
