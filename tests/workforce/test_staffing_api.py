"""`POST /v1/workforce/staffing`: the CLI's plan over HTTP, for supervisors and admins."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from app.workforce import staffing
from app.workforce.erlang import Demand

PATH = "/v1/workforce/staffing"
HUNDRED_CALLS: dict[str, Any] = {
    "calls": 100,
    "interval_s": 1800,
    "aht_s": 180,
    "target_s": 20,
    "sl": 0.8,
}


async def test_a_supervisor_gets_the_issues_example(
    client: httpx.AsyncClient, supervisor: dict[str, str]
) -> None:
    answer = await client.post(PATH, json=HUNDRED_CALLS, headers=supervisor)
    assert answer.status_code == 200, answer.text
    plan = answer.json()
    assert plan["agents"] == 14
    assert round(plan["service_level"], 3) == 0.888
    assert plan["model"] == "erlang_c"
    assert plan["abandon_rate"] is None
    # The same keys and numbers as `contactcenter staffing --json`.
    demand = Demand(100, 1800, 180, 20)
    assert plan == staffing.plan_json(staffing.plan_staffing(demand, 0.8))


async def test_patience_gives_erlang_a(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    body = HUNDRED_CALLS | {"patience_s": 120, "max_abandon": 0.03}
    answer = await client.post(PATH, json=body, headers=admin)
    assert answer.status_code == 200, answer.text
    plan = answer.json()
    assert plan["model"] == "erlang_a"
    assert plan["abandon_rate"] <= 0.03
    assert plan["service_level"] >= 0.8


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("calls", 0),
        ("calls", 1_000_001),
        ("calls", "lots"),
        ("interval_s", 59),
        ("aht_s", -1),
        ("target_s", 86_401),
        ("sl", 1),
        ("sl", 0),
        ("patience_s", 0),
        ("max_abandon", 2),
    ],
)
async def test_a_bad_field_is_a_422_naming_it(
    client: httpx.AsyncClient, supervisor: dict[str, str], field: str, value: Any
) -> None:
    answer = await client.post(PATH, json=HUNDRED_CALLS | {field: value}, headers=supervisor)
    assert answer.status_code == 422
    assert field in [problem["field"].split(".")[-1] for problem in answer.json()["fields"]]


async def test_max_abandon_without_patience_is_named(
    client: httpx.AsyncClient, supervisor: dict[str, str]
) -> None:
    body = HUNDRED_CALLS | {"max_abandon": 0.05}
    answer = await client.post(PATH, json=body, headers=supervisor)
    assert answer.status_code == 422
    assert answer.json()["fields"] == [
        {"field": "max_abandon", "problem": "needs patience_s (Erlang A)"}
    ]


async def test_a_load_beyond_the_bound_is_a_422(
    client: httpx.AsyncClient, supervisor: dict[str, str]
) -> None:
    body = HUNDRED_CALLS | {"calls": 1_000_000, "interval_s": 60, "aht_s": 600}
    answer = await client.post(PATH, json=body, headers=supervisor)
    assert answer.status_code == 422
    assert answer.json()["fields"][0]["field"] == "calls"


async def test_the_largest_plans_are_answered_and_meet_their_goals(
    client: httpx.AsyncClient, supervisor: dict[str, str]
) -> None:
    """The bounds' corners: about 90,000 agents, patient and impatient callers, each within
    the search's bound of 100,000. How long they take is bench.simulation's figure."""
    largest = {"calls": 900_000, "interval_s": 1800, "aht_s": 180, "target_s": 20, "sl": 0.99}
    for extra in ({}, {"patience_s": 86_400}, {"patience_s": 1, "max_abandon": 0.001}):
        answer = await client.post(PATH, json=largest | extra, headers=supervisor)
        assert answer.status_code == 200, answer.text
        plan = answer.json()
        assert 90_000 <= plan["agents"] < 100_000, (extra, plan["agents"])
        assert plan["service_level"] >= 0.99, extra
        assert plan["abandon_rate"] is None or plan["abandon_rate"] <= 0.001, extra


async def test_the_plan_is_worked_out_off_the_event_loop(
    client: httpx.AsyncClient, supervisor: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The search (a few tenths of a second at the bounds) runs in a worker thread, so the
    loop's other requests do not wait for it."""
    threads: list[int] = []
    plan = staffing.plan_staffing

    def watched(*args: Any, **kwargs: Any) -> staffing.StaffingPlan:
        threads.append(threading.get_ident())
        return plan(*args, **kwargs)

    monkeypatch.setattr(staffing, "plan_staffing", watched)
    answer = await client.post(PATH, json=HUNDRED_CALLS, headers=supervisor)
    assert answer.status_code == 200
    assert threads
    assert threading.get_ident() not in threads
