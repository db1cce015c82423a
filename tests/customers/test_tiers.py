"""The customer pyramid: the pure tier rule, and tiers computed through the API.

The rule, restated here on purpose rather than imported: a customer's rank is the share of the
*other* customers whose value is strictly lower, `(count strictly lower) / (n - 1)`, as
PostgreSQL's `percent_rank()` computes it; platinum from 0.95, gold from 0.80, iron from 0.30,
lead below.
"""

from __future__ import annotations

import math
import random
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.core.settings import TierCutoffs
from app.customers.models import Tier
from app.customers.tiers import tier_for_rank

PYRAMID = [Tier.lead, Tier.iron, Tier.gold, Tier.platinum]  # lowest first
DEFAULT = TierCutoffs()


def expected_tier(rank: float) -> str:
    if rank >= 0.95:
        return "platinum"
    if rank >= 0.80:
        return "gold"
    if rank >= 0.30:
        return "iron"
    return "lead"


def percent_rank(value: Decimal, others: list[Decimal]) -> float:
    """The rank of `value` among `others` (the customer itself left out); 0 with no others."""
    if not others:
        return 0.0
    return sum(1 for other in others if other < value) / len(others)


# --- the pure rule -------------------------------------------------------------------------------


def test_the_default_cut_offs_follow_the_20_80_rule() -> None:
    assert (DEFAULT.platinum, DEFAULT.gold, DEFAULT.iron) == (0.95, 0.80, 0.30)


@pytest.mark.parametrize(
    ("rank", "tier"),
    [
        (1.0, Tier.platinum),
        (0.95, Tier.platinum),
        (math.nextafter(0.95, 0), Tier.gold),
        (0.80, Tier.gold),
        (math.nextafter(0.80, 0), Tier.iron),
        (0.30, Tier.iron),
        (math.nextafter(0.30, 0), Tier.lead),
        (0.0, Tier.lead),
    ],
)
def test_each_tier_starts_exactly_at_its_cut_off(rank: float, tier: Tier) -> None:
    assert tier_for_rank(rank, DEFAULT) is tier


def test_other_cut_offs_are_honoured() -> None:
    flat = TierCutoffs(platinum=0.9, gold=0.5, iron=0.1)
    assert [tier_for_rank(r, flat) for r in (0.95, 0.9, 0.6, 0.5, 0.2, 0.1, 0.05)] == [
        Tier.platinum,
        Tier.platinum,
        Tier.gold,
        Tier.gold,
        Tier.iron,
        Tier.iron,
        Tier.lead,
    ]


