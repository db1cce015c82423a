"""The interactions API: intake from any channel, idempotent deliveries, visibility, abandons."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.interactions import identify
from app.interactions.schemas import InteractionCreate

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
        ({"ivr": {"path": ["menu"] * 101}}, "ivr.path"),
        ({"ivr": {"path": ["n" * 65]}}, "ivr.path[0]"),
        ({"ivr": {"keys": ["12"]}}, "ivr.keys[0]"),
        ({"ivr": {"keys": ["a"]}}, "ivr.keys[0]"),
        ({"ivr": {"collected": {"account": "12a"}}}, "ivr.collected.account"),
        ({"ivr": {"collected": {"account": ""}}}, "ivr.collected.account"),
        ({"ivr": {"collected": {"v" * 33: "1"}}}, f"ivr.collected.{'v' * 33}.[key]"),
        ({"ivr": {"collected": {f"v{n}": "1" for n in range(21)}}}, "ivr.collected"),
        ({"ivr": {"account_verified": "perhaps"}}, "ivr.account_verified"),
        ({"ivr": {"language": "x" * 36}}, "ivr.language"),
        ({"ivr": {"self_service": ["balance\u0000"]}}, "ivr.self_service[0]"),
        ({"ivr": {"self_service": ["x" * 101]}}, "ivr.self_service[0]"),
        ({"ivr": ["menu"]}, "ivr"),
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
    assert [e["kind"] for e in events.json()["items"]] == [
        "interaction.queued",
        "interaction.abandoned",
    ]


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
    assert events.json()["items"][0]["actor"] == f"gateway:{key['id']}"


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


# --- a channel reference delivered again --------------------------------------------------------

DELIVERED = {
    "channel": "voice",
    "queue": "Billing",
    "contact": {"kind": "phone", "value": "13800138000"},
    "external_ref": "CA123",
    "priority": 3,
    "skills": [{"skill": "vip", "level": 2}],
    "subject": "Where is my refund?",
    "summary": "Ordered on the 3rd, refund promised on the 5th.",
}


async def _deliver(client: httpx.AsyncClient, headers: Headers, **change: Any) -> httpx.Response:
    return await client.post("/v1/interactions", json={**DELIVERED, **change}, headers=headers)


async def test_a_retry_of_the_same_request_answers_what_the_first_became(
    client: httpx.AsyncClient, admin: Headers, billing: dict[str, Any]
) -> None:
    first = await _deliver(client, admin)
    assert first.status_code == 201, first.text

    # The same request as a gateway retries it: its contact written another way, its queue and
    # skills named in another case, still the same.
    again = await _deliver(
        client,
        admin,
        contact={"kind": "phone", "value": "+86 138 0013 8000"},
        queue="BILLING",
        skills=[{"skill": "VIP", "level": 2}],
    )

    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert again.json()["offered_to"] is None  # nobody is free: queued
    assert (await client.get("/v1/interactions", headers=admin)).json()["total"] == 1


@pytest.mark.parametrize(
    ("change", "field", "said"),
    [
        ({"queue": "Sales"}, "queue", "queue Billing, not Sales"),
        ({"priority": 5}, "priority", "priority 3, not 5"),
        (
            {"contact": {"kind": "phone", "value": "13900139000"}},
            "contact",
            "not phone 13900139000 (no customer yet)",
        ),
        (
            {"skills": [{"skill": "vip", "level": 4}]},
            "skills",
            "skills billing:2 vip:2, not billing:2 vip:4",
        ),
        ({"skills": []}, "skills", "skills billing:2 vip:2, not billing:2"),
        ({"subject": "Invoice"}, "subject", "subject 'Where is my refund?', not 'Invoice'"),
        ({"summary": "Another story"}, "summary", "summary one summary, not another"),
    ],
)
async def test_a_reference_delivered_again_asking_for_something_else_is_409_naming_it(
    client: httpx.AsyncClient,
    admin: Headers,
    billing: dict[str, Any],
    change: dict[str, Any],
    field: str,
    said: str,
) -> None:
    sales = await client.post("/v1/queues", json={"name": "Sales"}, headers=admin)
    assert sales.status_code == 201, sales.text
    first = await _deliver(client, admin)
    assert first.status_code == 201, first.text

    response = await _deliver(client, admin, **change)

    assert response.status_code == 409, response.text
    body = response.json()
    assert body["error"] == "external_ref_conflict"
    assert body["detail"].startswith("external_ref CA123 was delivered before with ")
    assert said in body["detail"]
    assert [f["field"] for f in body["fields"]] == [field]
    listed = (await client.get("/v1/interactions", headers=admin)).json()
    assert [i["id"] for i in listed["items"]] == [first.json()["id"]]  # nothing written
    assert (await client.get("/v1/customers", headers=admin)).json()["total"] == 1


async def test_a_reference_delivered_again_for_another_customer_names_both(
    client: httpx.AsyncClient, admin: Headers, billing: dict[str, Any]
) -> None:
    ada, bob = [
        (await client.post("/v1/customers", json={"name": name}, headers=admin)).json()["id"]
        for name in ("Ada", "Bob")
    ]
    first = await _deliver(client, admin, contact=None, customer_id=ada)
    assert first.status_code == 201, first.text

    response = await _deliver(client, admin, contact=None, customer_id=bob, priority=0)

    assert response.status_code == 409, response.text
    body = response.json()
    assert body["detail"] == (
        f"external_ref CA123 was delivered before with customer_id {ada}, not {bob}; "
        "priority 3, not 0"
    )
    assert [f["field"] for f in body["fields"]] == ["customer_id", "priority"]


async def test_a_delivery_that_loses_the_race_to_a_different_one_is_409(
    client: httpx.AsyncClient,
    admin: Headers,
    billing: dict[str, Any],
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The other delivery of the reference commits between this one's look-up (which found no
    earlier delivery) and its insert (which writes nothing): what it wrote is compared too."""
    real_look_up = identify.look_up
    other = InteractionCreate.model_validate({**DELIVERED, "priority": 7})

    async def look_up_then_lose_the_race(*args: Any) -> identify.Found:
        found = await real_look_up(*args)
        monkeypatch.setattr(identify, "look_up", real_look_up)  # the other delivery's own
        assert (await app.state.intake.receive(other, actor="gateway:other")).created
        return found

    monkeypatch.setattr(identify, "look_up", look_up_then_lose_the_race)

    response = await _deliver(client, admin)

    assert response.status_code == 409, response.text
    assert response.json()["detail"] == (
        "external_ref CA123 was delivered before with priority 7, not 3"
    )
    assert (await client.get("/v1/interactions", headers=admin)).json()["total"] == 1


