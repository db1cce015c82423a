"""Every bad input found by trying the service (issue 13) answers a 4xx that names the problem.

One test per case: a NUL character in a body or a query parameter (before login too), an
offset or an event id past what a bigint holds, deleting a customer or a queue that still has
interactions, a language longer than its column.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.core.inputs import BIGINT_MAX
from tests.support import Headers, field_problems

NUL_PROBLEM = "must not contain a NUL character (\\u0000)"


async def _call(client: httpx.AsyncClient, headers: Headers, **body: Any) -> dict[str, Any]:
    """A queue named billing (made if missing) and a call in it: a customer with history."""
    await client.post("/v1/queues", json={"name": "billing"}, headers=headers)
    payload = {"channel": "voice", "queue": "billing", **body}
    payload.setdefault("contact", {"kind": "phone", "value": "+86 138 0013 8000"})
    response = await client.post("/v1/interactions", json=payload, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_a_nul_in_the_login_body_is_a_422_before_login(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/auth/login", json={"username": "a\u0000b", "password": "x"})
    assert field_problems(response) == {"username": NUL_PROBLEM}


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/v1/customers", {"name": "Li\u0000 Wei"}, "name"),
        ("POST", "/v1/customers", {"name": "Li", "phones": ["138\u0000"]}, "phones[0]"),
        ("POST", "/v1/skills", {"name": "billing", "description": "\u0000"}, "description"),
        ("POST", "/v1/users", {"username": "sam", "display_name": "\u0000", "role": "admin"}, None),
        ("POST", "/v1/queues", {"name": "q", "business_hours": {"timezone": "UTC\u0000"}}, None),
    ],
)
async def test_a_nul_in_a_body_is_a_422_naming_the_field(
    client: httpx.AsyncClient,
    admin: Headers,
    method: str,
    path: str,
    body: dict[str, Any],
    field: str | None,
) -> None:
    response = await client.request(method, path, json=body, headers=admin)
    problems = field_problems(response)
    assert NUL_PROBLEM in problems.values(), problems
    if field is not None:
        assert problems == {field: NUL_PROBLEM}


async def test_a_nul_in_the_intakes_body_is_a_422_naming_the_field(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    await client.post("/v1/queues", json={"name": "billing"}, headers=admin)
    contact = {"kind": "phone", "value": "13800138000"}
    body = {"channel": "voice", "queue": "billing", "contact": contact, "external_ref": "c\u0000"}
    response = await client.post("/v1/interactions", json=body, headers=admin)
    assert field_problems(response) == {"external_ref": NUL_PROBLEM}


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/v1/customers?q=a%00b", "query.q"),
        ("/v1/customers/lookup?kind=phone&value=138%00", "query.value"),
        ("/v1/agents?skill=bill%00ing", "query.skill"),
        ("/v1/events?kind=customer.%00created", "query.kind"),
    ],
)
async def test_a_nul_in_a_query_parameter_is_a_422_naming_it(
    client: httpx.AsyncClient, admin: Headers, path: str, parameter: str
) -> None:
    response = await client.get(path, headers=admin)
    assert field_problems(response) == {parameter: NUL_PROBLEM}


LISTS = [
    ("/v1/agents", "offset"),
    ("/v1/users", "offset"),
    ("/v1/customers", "offset"),
    ("/v1/interactions", "offset"),
    ("/v1/events", "after"),
]


@pytest.mark.parametrize(("path", "parameter"), LISTS)
async def test_a_position_past_a_bigint_is_a_422_naming_it(
    client: httpx.AsyncClient, admin: Headers, path: str, parameter: str
) -> None:
    response = await client.get(f"{path}?{parameter}={BIGINT_MAX + 1}", headers=admin)
    assert field_problems(response) == {
        f"query.{parameter}": f"Input should be less than or equal to {BIGINT_MAX}"
    }


@pytest.mark.parametrize(("path", "parameter"), LISTS)
async def test_the_last_position_a_bigint_holds_is_an_empty_page(
    client: httpx.AsyncClient, admin: Headers, path: str, parameter: str
) -> None:
    response = await client.get(f"{path}?{parameter}={BIGINT_MAX}", headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["items"] if isinstance(body, dict) else body) == []


async def test_deleting_a_customer_with_interactions_is_a_409_saying_so(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    customer = (await _call(client, admin))["customer_id"]

    response = await client.delete(f"/v1/customers/{customer}", headers=admin)

    assert response.status_code == 409, response.text
    assert response.json() == {
        "error": "conflict",
        "detail": "this customer still has interactions, which refer to it: it cannot be "
        "deleted while they exist",
    }
    assert (await client.get(f"/v1/customers/{customer}", headers=admin)).status_code == 200


async def test_deleting_a_queue_with_interactions_is_a_409_saying_so(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    queue = (await _call(client, admin))["queue_id"]

    response = await client.delete(f"/v1/queues/{queue}", headers=admin)

    assert response.status_code == 409, response.text
    assert response.json()["error"] == "conflict"
    assert response.json()["detail"].startswith("this queue still has interactions")
    assert (await client.get(f"/v1/queues/{queue}", headers=admin)).status_code == 200


# A well-formed language tag of 35 characters, the column's length, and one of 36.
LONGEST_LANGUAGE = "zh-abcdefgh-abcdefgh-abcdefgh-abcde"
TOO_LONG_LANGUAGE = LONGEST_LANGUAGE + "f"


async def test_a_language_longer_than_its_column_is_a_422_on_create_and_update(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    assert len(LONGEST_LANGUAGE) == 35
    problem = {"language": "String should have at most 35 characters"}
    refused = await client.post(
        "/v1/customers", json={"name": "Li", "language": TOO_LONG_LANGUAGE}, headers=admin
    )
    assert field_problems(refused) == problem

    created = await client.post(
        "/v1/customers", json={"name": "Li", "language": LONGEST_LANGUAGE}, headers=admin
    )
    assert created.status_code == 201, created.text
    assert created.json()["language"] == LONGEST_LANGUAGE
    path = f"/v1/customers/{created.json()['id']}"
    refused = await client.patch(path, json={"language": TOO_LONG_LANGUAGE}, headers=admin)
    assert field_problems(refused) == problem
