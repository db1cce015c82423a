"""The customers API as a client sees it: create, find, change, contact points, delete, events."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

Headers = dict[str, str]


async def create(client: httpx.AsyncClient, headers: Headers, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/customers", json=body, headers=headers)
    assert response.status_code == 201, response.text
    customer: dict[str, Any] = response.json()
    return customer


async def search(client: httpx.AsyncClient, headers: Headers, **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/customers", params=params, headers=headers)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def count(client: httpx.AsyncClient, headers: Headers) -> int:
    total: int = (await search(client, headers, limit=1))["total"]
    return total


async def events_of(
    client: httpx.AsyncClient, admin: Headers, subject_id: str
) -> list[dict[str, Any]]:
    response = await client.get(
        "/v1/events",
        params={"subject_type": "customer", "subject_id": subject_id, "limit": 1000},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["items"]
    return events


async def event_kinds(client: httpx.AsyncClient, admin: Headers, subject_id: str) -> list[str]:
    return [e["kind"] for e in await events_of(client, admin, subject_id)]


def contacts(customer: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["kind"], c["value"]) for c in customer["contact_points"]]


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == code
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


def field_names(body: dict[str, Any]) -> list[str]:
    return [f["field"] for f in body.get("fields", [])]


LI_WEI: dict[str, Any] = {
    "name": "Li Wei",
    "tier": "gold",
    "lifecycle_stage": "stability",
    "value": "12500.00",
    "language": "zh-CN",
    "notes": "prefers WeChat",
    "phones": ["(+86) 138-0013-8000"],
    "emails": ["  Li.Wei@Example.COM "],
    "chat_ids": [" wx:LiWei "],
}


# --- create --------------------------------------------------------------------------------------


async def test_create_stores_the_profile_and_normalised_contact_points(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    response = await client.post("/v1/customers", json=LI_WEI, headers=admin)

    assert response.status_code == 201, response.text
    body = response.json()
    uuid.UUID(body["id"])
    assert body["name"] == "Li Wei"
    assert (body["tier"], body["tier_source"]) == ("gold", "manual")
    assert body["lifecycle_stage"] == "stability"
    assert body["value"] == "12500.00"
    assert body["language"] == "zh-CN"
    assert body["notes"] == "prefers WeChat"
    assert contacts(body) == [
        ("phone", "+8613800138000"),
        ("email", "li.wei@example.com"),
        ("chat", "wx:LiWei"),
    ]
    assert body["created_at"]
    assert body["updated_at"]
    fetched = await client.get(f"/v1/customers/{body['id']}", headers=admin)
    assert fetched.json() == body
    events = await events_of(client, admin, body["id"])
    assert [e["kind"] for e in events] == ["customer.created"]
    assert events[0]["actor"].startswith("user:")
    assert events[0]["payload"] == {"name": "Li Wei", "tier": "gold", "contacts": 3}


async def test_create_with_only_a_name_takes_the_defaults(
    client: httpx.AsyncClient, supervisor: Headers
) -> None:
    body = await create(client, supervisor, name="  Grace Hopper  ")
    assert body["name"] == "Grace Hopper"
    assert body["lifecycle_stage"] == "exploration"
    assert body["value"] in ("0", "0.00")
    assert (body["tier"], body["tier_source"]) == ("lead", "computed")
    assert body["language"] is None
    assert body["notes"] == ""
    assert body["contact_points"] == []


async def test_the_same_contact_point_twice_in_one_request_is_kept_once(
    client: httpx.AsyncClient, supervisor: Headers
) -> None:
    body = await create(
        client,
        supervisor,
        name="Twice",
        phones=["13800138000", "+86 138 0013 8000"],
        emails=["a@example.com", "A@EXAMPLE.COM"],
    )
    assert contacts(body) == [("phone", "+8613800138000"), ("email", "a@example.com")]


BAD_CREATES: list[tuple[dict[str, Any], str]] = [
    ({"phones": ["12345"]}, "phones[0]"),
    ({"phones": ["+8613800138000", "not a number"]}, "phones[1]"),
    ({"emails": ["li.wei@"]}, "emails[0]"),
    ({"emails": ["ok@example.com", "two@@example.com"]}, "emails[1]"),
    ({"chat_ids": ["   "]}, "chat_ids[0]"),
    ({"tier": "diamond"}, "tier"),
    ({"lifecycle_stage": "retired"}, "lifecycle_stage"),
    ({"value": "-0.01"}, "value"),
    ({"value": "1.001"}, "value"),
    ({"value": "not money"}, "value"),
    ({"language": "Chinese, please"}, "language"),
    ({"name": "   "}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"phones": ["13800138000"] * 21}, "phones"),
]


async def test_create_refuses_a_bad_field_names_it_and_writes_nothing(
    client: httpx.AsyncClient, supervisor: Headers
) -> None:
    for body, field in BAD_CREATES:
        response = await client.post(
            "/v1/customers", json={"name": "Li Wei", **body}, headers=supervisor
        )

        error = assert_error(response, 422, "validation_error")
        assert field in field_names(error), (body, error)
    assert await count(client, supervisor) == 0


async def test_create_without_a_name_names_the_missing_field(
    client: httpx.AsyncClient, supervisor: Headers
) -> None:
    response = await client.post("/v1/customers", json={"tier": "gold"}, headers=supervisor)
    assert field_names(assert_error(response, 422, "validation_error")) == ["name"]


@pytest.mark.parametrize(
    ("first", "second", "field"),
    [
        ({"emails": ["li.wei@example.com"]}, {"emails": ["LI.WEI@example.com"]}, "emails[0]"),
        ({"phones": ["13800138000"]}, {"phones": ["+86 138 0013 8000"]}, "phones[0]"),
        (
            {"phones": ["13800138000"]},
            {"phones": ["+1 201 555 0123", "(+86) 138-0013-8000"]},
            "phones[1]",
        ),
        ({"chat_ids": ["wx:LiWei"]}, {"chat_ids": ["wx:LiWei "]}, "chat_ids[0]"),
    ],
)
async def test_a_contact_point_of_another_customer_is_refused_and_nothing_is_written(
    client: httpx.AsyncClient,
    admin: Headers,
    first: dict[str, Any],
    second: dict[str, Any],
    field: str,
) -> None:
    owner = await create(client, admin, name="Owner", **first)
    before = await count(client, admin)
    events_before = await client.get("/v1/events", params={"limit": 1000}, headers=admin)

    response = await client.post(
        "/v1/customers", json={"name": "Intruder", **second}, headers=admin
    )

    error = assert_error(response, 409, "contact_point_taken")
    assert field_names(error) == [field]
    assert owner["id"] in error["detail"]
    assert await count(client, admin) == before
    assert (await search(client, admin, q="Intruder"))["total"] == 0
    events_after = await client.get("/v1/events", params={"limit": 1000}, headers=admin)
    assert events_after.json() == events_before.json()


async def test_two_customers_racing_for_one_number_get_one_201_and_one_409(
    client: httpx.AsyncClient, supervisor: Headers
) -> None:
    async def claim(name: str, written: str) -> httpx.Response:
        body = {"name": name, "phones": [written]}
        return await client.post("/v1/customers", json=body, headers=supervisor)

    responses = await asyncio.gather(
        claim("First", "13800138000"), claim("Second", "+86 138 0013 8000")
    )

    assert sorted(r.status_code for r in responses) == [201, 409]
    loser = next(r for r in responses if r.status_code == 409)
    assert loser.json()["error"] == "contact_point_taken"
    assert await count(client, supervisor) == 1


# --- find ----------------------------------------------------------------------------------------


async def test_a_phone_written_differently_finds_the_same_customer(
    client: httpx.AsyncClient, supervisor: Headers
) -> None:
    li = await create(client, supervisor, **LI_WEI)
    await create(client, supervisor, name="Someone else", phones=["13900139000"])

    for written in ("13800138000", "+86 138 0013 8000", "(+86) 138-0013-8000", "+8613800138000"):
        page = await search(client, supervisor, phone=written)
        assert [c["id"] for c in page["items"]] == [li["id"]], written
        assert page["total"] == 1
        found = await client.get(
            "/v1/customers/lookup", params={"kind": "phone", "value": written}, headers=supervisor
        )
        assert found.status_code == 200, found.text
        assert found.json()["id"] == li["id"]


async def test_email_lookup_ignores_case_and_spaces(
    client: httpx.AsyncClient, supervisor: Headers
) -> None:
    li = await create(client, supervisor, **LI_WEI)

    for written in ("li.wei@example.com", "LI.WEI@EXAMPLE.COM", " Li.Wei@example.com "):
        found = await client.get(
            "/v1/customers/lookup", params={"kind": "email", "value": written}, headers=supervisor
        )
        assert found.status_code == 200, found.text
        assert found.json()["id"] == li["id"]
        page = await search(client, supervisor, email=written)
        assert [c["id"] for c in page["items"]] == [li["id"]]


async def test_chat_lookup_is_exact_but_trimmed(
    client: httpx.AsyncClient, supervisor: Headers
) -> None:
    li = await create(client, supervisor, **LI_WEI)
    found = await client.get(
        "/v1/customers/lookup", params={"kind": "chat", "value": "wx:LiWei"}, headers=supervisor
    )
    assert found.json()["id"] == li["id"]
    assert (await search(client, supervisor, chat_id=" wx:LiWei"))["total"] == 1
    other_case = await client.get(
        "/v1/customers/lookup", params={"kind": "chat", "value": "wx:liwei"}, headers=supervisor
    )
    assert_error(other_case, 404, "not_found")


async def test_lookup_of_an_unknown_or_invalid_contact_point_is_404(
    client: httpx.AsyncClient, supervisor: Headers
) -> None:
    await create(client, supervisor, **LI_WEI)
    for kind, value in (
        ("phone", "13900139000"),
        ("phone", "not a number"),
        ("email", "nobody@example.com"),
        ("email", "not an address"),
    ):
        response = await client.get(
            "/v1/customers/lookup", params={"kind": kind, "value": value}, headers=supervisor
        )
        assert_error(response, 404, "not_found")


async def test_lookup_needs_a_known_kind_and_a_value(
    client: httpx.AsyncClient, supervisor: Headers
) -> None:
    response = await client.get(
        "/v1/customers/lookup", params={"kind": "fax", "value": "1"}, headers=supervisor
    )
    assert field_names(assert_error(response, 422, "validation_error")) == ["query.kind"]
    response = await client.get(
        "/v1/customers/lookup", params={"kind": "phone"}, headers=supervisor
    )
    assert field_names(assert_error(response, 422, "validation_error")) == ["query.value"]


async def test_searching_by_an_invalid_phone_or_email_names_the_parameter(
    client: httpx.AsyncClient, supervisor: Headers
) -> None:
    response = await client.get("/v1/customers", params={"phone": "12345"}, headers=supervisor)
    assert field_names(assert_error(response, 422, "validation_error")) == ["phone"]
    response = await client.get("/v1/customers", params={"email": "nope"}, headers=supervisor)
    assert field_names(assert_error(response, 422, "validation_error")) == ["email"]


async def test_search_by_part_of_the_name_ignores_case(
    client: httpx.AsyncClient, supervisor: Headers
) -> None:
    for name in ("Li Wei", "LI NA", "Wang Li", "Grace Hopper", "Olivia"):
        await create(client, supervisor, name=name)

    def names(page: dict[str, Any]) -> list[str]:
        return [c["name"] for c in page["items"]]

    assert names(await search(client, supervisor, q="li")) == [
        "LI NA",
        "Li Wei",
        "Olivia",
        "Wang Li",
    ]
    assert names(await search(client, supervisor, q="WEI")) == ["Li Wei"]
    assert names(await search(client, supervisor, q="hop")) == ["Grace Hopper"]
    assert (await search(client, supervisor, q="zzz"))["total"] == 0


async def test_like_wildcards_in_the_search_text_match_themselves(
    client: httpx.AsyncClient, supervisor: Headers
) -> None:
    for name in ("100% Loyal", "Plain", "Under_score", "Back\\slash"):
        await create(client, supervisor, name=name)

    assert [c["name"] for c in (await search(client, supervisor, q="%"))["items"]] == ["100% Loyal"]
    assert [c["name"] for c in (await search(client, supervisor, q="_"))["items"]] == [
        "Under_score"
    ]
    assert [c["name"] for c in (await search(client, supervisor, q="\\"))["items"]] == [
        "Back\\slash"
    ]


async def test_pagination_walks_every_customer_once_in_name_order(
    client: httpx.AsyncClient, supervisor: Headers
) -> None:
    names = [f"Customer {letter}" for letter in "EDCBAGF"]
    for name in names:
        await create(client, supervisor, name=name)
    await create(client, supervisor, name="Not matching")

    seen: list[str] = []
    for offset in range(0, 8, 3):
        page = await search(client, supervisor, q="customer", limit=3, offset=offset)
        assert (page["total"], page["limit"], page["offset"]) == (7, 3, offset)
        assert len(page["items"]) == min(3, 7 - offset)
        seen += [c["name"] for c in page["items"]]
    assert seen == sorted(names)
    beyond = await search(client, supervisor, q="customer", limit=3, offset=7)
    assert (beyond["items"], beyond["total"]) == ([], 7)


async def test_bad_search_parameters_are_named(
    client: httpx.AsyncClient, supervisor: Headers
) -> None:
    cases: list[tuple[dict[str, str | int], str]] = [
        ({"limit": 0}, "query.limit"),
        ({"limit": 201}, "query.limit"),
        ({"offset": -1}, "query.offset"),
        ({"tier": "diamond"}, "query.tier"),
        ({"lifecycle_stage": "retired"}, "query.lifecycle_stage"),
    ]
    for params, field in cases:
        response = await client.get("/v1/customers", params=params, headers=supervisor)
        assert field_names(assert_error(response, 422, "validation_error")) == [field], params


async def test_filter_by_tier_and_lifecycle_stage(
    client: httpx.AsyncClient, supervisor: Headers
) -> None:
    rows = [
        ("A", "gold", "stability"),
        ("B", "gold", "decline"),
        ("C", "platinum", "stability"),
        ("D", "lead", "exploration"),
        ("E", "gold", "stability"),
    ]
    for name, tier, stage in rows:
        await create(client, supervisor, name=name, tier=tier, lifecycle_stage=stage)

    async def names(**params: Any) -> list[str]:
        return [c["name"] for c in (await search(client, supervisor, **params))["items"]]

    assert await names(tier="gold") == ["A", "B", "E"]
    assert await names(lifecycle_stage="stability") == ["A", "C", "E"]
    assert await names(tier="gold", lifecycle_stage="stability") == ["A", "E"]
    assert await names(tier="iron") == []
    assert await names(tier="gold", q="b") == ["B"]
    assert (await search(client, supervisor, tier="gold", limit=1))["total"] == 3


# --- change --------------------------------------------------------------------------------------


async def test_patch_changes_only_what_is_sent_and_writes_one_event(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    li = await create(client, admin, **LI_WEI)

    response = await client.patch(
        f"/v1/customers/{li['id']}",
        json={"name": "Li Wei (Acme)", "lifecycle_stage": "decline", "notes": "moved to Beijing"},
        headers=admin,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "Li Wei (Acme)"
    assert body["lifecycle_stage"] == "decline"
    assert body["notes"] == "moved to Beijing"
    for unchanged in ("tier", "tier_source", "value", "language", "contact_points", "created_at"):
        assert body[unchanged] == li[unchanged], unchanged
    assert body["updated_at"] >= li["updated_at"]
    assert (await client.get(f"/v1/customers/{li['id']}", headers=admin)).json() == body
    events = await events_of(client, admin, li["id"])
    assert [e["kind"] for e in events] == ["customer.created", "customer.updated"]
    assert events[1]["payload"] == {"name": "Li Wei (Acme)", "lifecycle_stage": "decline"}


async def test_setting_a_tier_by_hand_makes_it_manual(
    client: httpx.AsyncClient, supervisor: Headers
) -> None:
    grace = await create(client, supervisor, name="Grace", value="10")
    assert grace["tier_source"] == "computed"

    response = await client.patch(
        f"/v1/customers/{grace['id']}", json={"tier": "platinum"}, headers=supervisor
    )

    assert (response.json()["tier"], response.json()["tier_source"]) == ("platinum", "manual")


async def test_handing_the_tier_back_recomputes_it_from_value(
    client: httpx.AsyncClient, supervisor: Headers
) -> None:
    for value in (100, 200, 300):
        await create(client, supervisor, name=f"C{value}", value=str(value))
    grace = await create(client, supervisor, name="Grace", value="50", tier="platinum")

    response = await client.patch(
        f"/v1/customers/{grace['id']}", json={"tier_source": "computed"}, headers=supervisor
    )

    assert response.status_code == 200, response.text
    assert (response.json()["tier"], response.json()["tier_source"]) == ("lead", "computed")


async def test_patch_refuses_a_bad_field_and_changes_nothing(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    li = await create(client, admin, **LI_WEI)

    for body, field in [
        ({"tier": "diamond"}, "tier"),
        ({"tier_source": "guessed"}, "tier_source"),
        ({"value": "-1"}, "value"),
        ({"name": ""}, "name"),
        ({"language": "not a language"}, "language"),
        ({"notes": "x" * 10_001}, "notes"),
    ]:
        response = await client.patch(f"/v1/customers/{li['id']}", json=body, headers=admin)
        assert field in field_names(assert_error(response, 422, "validation_error")), body

    assert (await client.get(f"/v1/customers/{li['id']}", headers=admin)).json() == li
    assert await event_kinds(client, admin, li["id"]) == ["customer.created"]


async def test_patch_of_an_unknown_customer_is_404(
    client: httpx.AsyncClient, supervisor: Headers
) -> None:
    response = await client.patch(
        f"/v1/customers/{uuid.uuid4()}", json={"name": "Nobody"}, headers=supervisor
    )
    assert_error(response, 404, "customer_not_found")


# --- contact points ------------------------------------------------------------------------------


async def test_add_a_contact_point_normalises_it_and_writes_one_event(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    grace = await create(client, admin, name="Grace")

    response = await client.post(
        f"/v1/customers/{grace['id']}/contact-points",
        json={"kind": "phone", "value": "+86 139 0013 9000"},
        headers=admin,
    )

    assert response.status_code == 201, response.text
    assert contacts(response.json()) == [("phone", "+8613900139000")]
    found = await client.get(
        "/v1/customers/lookup", params={"kind": "phone", "value": "13900139000"}, headers=admin
    )
    assert found.json()["id"] == grace["id"]
    events = await events_of(client, admin, grace["id"])
    assert [e["kind"] for e in events] == ["customer.created", "customer.contact_point_added"]
    assert events[1]["payload"] == {"kind": "phone", "value": "+8613900139000"}


async def test_adding_a_contact_point_the_customer_already_has_changes_nothing(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    li = await create(client, admin, **LI_WEI)

    response = await client.post(
        f"/v1/customers/{li['id']}/contact-points",
        json={"kind": "email", "value": "LI.WEI@example.com"},
        headers=admin,
    )

    assert response.status_code == 201, response.text
    assert contacts(response.json()) == contacts(li)
    assert await event_kinds(client, admin, li["id"]) == ["customer.created"]


async def test_adding_another_customers_contact_point_is_409(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    li = await create(client, admin, **LI_WEI)
    grace = await create(client, admin, name="Grace")

    response = await client.post(
        f"/v1/customers/{grace['id']}/contact-points",
        json={"kind": "phone", "value": "138 0013 8000"},
        headers=admin,
    )

    error = assert_error(response, 409, "contact_point_taken")
    assert field_names(error) == ["value"]
    assert li["id"] in error["detail"]
    assert (await client.get(f"/v1/customers/{grace['id']}", headers=admin)).json()[
        "contact_points"
    ] == []
    assert await event_kinds(client, admin, grace["id"]) == ["customer.created"]


async def test_adding_a_bad_contact_point_names_the_field(
    client: httpx.AsyncClient, supervisor: Headers
) -> None:
    grace = await create(client, supervisor, name="Grace")
    for body, field in [
        ({"kind": "phone", "value": "12345"}, "value"),
        ({"kind": "email", "value": "nobody"}, "value"),
        ({"kind": "fax", "value": "12345"}, "kind"),
        ({"kind": "phone", "value": ""}, "value"),
        ({"kind": "phone"}, "value"),
    ]:
        response = await client.post(
            f"/v1/customers/{grace['id']}/contact-points", json=body, headers=supervisor
        )
        assert field_names(assert_error(response, 422, "validation_error")) == [field], body
    fetched = await client.get(f"/v1/customers/{grace['id']}", headers=supervisor)
    assert fetched.json()["contact_points"] == []


async def test_adding_to_an_unknown_customer_is_404(
    client: httpx.AsyncClient, supervisor: Headers
) -> None:
    response = await client.post(
        f"/v1/customers/{uuid.uuid4()}/contact-points",
        json={"kind": "phone", "value": "13800138000"},
        headers=supervisor,
    )
    assert_error(response, 404, "customer_not_found")
    assert await count(client, supervisor) == 0


async def test_remove_a_contact_point_frees_it(client: httpx.AsyncClient, admin: Headers) -> None:
    li = await create(client, admin, **LI_WEI)
    phone = next(c for c in li["contact_points"] if c["kind"] == "phone")

    response = await client.delete(
        f"/v1/customers/{li['id']}/contact-points/{phone['id']}", headers=admin
    )

    assert response.status_code == 200, response.text
    assert contacts(response.json()) == [("email", "li.wei@example.com"), ("chat", "wx:LiWei")]
    lookup = await client.get(
        "/v1/customers/lookup", params={"kind": "phone", "value": "13800138000"}, headers=admin
    )
    assert lookup.status_code == 404
    taker = await create(client, admin, name="New owner", phones=["+86 138 0013 8000"])
    assert contacts(taker) == [("phone", "+8613800138000")]
    events = await events_of(client, admin, li["id"])
    assert [e["kind"] for e in events] == ["customer.created", "customer.contact_point_removed"]
    assert events[1]["payload"] == {"kind": "phone", "value": "+8613800138000"}


async def test_removing_an_unknown_or_someone_elses_contact_point_is_404(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    li = await create(client, admin, **LI_WEI)
    grace = await create(client, admin, name="Grace", phones=["13900139000"])
    graces_phone = grace["contact_points"][0]["id"]

    unknown = await client.delete(
        f"/v1/customers/{li['id']}/contact-points/{uuid.uuid4()}", headers=admin
    )
    someone_elses = await client.delete(
        f"/v1/customers/{li['id']}/contact-points/{graces_phone}", headers=admin
    )

    assert_error(unknown, 404, "not_found")
    assert_error(someone_elses, 404, "not_found")
    assert (await client.get(f"/v1/customers/{grace['id']}", headers=admin)).json() == grace
    assert await event_kinds(client, admin, li["id"]) == ["customer.created"]


# --- get and delete ------------------------------------------------------------------------------


async def test_get_an_unknown_customer_is_404(
    client: httpx.AsyncClient, supervisor: Headers
) -> None:
    response = await client.get(f"/v1/customers/{uuid.uuid4()}", headers=supervisor)
    assert_error(response, 404, "customer_not_found")
    malformed = await client.get("/v1/customers/not-a-uuid", headers=supervisor)
    assert field_names(assert_error(malformed, 422, "validation_error")) == ["path.customer_id"]


async def test_a_supervisor_deletes_a_customer_and_its_contact_points(
    client: httpx.AsyncClient, supervisor: Headers, admin: Headers
) -> None:
    li = await create(client, supervisor, **LI_WEI)

    response = await client.delete(f"/v1/customers/{li['id']}", headers=supervisor)

    assert response.status_code == 204
    assert response.content == b""
    assert_error(
        await client.get(f"/v1/customers/{li['id']}", headers=supervisor),
        404,
        "customer_not_found",
    )
    assert await count(client, supervisor) == 0
    # The contact points went with the customer: another customer may take them now.
    again = await create(client, supervisor, **{**LI_WEI, "name": "Li Wei again"})
    assert contacts(again) == contacts(li)
    assert await event_kinds(client, admin, li["id"]) == ["customer.created", "customer.deleted"]
    twice = await client.delete(f"/v1/customers/{li['id']}", headers=supervisor)
    assert_error(twice, 404, "customer_not_found")


# --- who may do what -----------------------------------------------------------------------------


async def test_agents_read_and_create_customers_but_do_not_delete_them(
    client: httpx.AsyncClient, agent: Headers, admin: Headers
) -> None:
    created = await create(client, agent, name="Walk-in", phones=["13800138000"])
    assert (await client.get(f"/v1/customers/{created['id']}", headers=agent)).status_code == 200
    assert (await search(client, agent, q="walk"))["total"] == 1
    lookup = await client.get(
        "/v1/customers/lookup", params={"kind": "phone", "value": "13800138000"}, headers=agent
    )
    assert lookup.status_code == 200

    response = await client.delete(f"/v1/customers/{created['id']}", headers=agent)

    assert_error(response, 403, "forbidden")
    assert (await client.get(f"/v1/customers/{created['id']}", headers=agent)).status_code == 200
    assert await event_kinds(client, admin, created["id"]) == ["customer.created"]


async def test_an_admin_may_delete_a_customer(client: httpx.AsyncClient, admin: Headers) -> None:
    created = await create(client, admin, name="Gone")
    assert (await client.delete(f"/v1/customers/{created['id']}", headers=admin)).status_code == 204


async def test_every_endpoint_needs_a_login(client: httpx.AsyncClient) -> None:
    someone = "/v1/customers/00000000-0000-0000-0000-000000000000"
    for method, path in [
        ("GET", "/v1/customers"),
        ("GET", "/v1/customers/lookup?kind=phone&value=13800138000"),
        ("POST", "/v1/customers"),
        ("POST", "/v1/customers/tiers/recompute"),
        ("GET", someone),
        ("PATCH", someone),
        ("DELETE", someone),
        ("POST", f"{someone}/contact-points"),
        ("DELETE", f"{someone}/contact-points/00000000-0000-0000-0000-000000000001"),
    ]:
        response = await client.request(method, path, json={"name": "x"})
        assert_error(response, 401, "not_authenticated")
        assert response.headers["www-authenticate"] == "Bearer", (method, path)


async def test_a_made_up_token_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/customers", headers={"Authorization": "Bearer cct_not-a-real-token"}
    )
    assert_error(response, 401, "not_authenticated")


async def test_agents_change_profiles_but_not_tier_or_value(
    client: httpx.AsyncClient, admin: Headers, agent: Headers
) -> None:
    customer = await create(client, admin, name="Ada", tier="gold", value="100")
    url = f"/v1/customers/{customer['id']}"

    for change in ({"tier": "platinum"}, {"tier_source": "computed"}, {"value": "9"}):
        body = assert_error(await client.patch(url, json=change, headers=agent), 403, "forbidden")
        assert next(iter(change)) in body["detail"]
    allowed = await client.patch(url, json={"notes": "called twice"}, headers=agent)
    assert allowed.status_code == 200, allowed.text
    fetched = (await client.get(url, headers=agent)).json()
    assert (fetched["tier"], fetched["value"], fetched["notes"]) == (
        "gold",
        "100.00",
        "called twice",
    )


async def test_a_tier_and_tier_source_computed_together_are_refused(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    customer = await create(client, admin, name="Ada", tier="gold")
    response = await client.patch(
        f"/v1/customers/{customer['id']}",
        json={"tier": "iron", "tier_source": "computed"},
        headers=admin,
    )
    assert field_names(assert_error(response, 422, "validation_error")) == ["tier_source"]


async def test_an_empty_or_unchanged_patch_writes_no_event(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    customer = await create(client, admin, name="Ada", notes="x")
    url = f"/v1/customers/{customer['id']}"
    for change in ({}, {"name": "Ada", "notes": "x"}):
        assert (await client.patch(url, json=change, headers=admin)).status_code == 200
    assert await event_kinds(client, admin, customer["id"]) == ["customer.created"]


async def test_a_computed_tier_follows_a_new_value(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    for index in range(10):
        await create(client, admin, name=f"base {index}", tier="iron", value=str(100 * index))
    climber = await create(client, admin, name="Climber", value="0")
    assert (climber["tier"], climber["tier_source"]) == ("lead", "computed")

    response = await client.patch(
        f"/v1/customers/{climber['id']}", json={"value": "100000"}, headers=admin
    )

    assert response.json()["tier"] == "platinum"
    changed = [
        e for e in await events_of(client, admin, climber["id"]) if e["kind"] != "customer.created"
    ]
    assert [e["payload"]["tier"] for e in changed] == ["platinum"]