async def test_a_gateway_looks_its_calls_up_by_its_own_reference(
    client: httpx.AsyncClient, admin: Headers, billing: dict[str, Any]
) -> None:
    call = (await _deliver(client, admin)).json()
    chat = (await _deliver(client, admin, channel="chat")).json()  # another channel's CA123
    await _deliver(client, admin, external_ref="CA124")

    def ids(response: httpx.Response) -> list[str]:
        assert response.status_code == 200, response.text
        return sorted(i["id"] for i in response.json()["items"])

    by_reference = await client.get("/v1/interactions?external_ref=CA123", headers=admin)
    assert ids(by_reference) == sorted([call["id"], chat["id"]])
    on_voice = await client.get("/v1/interactions?external_ref=CA123&channel=voice", headers=admin)
    assert ids(on_voice) == [call["id"]]
    unknown = await client.get("/v1/interactions?external_ref=CA999", headers=admin)
    assert ids(unknown) == []


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


LEARNED = {
    "path": ["welcome", "main-menu", "account", "enqueue-billing"],
    "keys": ["2"],
    "collected": {"account": "0012345678"},
    "account_verified": True,
    "language": "zh-CN",
    "self_service": ["balance heard"],
}


async def test_what_the_ivr_learned_is_kept_with_the_interaction_as_given(
    app: FastAPI, client: httpx.AsyncClient, admin: Headers, billing: dict[str, Any]
) -> None:
    contact = {"kind": "phone", "value": "13800138000"}
    response = await _post(client, admin, channel="voice", contact=contact, ivr=LEARNED)
    assert response.status_code == 201, response.text
    created = response.json()
    plain = await _post(client, admin, contact=contact)

    fetched = await client.get(f"/v1/interactions/{created['id']}", headers=admin)
    assert (created["ivr"], fetched.json()["ivr"]) == (LEARNED, LEARNED)  # the zeros kept
    assert fetched.json()["not_before"] is None
    assert plain.json()["ivr"] is None
    async with app.state.pg.acquire() as connection:
        queued = await connection.fetchval(
            "SELECT payload FROM events WHERE kind = 'interaction.queued' AND subject_id = $1",
            created["id"],
        )
    assert "ivr" not in queued  # the row keeps it: no event carries the document