@pytest.mark.parametrize(
    "cutoffs",
    [
        {"platinum": 0.8, "gold": 0.95, "iron": 0.3},
        {"platinum": 0.9, "gold": 0.9, "iron": 0.3},
        {"platinum": 1.0, "gold": 0.8, "iron": 0.3},
        {"platinum": 0.95, "gold": 0.8, "iron": 0.0},
    ],
)
def test_cut_offs_out_of_order_or_range_are_refused(cutoffs: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        TierCutoffs(**cutoffs)


OPEN_UNIT = st.floats(min_value=0, max_value=1, exclude_min=True, exclude_max=True)
RANK = st.floats(min_value=0, max_value=1)


@st.composite
def tier_cutoffs(draw: st.DrawFn) -> TierCutoffs:
    platinum, gold, iron = sorted(
        draw(st.lists(OPEN_UNIT, min_size=3, max_size=3, unique=True)), reverse=True
    )
    return TierCutoffs(platinum=platinum, gold=gold, iron=iron)


@settings(max_examples=150, deadline=None)
@given(cutoffs=tier_cutoffs(), low=RANK, high=RANK)
def test_a_higher_rank_never_earns_a_lower_tier(
    cutoffs: TierCutoffs, low: float, high: float
) -> None:
    low, high = sorted((low, high))
    assert PYRAMID.index(tier_for_rank(low, cutoffs)) <= PYRAMID.index(tier_for_rank(high, cutoffs))


@settings(max_examples=100, deadline=None)
@given(cutoffs=tier_cutoffs())
def test_the_cut_offs_themselves_are_the_first_rank_of_each_tier(cutoffs: TierCutoffs) -> None:
    for tier, start in ((Tier.platinum, cutoffs.platinum), (Tier.gold, cutoffs.gold)):
        assert tier_for_rank(start, cutoffs) is tier
    assert tier_for_rank(cutoffs.iron, cutoffs) is Tier.iron
    assert tier_for_rank(math.nextafter(cutoffs.iron, 0), cutoffs) is Tier.lead
    assert tier_for_rank(0.0, cutoffs) is Tier.lead
    assert tier_for_rank(1.0, cutoffs) is Tier.platinum


# --- through the API -----------------------------------------------------------------------------


async def create(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/customers", json=body, headers=headers)
    assert response.status_code == 201, response.text
    customer: dict[str, Any] = response.json()
    return customer


async def fetch(client: httpx.AsyncClient, headers: dict[str, str], customer_id: str) -> Any:
    response = await client.get(f"/v1/customers/{customer_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def tier_events(client: httpx.AsyncClient, admin: dict[str, str]) -> list[dict[str, Any]]:
    response = await client.get(
        "/v1/events", params={"kind": "customer.tier_changed", "limit": 1000}, headers=admin
    )
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["items"]
    return events


async def recompute(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.post("/v1/customers/tiers/recompute", headers=headers)


async def test_recompute_gives_every_computed_customer_the_tier_its_rank_earns(
    client: httpx.AsyncClient, supervisor: dict[str, str], admin: dict[str, str]
) -> None:
    # 21 customers: ranks are k/20, so some land exactly on the cut-offs 0.30, 0.80 and 0.95.
    values = [Decimal(100 * k + 7) for k in range(21)]
    random.Random(20).shuffle(values)
    manual = {values[0]: "platinum", values[1]: "lead", values[2]: "gold"}
    customers = []
    for i, value in enumerate(values):
        body: dict[str, Any] = {"name": f"Customer {i:02d}", "value": str(value)}
        if value in manual:
            body["tier"] = manual[value]
        customers.append(await create(client, supervisor, **body))
    before = {c["id"]: c["tier"] for c in customers}
    expected = {}
    for c in customers:
        value = Decimal(c["value"])
        others = [Decimal(o["value"]) for o in customers if o["id"] != c["id"]]
        expected[c["id"]] = manual.get(value) or expected_tier(percent_rank(value, others))
    should_change = {cid for cid, tier in expected.items() if tier != before[cid]}
    assert should_change, "the creation order should leave some computed tiers stale"

    response = await recompute(client, supervisor)

    assert response.status_code == 200, response.text
    assert response.json() == {"customers_ranked": 21, "tiers_changed": len(should_change)}
    after = {c["id"]: await fetch(client, supervisor, c["id"]) for c in customers}
    assert {cid: c["tier"] for cid, c in after.items()} == expected
    for c in customers:
        source = "manual" if Decimal(c["value"]) in manual else "computed"
        assert after[c["id"]]["tier_source"] == source
    # The pyramid's shape at the default cut-offs with 21 customers (k = 0..20 lower values):
    # platinum k >= 19, gold 16..18, iron 6..15, lead 0..5, before the manual overrides.
    by_value = {Decimal(c["value"]): after[c["id"]]["tier"] for c in customers}
    top = sorted(v for v in values if v not in manual)
    assert by_value[top[-1]] == "platinum"
    events = await tier_events(client, admin)
    assert sorted(e["subject_id"] for e in events) == sorted(should_change)
    for event in events:
        assert event["subject_type"] == "customer"
        assert event["actor"].startswith("user:")
        assert event["payload"] == {
            "from": before[event["subject_id"]],
            "to": expected[event["subject_id"]],
        }


async def test_recompute_is_idempotent(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for i in range(8):
        await create(client, admin, name=f"C{i}", value=str(i * 1000))
    first = await recompute(client, admin)
    assert first.status_code == 200
    events_after_first = await tier_events(client, admin)

    second = await recompute(client, admin)

    assert second.json() == {"customers_ranked": 8, "tiers_changed": 0}
    assert await tier_events(client, admin) == events_after_first


async def test_equal_values_share_a_rank(
    client: httpx.AsyncClient, supervisor: dict[str, str]
) -> None:
    values = [
        Decimal(v) for v in ("10", "10", "10", "20", "20", "30", "40", "40", "40", "40", "50")
    ]
    customers = [
        await create(client, supervisor, name=f"Tie {i}", value=str(v))
        for i, v in enumerate(values)
    ]

    response = await recompute(client, supervisor)

    assert response.status_code == 200
    for c in customers:
        value = Decimal(c["value"])
        others = [Decimal(o["value"]) for o in customers if o["id"] != c["id"]]
        got = await fetch(client, supervisor, c["id"])
        assert got["tier"] == expected_tier(percent_rank(value, others)), c["value"]
    tiers = {
        Decimal(c["value"]): (await fetch(client, supervisor, c["id"]))["tier"] for c in customers
    }
    # rank(10) = 0, rank(20) = 3/10, rank(30) = 5/10, rank(40) = 6/10, rank(50) = 10/10.
    assert tiers == {
        Decimal(10): "lead",
        Decimal(20): "iron",
        Decimal(30): "iron",
        Decimal(40): "iron",
        Decimal(50): "platinum",
    }


async def test_recompute_with_no_customers_changes_nothing(
    client: httpx.AsyncClient, supervisor: dict[str, str]
) -> None:
    response = await recompute(client, supervisor)
    assert response.status_code == 200
    assert response.json() == {"customers_ranked": 0, "tiers_changed": 0}


async def test_agents_may_not_recompute_tiers(
    client: httpx.AsyncClient, agent: dict[str, str], admin: dict[str, str]
) -> None:
    for i in range(4):
        await create(client, admin, name=f"C{i}", value=str(i))
    stale = await create(client, admin, name="Top", value="1000")
    await create(client, admin, name="Higher", value="2000")  # `Top` should drop from platinum

    response = await recompute(client, agent)

    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert (await fetch(client, admin, stale["id"]))["tier"] == stale["tier"] == "platinum"
    assert await tier_events(client, admin) == []
    unauthenticated = await client.post("/v1/customers/tiers/recompute")
    assert unauthenticated.status_code == 401


async def test_a_new_customer_without_a_tier_gets_the_tier_its_value_would_rank(
    client: httpx.AsyncClient, agent: dict[str, str]
) -> None:
    # Each new customer is ranked among those already there, as if it were one of them.
    values = [Decimal(v) for v in (500, 100, 900, 100, 300, 1000, 50, 700, 700, 2000, 0, 800)]
    existing: list[Decimal] = []
    for i, value in enumerate(values):
        created = await create(client, agent, name=f"New {i}", value=str(value))
        assert created["tier_source"] == "computed"
        assert created["tier"] == expected_tier(percent_rank(value, existing)), (value, existing)
        existing.append(value)


async def test_the_first_customer_is_ranked_zero_and_the_best_newcomer_platinum(
    client: httpx.AsyncClient, agent: dict[str, str]
) -> None:
    first = await create(client, agent, name="First", value="1000000")
    assert first["tier"] == "lead"  # alone, its rank is 0
    best = await create(client, agent, name="Best", value="2000000")
    assert best["tier"] == "platinum"  # every existing customer is lower
    worst = await create(client, agent, name="Worst", value="0")
    assert worst["tier"] == "lead"


async def test_a_manual_tier_on_creation_is_kept_as_given(
    client: httpx.AsyncClient, agent: dict[str, str]
) -> None:
    await create(client, agent, name="Big", value="1000000")
    small = await create(client, agent, name="Small", value="1", tier="platinum")
    assert (small["tier"], small["tier_source"]) == ("platinum", "manual")


async def test_handing_a_tier_back_to_the_computation_agrees_with_recompute(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    customers = [
        await create(client, admin, name=f"C{v}", value=str(v)) for v in (100, 200, 300, 400, 500)
    ]
    assert (await recompute(client, admin)).status_code == 200
    top = customers[-1]
    assert (await fetch(client, admin, top["id"]))["tier"] == "platinum"  # rank 4/4
    pinned = await client.patch(f"/v1/customers/{top['id']}", json={"tier": "lead"}, headers=admin)
    assert pinned.json()["tier_source"] == "manual"

    response = await client.patch(
        f"/v1/customers/{top['id']}", json={"tier_source": "computed"}, headers=admin
    )

    assert response.status_code == 200, response.text
    assert (response.json()["tier"], response.json()["tier_source"]) == ("platinum", "computed")
    again = await recompute(client, admin)
    assert again.json() == {"customers_ranked": 5, "tiers_changed": 0}


async def test_handing_back_with_a_new_value_ranks_the_new_value(
    client: httpx.AsyncClient, supervisor: dict[str, str]
) -> None:
    customers = [
        await create(client, supervisor, name=f"C{v}", value=str(v), tier="gold")
        for v in (100, 200, 300, 400, 500)
    ]
    lowest = customers[0]

    response = await client.patch(
        f"/v1/customers/{lowest['id']}",
        json={"tier_source": "computed", "value": "450"},
        headers=supervisor,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    # 450 is above 200, 300 and 400 of the four others: rank 3/4 = 0.75.
    assert (body["tier"], body["tier_source"], body["value"]) == ("iron", "computed", "450.00")


async def test_a_newcomer_equal_to_existing_values_is_not_ranked_above_them(
    client: httpx.AsyncClient, supervisor: dict[str, str]
) -> None:
    # Values are exact decimals; an equal value must never count as lower, even at the extremes.
    for value in ("0.10", "0.30", "999999999999.99", "999999999999.99"):
        await create(client, supervisor, name=f"C{value}", value=value, tier="gold")
    cheapest_equal = await create(client, supervisor, name="Equal low", value="0.10")
    assert cheapest_equal["tier"] == "lead"  # 0 of 4 lower
    richest_equal = await create(client, supervisor, name="Equal high", value="999999999999.99")
    assert richest_equal["tier"] == "iron"  # 3 of 5 lower: 0.6
    middle = await create(client, supervisor, name="Equal middle", value="0.30")
    assert middle["tier"] == "iron"  # the two 0.10s of 6 lower: 0.33; the other 0.30 is not
