"""A queue's holidays over the API: kept, replaced, refused without hours, and what
`GET /v1/queues/{id}/status` says now."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.support import field_problems

Headers = dict[str, str]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ZONE = "Asia/Shanghai"

AROUND_THE_CLOCK: dict[str, Any] = {
    "timezone": ZONE,
    "weekly": {day: [{"opens": "00:00:00", "closes": "23:59:59"}] for day in DAYS},
}
OFFICE: dict[str, Any] = {
    "timezone": "Europe/London",
    "weekly": {day: [{"opens": "09:00:00", "closes": "17:30:00"}] for day in DAYS[:5]},
}
CHRISTMAS: dict[str, Any] = {
    "closed_dates": [{"date": "2026-12-24", "name": "Christmas Eve"}],
    "country": "GB",
    "subdivision": "ENG",
}
NO_HOLIDAYS: dict[str, Any] = {"closed_dates": [], "country": None, "subdivision": None}


async def create(client: httpx.AsyncClient, admin: Headers, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/queues", json={"name": "Billing", **body}, headers=admin)
    assert response.status_code == 201, response.text
    queue: dict[str, Any] = response.json()
    return queue


async def status_of(client: httpx.AsyncClient, headers: Headers, queue_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/queues/{queue_id}/status", headers=headers)
    assert response.status_code == 200, response.text
    status: dict[str, Any] = response.json()
    return status


def local_today() -> date:
    return datetime.now(ZoneInfo(ZONE)).date()


async def test_holidays_are_kept_and_read_back(client: httpx.AsyncClient, admin: Headers) -> None:
    queue = await create(client, admin, business_hours=OFFICE, holidays=CHRISTMAS)

    assert queue["holidays"] == CHRISTMAS
    read = await client.get(f"/v1/queues/{queue['id']}", headers=admin)
    assert read.json()["holidays"] == CHRISTMAS
    listed = (await client.get("/v1/queues", headers=admin)).json()["items"]
    assert listed[0]["holidays"] == CHRISTMAS


async def test_a_queue_has_no_holidays_unless_given(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    assert (await create(client, admin))["holidays"] == NO_HOLIDAYS


async def test_holidays_without_business_hours_are_refused(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    refused = await client.post(
        "/v1/queues", json={"name": "Billing", "holidays": CHRISTMAS}, headers=admin
    )
    problems = field_problems(refused)
    assert list(problems) == ["holidays"]
    assert "need business_hours" in problems["holidays"]
    assert (await client.get("/v1/queues", headers=admin)).json()["items"] == []


async def test_a_patch_that_would_leave_holidays_without_hours_changes_nothing(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    with_hours = await create(client, admin, business_hours=OFFICE, holidays=CHRISTMAS)
    url = f"/v1/queues/{with_hours['id']}"
    cleared_hours = await client.patch(url, json={"business_hours": None}, headers=admin)
    assert list(field_problems(cleared_hours)) == ["business_hours"]

    without = await client.post("/v1/queues", json={"name": "Sales"}, headers=admin)
    added = await client.patch(
        f"/v1/queues/{without.json()['id']}", json={"holidays": CHRISTMAS}, headers=admin
    )
    assert list(field_problems(added)) == ["holidays"]

    both = await client.patch(url, json={"business_hours": None, "holidays": None}, headers=admin)
    assert both.status_code == 200, both.text
    assert both.json()["holidays"] == NO_HOLIDAYS
    assert both.json()["business_hours"] is None


async def test_a_patch_replaces_the_calendar_whole_and_null_clears_it(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    queue = await create(client, admin, business_hours=OFFICE, holidays=CHRISTMAS)
    url = f"/v1/queues/{queue['id']}"

    kept = await client.patch(url, json={"description": "x"}, headers=admin)
    assert kept.json()["holidays"] == CHRISTMAS

    scotland = {"country": "gb", "subdivision": "SCT"}
    replaced = await client.patch(url, json={"holidays": scotland}, headers=admin)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["holidays"] == {
        "closed_dates": [],
        "country": "GB",
        "subdivision": "SCT",
    }

    cleared = await client.patch(url, json={"holidays": None}, headers=admin)
    assert cleared.json()["holidays"] == NO_HOLIDAYS

    events = await client.get("/v1/events", params={"subject_id": queue["id"]}, headers=admin)
    payloads = [e["payload"] for e in events.json()["items"][1:]]
    assert payloads[1] == {"holidays": {"country": "GB", "subdivision": "SCT"}}  # as sent
    assert payloads[2] == {"holidays": None}


@pytest.mark.parametrize(
    ("holidays", "field"),
    [
        ({"country": "ZZ"}, "holidays.country"),
        ({"country": "GB", "subdivision": "BAV"}, "holidays.subdivision"),
        ({"closed_dates": [{"date": "2026-13-01"}]}, "holidays.closed_dates[0].date"),
        (
            {"closed_dates": [{"date": "2026-12-25", "name": "a\u0000b"}]},
            "holidays.closed_dates[0].name",
        ),
        (
            {"closed_dates": [{"date": "2026-12-25"}, {"date": "2026-12-25"}]},
            "holidays.closed_dates",
        ),
    ],
)
async def test_a_bad_calendar_is_refused_naming_its_field(
    client: httpx.AsyncClient, admin: Headers, holidays: dict[str, Any], field: str
) -> None:
    body = {"name": "Billing", "business_hours": OFFICE, "holidays": holidays}
    response = await client.post("/v1/queues", json=body, headers=admin)
    assert list(field_problems(response)) == [field]


# --- status -------------------------------------------------------------------------------------


async def test_a_queue_on_a_holiday_says_so_and_when_it_opens(
    client: httpx.AsyncClient, admin: Headers, agent: Headers
) -> None:
    # Today and tomorrow closed (local dates), so that midnight passing mid-test changes nothing.
    today = local_today()
    closed = [
        {"date": today.isoformat(), "name": "Staff day"},
        {"date": (today + timedelta(days=1)).isoformat(), "name": "Staff day"},
    ]
    queue = await create(
        client, admin, business_hours=AROUND_THE_CLOCK, holidays={"closed_dates": closed}
    )
    assert queue["is_open_now"] is False

    status = await status_of(client, agent, queue["id"])

    assert status["queue_id"] == queue["id"]
    assert status["status"] == "holiday"
    assert status["holiday"] == "Staff day"
    reopens = datetime.combine(today + timedelta(days=2), datetime.min.time(), ZoneInfo(ZONE))
    assert datetime.fromisoformat(status["next_opening"]) == reopens
    at = datetime.fromisoformat(status["at"])
    assert abs(at - datetime.now(UTC)) < timedelta(minutes=1)


async def test_an_open_queue_opens_now(client: httpx.AsyncClient, admin: Headers) -> None:
    queue = await create(client, admin, business_hours=AROUND_THE_CLOCK)
    status = await status_of(client, admin, queue["id"])
    if status["status"] == "closed":  # the last second of a local day: 23:59:59 is closed
        assert datetime.fromisoformat(status["next_opening"]) > datetime.fromisoformat(status["at"])
        return
    assert status == status | {"status": "open", "holiday": None, "next_opening": status["at"]}


async def test_a_queue_that_never_opens_has_no_next_opening(
    client: httpx.AsyncClient, admin: Headers, supervisor: Headers
) -> None:
    queue = await create(client, admin, business_hours={"timezone": "Europe/Paris", "weekly": {}})
    status = await status_of(client, supervisor, queue["id"])
    assert status["status"] == "closed"
    assert status["holiday"] is None
    assert status["next_opening"] is None


async def test_the_status_of_an_unknown_queue_is_404(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    response = await client.get(f"/v1/queues/{uuid.uuid4()}/status", headers=admin)
    assert response.status_code == 404
    assert response.json()["error"] == "queue_not_found"


async def test_the_status_needs_a_login(client: httpx.AsyncClient, admin: Headers) -> None:
    queue = await create(client, admin)
    assert (await client.get(f"/v1/queues/{queue['id']}/status")).status_code == 401
