"""The interactions API: intake from any channel, idempotent deliveries, visibility, abandons."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

Headers = dict[str, str]


@pytest.fixture
async def billing(client: httpx.AsyncClient, admin: Headers) -> dict[str, Any]:
    await client.post("/v1/skills", json={"name": "billing"}, headers=admin)
    await client.post("/v1/skills", json={"name": "vip"}, headers=admin)
    response = await client.post(
        "/v1/queues",
        json={"name": "Billing", "required_skills": [{"skill": "billing", "level": 2}]},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    queue: dict[str, Any] = response.json()
    return queue


async def _post(client: httpx.AsyncClient, headers: Headers, **body: Any) -> httpx.Response:
    payload = {"channel": "chat", "queue": "billing", **body}
    return await client.post("/v1/interactions", json=payload, headers=headers)


async def test_an_unknown_caller_becomes_a_customer_and_waits_in_the_queue(
    client: httpx.AsyncClient, admin: Headers, billing: dict[str, Any]
) -> None:
    response = await _post(
        client,
        admin,
        channel="voice",
        contact={"kind": "phone", "value": "13800138000"},
        skills=[{"skill": "vip", "level": 3}],
        subject="Where is my refund?",
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["state"] == "queued"
    assert created["queue_id"] == billing["id"]
    assert created["needs"] == [{"skill": "billing", "level": 2}, {"skill": "vip", "level": 3}]
    customer = (await client.get(f"/v1/customers/{created['customer_id']}", headers=admin)).json()
    assert customer["name"] == "Unknown phone 13800138000"
    assert customer["contact_points"][0]["value"] == "+8613800138000"

    again = await _post(client, admin, contact={"kind": "phone", "value": "+86 138 0013 8000"})
    assert again.json()["customer_id"] == created["customer_id"], "the same caller, one customer"


async def test_the_same_reference_twice_is_one_interaction_even_when_racing(
    client: httpx.AsyncClient, admin: Headers, billing: dict[str, Any]
) -> None:
    body = {"contact": {"kind": "chat", "value": "visitor-1"}, "external_ref": "chat-42"}
    responses = await asyncio.gather(*(_post(client, admin, **body) for _ in range(4)))
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 201]
    assert len({r.json()["id"] for r in responses}) == 1
    listed = (await client.get("/v1/interactions", headers=admin)).json()
    assert listed["total"] == 1
    # The same reference on another channel is another interaction.
    other = await _post(client, admin, channel="email", **body)
    assert other.status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channel": "fax"}, "channel"),
        ({"queue": "nowhere"}, "queue"),
        ({"contact": None}, "body"),
        ({"priority": 5000}, "priority"),
        ({"skills": [{"skill": "juggling", "level": 2}]}, "skills[0].skill"),
        ({"contact": {"kind": "phone", "value": "123"}}, "contact.value"),
        ({"customer_name": "   "}, "customer_name"),
        ({"customer_name": "x" * 201}, "customer_name"),
    ],
)
async def test_bad_intake_is_refused_naming_the_field_and_writes_nothing(
    client: httpx.AsyncClient,
    admin: Headers,
    billing: dict[str, Any],
    body: dict[str, Any],
    field: str,
) -> None:
    payload = {"contact": {"kind": "chat", "value": "v"}, **body}
    response = await _post(client, admin, **payload)
    assert response.status_code == 422, response.text
    assert field in [f["field"] for f in response.json()["fields"]]
    assert (await client.get("/v1/interactions", headers=admin)).json()["total"] == 0
    assert (await client.get("/v1/customers", headers=admin)).json()["total"] == 0


async def test_a_known_customer_by_id_and_filters(
    client: httpx.AsyncClient, admin: Headers, billing: dict[str, Any]
) -> None:
    customer = (
        await client.post("/v1/customers", json={"name": "Ada", "tier": "gold"}, headers=admin)
    ).json()
    await _post(client, admin, customer_id=customer["id"], channel="email")
    await _post(client, admin, customer_id=customer["id"], channel="chat")
    emails = await client.get("/v1/interactions?channel=email", headers=admin)
    assert [i["channel"] for i in emails.json()["items"]] == ["email"]
    mine = await client.get(f"/v1/interactions?customer_id={customer['id']}", headers=admin)
    assert mine.json()["total"] == 2


async def test_agents_see_only_their_own_and_cannot_report_abandons(
    client: httpx.AsyncClient, admin: Headers, agent: Headers, billing: dict[str, Any]
) -> None:
    created = (await _post(client, admin, contact={"kind": "chat", "value": "v1"})).json()
    assert (await client.get("/v1/interactions", headers=agent)).json()["total"] == 0
    hidden = await client.get(f"/v1/interactions/{created['id']}", headers=agent)
    assert hidden.status_code == 403
    refused = await client.post(f"/v1/interactions/{created['id']}/abandon", headers=agent)
    assert refused.status_code == 403


async def test_an_abandon_ends_it_once_and_a_second_is_an_illegal_transition(
    client: httpx.AsyncClient, admin: Headers, billing: dict[str, Any]
) -> None:
    created = (await _post(client, admin, contact={"kind": "chat", "value": "v1"})).json()
    url = f"/v1/interactions/{created['id']}/abandon"
    first = await client.post(url, headers=admin)
    assert first.status_code == 200
    assert first.json()["state"] == "abandoned"
    assert first.json()["ended_at"] is not None
    second = await client.post(url, headers=admin)
    assert second.status_code == 409
    assert second.json()["error"] == "illegal_transition"
    events = await client.get("/v1/events", params={"subject_id": created["id"]}, headers=admin)
    assert [e["kind"] for e in events.json()] == ["interaction.queued", "interaction.abandoned"]


async def test_a_gateway_key_may_post_interactions(
    client: httpx.AsyncClient, admin: Headers, billing: dict[str, Any]
) -> None:
    key = (await client.post("/v1/gateway-keys", json={"name": "sip-1"}, headers=admin)).json()
    gateway = {"Authorization": f"Bearer {key['key']}"}
    response = await _post(client, gateway, contact={"kind": "chat", "value": "v9"})
    assert response.status_code == 201, response.text
    events = await client.get(
        "/v1/events", params={"subject_id": response.json()["id"]}, headers=admin
    )
    assert events.json()[0]["actor"] == f"gateway:{key['id']}"


@pytest.mark.parametrize("gone", ["unknown token", "unknown key", "logged out", "revoked key"])
async def test_a_valid_delivery_from_a_caller_no_longer_known_is_401_and_writes_nothing(
    client: httpx.AsyncClient,
    admin: Headers,
    supervisor: Headers,
    billing: dict[str, Any],
    gone: str,
) -> None:
    """The caller is checked in intake's look-up: before the queue, the customer or an earlier
    delivery of the reference can answer anything."""
    first = await _post(client, admin, contact={"kind": "chat", "value": "v1"}, external_ref="r1")
    assert first.status_code == 201
    secret = {"unknown token": "cct_not-a-real-token", "unknown key": "cck_not-a-real-key"}.get(
        gone, ""
    )
    if gone == "logged out":
        assert (await client.post("/v1/auth/logout", headers=supervisor)).is_success
        secret = supervisor["Authorization"].removeprefix("Bearer ")
    if gone == "revoked key":
        key = (await client.post("/v1/gateway-keys", json={"name": "k"}, headers=admin)).json()
        assert (await client.delete(f"/v1/gateway-keys/{key['id']}", headers=admin)).is_success
        secret = key["key"]
    caller = {"Authorization": f"Bearer {secret}"}

    for body in ({"external_ref": "r2"}, {"external_ref": "r1"}, {"queue": "nowhere"}):
        response = await _post(client, caller, contact={"kind": "chat", "value": "v2"}, **body)
        assert response.status_code == 401, response.text
    assert (await client.get("/v1/interactions", headers=admin)).json()["total"] == 1


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer   ", "Basic Ym9zczpzZWNyZXQ=", "Bearer cct_not-a-real-token"],
)
async def test_intake_refuses_a_caller_it_does_not_know_before_reading_the_body(
    client: httpx.AsyncClient, billing: dict[str, Any], authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.post("/v1/interactions", content=b"{not json", headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "not_authenticated"
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["x-request-id"]


@pytest.mark.parametrize(("content", "field"), [(b"{not json", "body"), (b"", "body")])
async def test_intake_names_a_body_that_is_not_json(
    client: httpx.AsyncClient, admin: Headers, billing: dict[str, Any], content: bytes, field: str
) -> None:
    headers = {**admin, "Content-Type": "application/json"}
    response = await client.post("/v1/interactions", content=content, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "validation_error"
    assert [f["field"] for f in response.json()["fields"]] == [field]


RAISE_WORK_REFUSAL = (
    "new interactions come in through a channel: a gateway key (or an admin) posts them;"
    " an agent moves work it holds with POST /v1/interactions/{id}/transfer"
)


@pytest.mark.parametrize("who", ["agent", "supervisor"])
@pytest.mark.parametrize(
    "body",
    [{"contact": {"kind": "chat", "value": "v1"}}, {"queue": "nowhere"}, {"priority": "high"}],
)
async def test_agents_and_supervisors_raise_no_interactions_whatever_the_body(
    client: httpx.AsyncClient,
    admin: Headers,
    agent: Headers,
    supervisor: Headers,
    billing: dict[str, Any],
    who: str,
    body: dict[str, Any],
) -> None:
    """Refused in intake's look-up (403), before the queue or the body is judged (422)."""
    caller = {"agent": agent, "supervisor": supervisor}[who]

    response = await _post(client, caller, **body)

    assert response.status_code == 403, response.text
    assert response.json() == {"error": "forbidden", "detail": RAISE_WORK_REFUSAL}
    assert (await client.get("/v1/interactions", headers=admin)).json()["total"] == 0
    assert (await client.get("/v1/customers", headers=admin)).json()["total"] == 0
