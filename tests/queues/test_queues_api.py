"""The queues API: defaults, validation naming the field, partial updates, events and roles."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.support import create_skills, field_problems

Headers = dict[str, str]

DEFAULTS: dict[str, Any] = {
    "description": "",
    "service_level": {"percent": 80, "seconds": 20},
    "abandon_policy": "against",
    "offer_timeout_seconds": 20,
    "tier_weights": {"platinum": 30.0, "gold": 20.0, "iron": 10.0, "lead": 0.0},
    "aging_factor": 0.5,
    "wrap_up_seconds": 30,
    "business_hours": None,
    "holidays": {"closed_dates": [], "country": None, "subdivision": None},
    "required_skills": [],
    "is_open_now": True,
}

SHANGHAI_OFFICE: dict[str, Any] = {
    "timezone": "Asia/Shanghai",
    "weekly": {
        day: [{"opens": "09:00:00", "closes": "18:00:00"}]
        for day in ("mon", "tue", "wed", "thu", "fri")
    },
}

NEVER_OPEN: dict[str, Any] = {"timezone": "Europe/Paris", "weekly": {}}


async def create_queue(client: httpx.AsyncClient, admin: Headers, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/queues", json=body, headers=admin)
    assert response.status_code == 201, response.text
    queue: dict[str, Any] = response.json()
    return queue


async def get_queue(client: httpx.AsyncClient, headers: Headers, queue_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/queues/{queue_id}", headers=headers)
    assert response.status_code == 200, response.text
    queue: dict[str, Any] = response.json()
    return queue


async def events_of(client: httpx.AsyncClient, admin: Headers, subject_id: str) -> list[Any]:
    response = await client.get("/v1/events", params={"subject_id": subject_id}, headers=admin)
    assert response.status_code == 200, response.text
    events: list[Any] = response.json()["items"]
    return events


def settings_of(queue: dict[str, Any]) -> dict[str, Any]:
    """A queue without what changes by itself (its clock fields)."""
    return {k: v for k, v in queue.items() if k not in ("updated_at", "is_open_now")}


# --- create -------------------------------------------------------------------------------------


async def test_a_queue_created_with_a_name_only_gets_the_defaults(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    response = await client.post("/v1/queues", json={"name": "General"}, headers=admin)

    assert response.status_code == 201, response.text
    queue = response.json()
    uuid.UUID(queue["id"])
    assert queue["name"] == "General"
    assert {k: queue[k] for k in DEFAULTS} == DEFAULTS
    assert queue["created_at"]
    assert queue["updated_at"]
    assert await get_queue(client, admin, queue["id"]) == queue


async def test_admin_creates_a_queue_with_every_setting(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    await create_skills(client, admin, "billing", "mandarin")
    body = {
        "name": "China billing",
        "description": "Invoices in Mandarin",
        "service_level": {"percent": 90, "seconds": 30},
        "abandon_policy": "in_favour",
        "offer_timeout_seconds": 45,
        "tier_weights": {"platinum": 100, "gold": 50, "iron": 5, "lead": 0},
        "aging_factor": 2.5,
        "wrap_up_seconds": 0,
        "business_hours": SHANGHAI_OFFICE,
        "required_skills": [{"skill": "Mandarin", "level": 4}, {"skill": "billing", "level": 2}],
    }

    queue = await create_queue(client, admin, **body)

    assert queue["name"] == "China billing"
    assert queue["description"] == "Invoices in Mandarin"
    assert queue["service_level"] == {"percent": 90, "seconds": 30}
    assert queue["abandon_policy"] == "in_favour"
    assert queue["offer_timeout_seconds"] == 45
    assert queue["tier_weights"] == {"platinum": 100, "gold": 50, "iron": 5, "lead": 0}
    assert queue["aging_factor"] == 2.5
    assert queue["wrap_up_seconds"] == 0
    assert queue["business_hours"] == SHANGHAI_OFFICE
    assert queue["required_skills"] == [
        {"skill": "billing", "level": 2},
        {"skill": "mandarin", "level": 4},
    ]
    assert isinstance(queue["is_open_now"], bool)
    assert await get_queue(client, admin, queue["id"]) == queue


async def test_is_open_now_follows_the_business_hours(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    closed = await create_queue(client, admin, name="Closed", business_hours=NEVER_OPEN)
    always = await create_queue(client, admin, name="Always")

    assert closed["is_open_now"] is False
    assert closed["business_hours"] == NEVER_OPEN
    assert always["is_open_now"] is True
    listed = {
        q["name"]: q["is_open_now"]
        for q in (await client.get("/v1/queues", headers=admin)).json()["items"]
    }
    assert listed == {"Always": True, "Closed": False}


async def test_creating_a_queue_writes_an_event(client: httpx.AsyncClient, admin: Headers) -> None:
    queue = await create_queue(client, admin, name="General", offer_timeout_seconds=30)
    admin_id = (await client.get("/v1/auth/me", headers=admin)).json()["id"]

    events = await events_of(client, admin, queue["id"])

    assert [e["kind"] for e in events] == ["queue.created"]
    assert events[0]["subject_type"] == "queue"
    assert events[0]["actor"] == f"user:{admin_id}"
    assert events[0]["payload"]["name"] == "General"
    assert events[0]["payload"]["offer_timeout_seconds"] == 30


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"service_level": {"percent": 0}}, "service_level.percent"),
        ({"service_level": {"percent": 101}}, "service_level.percent"),
        ({"service_level": {"seconds": 0}}, "service_level.seconds"),
        ({"offer_timeout_seconds": 2}, "offer_timeout_seconds"),
        ({"offer_timeout_seconds": 601}, "offer_timeout_seconds"),
        ({"abandon_policy": "maybe"}, "abandon_policy"),
        ({"aging_factor": -0.1}, "aging_factor"),
        ({"wrap_up_seconds": 3601}, "wrap_up_seconds"),
        ({"tier_weights": {"gold": -1}}, "tier_weights.gold"),
        ({"description": "x" * 501}, "description"),
        ({"name": ""}, "name"),
        ({"name": " leading space is trimmed but ! is not"}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"business_hours": {"timezone": "Mars/Olympus"}}, "business_hours.timezone"),
        ({"business_hours": {"weekly": {}}}, "business_hours.timezone"),
        (
            {
                "business_hours": {
                    "timezone": "UTC",
                    "weekly": {"mon": [{"opens": "18:00", "closes": "09:00"}]},
                }
            },
            "business_hours.weekly.mon[0]",
        ),
        (
            {
                "business_hours": {
                    "timezone": "UTC",
                    "weekly": {"mon": [{"opens": "09:00+08:00", "closes": "18:00"}]},
                }
            },
            "business_hours.weekly.mon[0].opens",
        ),
        ({"required_skills": [{"skill": "billing", "level": 6}]}, "required_skills[0].level"),
    ],
)
async def test_a_bad_value_is_refused_naming_its_field(
    client: httpx.AsyncClient, admin: Headers, body: dict[str, Any], field: str
) -> None:
    response = await client.post("/v1/queues", json={"name": "General", **body}, headers=admin)

    assert list(field_problems(response)) == [field]
    assert (await client.get("/v1/queues", headers=admin)).json()["items"] == []


async def test_an_unknown_required_skill_is_refused_and_no_queue_is_made(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    await create_skills(client, admin, "billing")
    body = {
        "name": "Billing",
        "required_skills": [{"skill": "billing", "level": 2}, {"skill": "klingon", "level": 1}],
    }

    response = await client.post("/v1/queues", json=body, headers=admin)

    problems = field_problems(response)
    assert list(problems) == ["required_skills[1].skill"]
    assert "klingon" in problems["required_skills[1].skill"]
    assert (await client.get("/v1/queues", headers=admin)).json()["items"] == []
    created = await client.get("/v1/events", params={"kind": "queue.created"}, headers=admin)
    assert created.json()["items"] == []

    first = await client.post(
        "/v1/queues",
        json={"name": "Billing", "required_skills": [{"skill": "klingon", "level": 1}]},
        headers=admin,
    )
    assert list(field_problems(first)) == ["required_skills[0].skill"]


async def test_a_required_skill_listed_twice_is_refused(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    await create_skills(client, admin, "billing")
    twice = [{"skill": "billing", "level": 2}, {"skill": "Billing", "level": 3}]
    response = await client.post(
        "/v1/queues", json={"name": "Billing", "required_skills": twice}, headers=admin
    )
    assert list(field_problems(response)) == ["required_skills[1].skill"]


@pytest.mark.parametrize("duplicate", ["Billing", "BILLING", "billing", " billing "])
async def test_a_duplicate_name_is_refused_whatever_its_case(
    client: httpx.AsyncClient, admin: Headers, duplicate: str
) -> None:
    await create_queue(client, admin, name="Billing")

    response = await client.post("/v1/queues", json={"name": duplicate}, headers=admin)

    assert response.status_code == 409
    assert response.json()["error"] == "queue_name_taken"
    assert (await client.get("/v1/queues", headers=admin)).json()["total"] == 1


# --- read ---------------------------------------------------------------------------------------


async def test_queues_are_listed_by_name_with_their_skills(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    await create_skills(client, admin, "vip")
    vip = await create_queue(
        client, admin, name="VIP", required_skills=[{"skill": "vip", "level": 5}]
    )
    general = await create_queue(client, admin, name="General")

    listed = (await client.get("/v1/queues", headers=admin)).json()["items"]

    assert [settings_of(q) for q in listed] == [settings_of(general), settings_of(vip)]
    assert listed[1]["required_skills"] == [{"skill": "vip", "level": 5}]


async def test_an_unknown_queue_is_404(client: httpx.AsyncClient, admin: Headers) -> None:
    missing = str(uuid.uuid4())
    for response in (
        await client.get(f"/v1/queues/{missing}", headers=admin),
        await client.patch(f"/v1/queues/{missing}", json={"description": "x"}, headers=admin),
        await client.delete(f"/v1/queues/{missing}", headers=admin),
    ):
        assert response.status_code == 404
        assert response.json()["error"] == "queue_not_found"


# --- update -------------------------------------------------------------------------------------


async def test_patch_changes_only_the_fields_sent(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    await create_skills(client, admin, "billing")
    queue = await create_queue(
        client,
        admin,
        name="Billing",
        description="Invoices",
        business_hours=SHANGHAI_OFFICE,
        required_skills=[{"skill": "billing", "level": 2}],
    )

    response = await client.patch(
        f"/v1/queues/{queue['id']}",
        json={"description": "Invoices and refunds", "offer_timeout_seconds": 60},
        headers=admin,
    )

    assert response.status_code == 200, response.text
    updated = response.json()
    expected = settings_of(queue) | {
        "description": "Invoices and refunds",
        "offer_timeout_seconds": 60,
    }
    assert settings_of(updated) == expected
    assert updated["updated_at"] >= queue["updated_at"]
    assert settings_of(await get_queue(client, admin, queue["id"])) == expected


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"name": "Invoices"}, {"name": "Invoices"}),
        ({"abandon_policy": "ignore"}, {"abandon_policy": "ignore"}),
        ({"aging_factor": 0}, {"aging_factor": 0.0}),
        ({"wrap_up_seconds": 120}, {"wrap_up_seconds": 120}),
        (
            {"service_level": {"percent": 95, "seconds": 10}},
            {"service_level": {"percent": 95, "seconds": 10}},
        ),
        ({"service_level": {"seconds": 60}}, {"service_level": {"percent": 90, "seconds": 60}}),
        (
            {"tier_weights": {"lead": 1}},
            {"tier_weights": {"platinum": 100.0, "gold": 50.0, "iron": 10.0, "lead": 1.0}},
        ),
        ({}, {}),
    ],
)
async def test_each_setting_can_be_patched_alone(
    client: httpx.AsyncClient,
    admin: Headers,
    change: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    queue = await create_queue(
        client,
        admin,
        name="Billing",
        service_level={"percent": 90, "seconds": 30},
        tier_weights={"platinum": 100, "gold": 50},
    )

    response = await client.patch(f"/v1/queues/{queue['id']}", json=change, headers=admin)

    assert response.status_code == 200, response.text
    assert settings_of(response.json()) == settings_of(queue) | expected
    assert settings_of(await get_queue(client, admin, queue["id"])) == settings_of(queue) | expected


async def test_business_hours_are_replaced_and_null_clears_them(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    queue = await create_queue(client, admin, name="Billing", business_hours=SHANGHAI_OFFICE)
    url = f"/v1/queues/{queue['id']}"

    untouched = await client.patch(url, json={"description": "x"}, headers=admin)
    assert untouched.json()["business_hours"] == SHANGHAI_OFFICE

    replaced = await client.patch(url, json={"business_hours": NEVER_OPEN}, headers=admin)
    assert replaced.json()["business_hours"] == NEVER_OPEN
    assert replaced.json()["is_open_now"] is False

    cleared = await client.patch(url, json={"business_hours": None}, headers=admin)
    assert cleared.status_code == 200
    assert cleared.json()["business_hours"] is None
    assert cleared.json()["is_open_now"] is True
    assert (await get_queue(client, admin, queue["id"]))["business_hours"] is None


async def test_required_skills_are_replaced_by_a_patch(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    await create_skills(client, admin, "billing", "mandarin", "vip")
    queue = await create_queue(
        client,
        admin,
        name="Billing",
        required_skills=[{"skill": "billing", "level": 2}, {"skill": "mandarin", "level": 3}],
    )
    url = f"/v1/queues/{queue['id']}"

    replaced = await client.patch(
        url,
        json={"required_skills": [{"skill": "vip", "level": 1}, {"skill": "billing", "level": 5}]},
        headers=admin,
    )

    assert replaced.status_code == 200, replaced.text
    expected = [{"skill": "billing", "level": 5}, {"skill": "vip", "level": 1}]
    assert replaced.json()["required_skills"] == expected
    assert (await get_queue(client, admin, queue["id"]))["required_skills"] == expected

    kept = await client.patch(url, json={"name": "Money"}, headers=admin)
    assert kept.json()["required_skills"] == expected

    cleared = await client.patch(url, json={"required_skills": []}, headers=admin)
    assert cleared.json()["required_skills"] == []


async def test_a_bad_patch_changes_nothing(client: httpx.AsyncClient, admin: Headers) -> None:
    await create_skills(client, admin, "billing")
    queue = await create_queue(
        client, admin, name="Billing", required_skills=[{"skill": "billing", "level": 2}]
    )
    url = f"/v1/queues/{queue['id']}"

    unknown = await client.patch(
        url,
        json={"description": "new", "required_skills": [{"skill": "klingon", "level": 1}]},
        headers=admin,
    )
    assert list(field_problems(unknown)) == ["required_skills[0].skill"]

    bad = await client.patch(url, json={"service_level": {"percent": 0}}, headers=admin)
    assert list(field_problems(bad)) == ["service_level.percent"]

    zone = await client.patch(url, json={"business_hours": {"timezone": "Nowhere"}}, headers=admin)
    assert list(field_problems(zone)) == ["business_hours.timezone"]

    assert settings_of(await get_queue(client, admin, queue["id"])) == settings_of(queue)
    kinds = [e["kind"] for e in await events_of(client, admin, queue["id"])]
    assert kinds == ["queue.created"]


async def test_patch_refuses_the_name_of_another_queue(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    await create_queue(client, admin, name="Billing")
    vip = await create_queue(client, admin, name="VIP")

    taken = await client.patch(f"/v1/queues/{vip['id']}", json={"name": "BILLING"}, headers=admin)
    assert taken.status_code == 409
    assert taken.json()["error"] == "queue_name_taken"

    own = await client.patch(f"/v1/queues/{vip['id']}", json={"name": "vip"}, headers=admin)
    assert own.status_code == 200
    assert own.json()["name"] == "vip"


async def test_every_update_writes_an_event_with_what_was_sent(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    queue = await create_queue(client, admin, name="Billing", business_hours=SHANGHAI_OFFICE)
    url = f"/v1/queues/{queue['id']}"
    await client.patch(url, json={"wrap_up_seconds": 90}, headers=admin)
    await client.patch(url, json={"business_hours": None}, headers=admin)

    events = await events_of(client, admin, queue["id"])

    assert [e["kind"] for e in events] == ["queue.created", "queue.updated", "queue.updated"]
    assert events[1]["payload"] == {"wrap_up_seconds": 90}
    assert events[2]["payload"] == {"business_hours": None}


# --- delete -------------------------------------------------------------------------------------


async def test_admin_deletes_a_queue(client: httpx.AsyncClient, admin: Headers) -> None:
    await create_skills(client, admin, "billing")
    queue = await create_queue(
        client, admin, name="Billing", required_skills=[{"skill": "billing", "level": 2}]
    )
    other = await create_queue(client, admin, name="General")

    response = await client.delete(f"/v1/queues/{queue['id']}", headers=admin)

    assert response.status_code == 204, response.text
    assert (await client.get(f"/v1/queues/{queue['id']}", headers=admin)).status_code == 404
    listed = (await client.get("/v1/queues", headers=admin)).json()["items"]
    assert [q["id"] for q in listed] == [other["id"]]
    events = await events_of(client, admin, queue["id"])
    assert [e["kind"] for e in events] == ["queue.created", "queue.deleted"]
    assert events[-1]["payload"] == {"name": "Billing"}

    # The skill it required is free again, and the name may be used anew.
    skills = (await client.get("/v1/skills", headers=admin)).json()["items"]
    assert (await client.delete(f"/v1/skills/{skills[0]['id']}", headers=admin)).status_code == 204
    await create_queue(client, admin, name="billing")


# --- who may do what ----------------------------------------------------------------------------


async def test_agents_and_supervisors_read_queues(
    client: httpx.AsyncClient, admin: Headers, agent: Headers, supervisor: Headers
) -> None:
    queue = await create_queue(client, admin, name="General")
    for reader in (agent, supervisor):
        listed = await client.get("/v1/queues", headers=reader)
        assert listed.status_code == 200
        assert [q["id"] for q in listed.json()["items"]] == [queue["id"]]
        assert settings_of(await get_queue(client, reader, queue["id"])) == settings_of(queue)


@pytest.mark.parametrize("role", ["agent", "supervisor"])
async def test_only_admins_change_queues(
    client: httpx.AsyncClient,
    admin: Headers,
    agent: Headers,
    supervisor: Headers,
    role: str,
) -> None:
    headers = agent if role == "agent" else supervisor
    queue = await create_queue(client, admin, name="General")

    create = await client.post("/v1/queues", json={"name": "Other"}, headers=headers)
    patch = await client.patch(
        f"/v1/queues/{queue['id']}", json={"description": "mine"}, headers=headers
    )
    delete = await client.delete(f"/v1/queues/{queue['id']}", headers=headers)

    for response in (create, patch, delete):
        assert response.status_code == 403
        assert response.json()["error"] == "forbidden"
    listed = (await client.get("/v1/queues", headers=admin)).json()["items"]
    assert [settings_of(q) for q in listed] == [settings_of(queue)]


async def test_queues_need_a_login(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/queues")).status_code == 401
    assert (await client.post("/v1/queues", json={"name": "General"})).status_code == 401
