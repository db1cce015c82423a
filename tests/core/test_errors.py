"""One error format everywhere: {"error", "detail", "fields"?}."""

from __future__ import annotations

import httpx


async def test_unknown_route_is_a_404_in_the_common_format(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "Not Found"}


async def test_wrong_method_is_a_405_in_the_common_format(client: httpx.AsyncClient) -> None:
    response = await client.delete("/health")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


async def test_malformed_json_names_the_body(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_error"
    assert body["fields"][0]["field"].startswith("body")


async def test_missing_fields_are_each_named(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/auth/login", json={})
    assert response.status_code == 422
    named = {f["field"] for f in response.json()["fields"]}
    assert named == {"username", "password"}


async def test_a_query_parameter_out_of_range_is_named(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.get("/v1/customers?limit=0", headers=admin)
    assert response.status_code == 422
    assert response.json()["fields"] == [
        {"field": "query.limit", "problem": "Input should be greater than or equal to 1"}
    ]


async def test_a_bad_path_id_is_named(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.get("/v1/customers/not-a-uuid", headers=admin)
    assert response.status_code == 422
    assert response.json()["fields"][0]["field"] == "path.customer_id"


async def test_requests_carry_a_request_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"


async def test_a_request_without_an_id_gets_one_even_when_refused(
    client: httpx.AsyncClient,
) -> None:
    fine = await client.get("/health")
    refused = await client.get("/v1/customers")  # no token: 401
    assert refused.status_code == 401
    ids = [fine.headers["x-request-id"], refused.headers["x-request-id"]]
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert ids[0] != ids[1]
