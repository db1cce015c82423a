"""/docs and /openapi.json describe every endpoint."""

from __future__ import annotations

import re

import httpx

from tests.core.request_inputs import references

METHODS = {"get", "post", "put", "patch", "delete"}


async def test_every_operation_has_a_summary_and_lives_under_v1(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path, operations in spec["paths"].items():
        # /health and /metrics stand where probes and Prometheus look by convention
        assert path in ("/health", "/metrics") or path.startswith("/v1/"), path
        for method, operation in operations.items():
            if method in METHODS:
                assert operation.get("summary"), f"{method.upper()} {path} has no summary"


async def test_request_bodies_carry_examples(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    names = ("CustomerCreate", "AgentCreate", "QueueCreate", "LoginIn", "SkillCreate")
    for name in (*names, "InteractionCreate"):
        assert schemas[name].get("examples"), f"{name} has no example"


async def test_docs_page_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()


# src="...", href="...", ReDoc's spec-url="..." and Swagger UI's `url: '...'`.
REFERENCED = re.compile(r"""(?:src|href|spec-url)=["']([^"']+)["']|url:\s*["']([^"']+)["']""")


async def test_the_docs_load_everything_from_the_app_itself(client: httpx.AsyncClient) -> None:
    """/docs and /redoc work without internet: every script, style, icon and document they
    name is served here, and nothing they name is on another host."""
    for page in ("/docs", "/redoc"):
        html = (await client.get(page)).text
        assert not re.search(r"https?:|//[a-z0-9]", html, re.IGNORECASE), f"{page} leaves the host"
        urls = {first or second for first, second in REFERENCED.findall(html)}
        assert {"/openapi.json"} < urls, f"{page} names no asset: {urls}"
        for url in urls:
            assert url.startswith("/"), url
            response = await client.get(url)
            assert response.status_code == 200, f"{page} names {url}: {response.status_code}"
            assert response.content, url


async def test_every_refusal_is_documented_with_the_real_error_body(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas  # FastAPI's 422 body, which no answer has
    assert schemas["ErrorBody"]["required"] == ["error", "detail"]
    assert set(schemas["ErrorBody"]["properties"]) == {"error", "detail", "fields"}
    assert set(schemas["FieldProblem"]["properties"]) == {"field", "problem"}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            name, responses = f"{method.upper()} {path}", operation["responses"]
            if operation.get("parameters") or operation.get("requestBody"):
                assert "422" in responses, f"{name} documents no 422"
            if operation.get("security"):
                assert "401" in responses, f"{name} documents no 401"
            for status, response in responses.items():
                if status.startswith("4"):
                    body = response["content"]["application/json"]["schema"]
                    assert body == {"$ref": "#/components/schemas/ErrorBody"}, (name, status)


async def test_the_error_body_documented_is_the_one_answered(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    spec = (await client.get("/openapi.json")).json()
    documented = set(spec["components"]["schemas"]["ErrorBody"]["properties"])
    refused = await client.get("/v1/customers?limit=0", headers=admin)
    assert refused.status_code == 422
    assert set(refused.json()) <= documented
    assert set(refused.json()["fields"][0]) == {"field", "problem"}


async def test_the_intake_documents_its_body_and_answers(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    intake = spec["paths"]["/v1/interactions"]["post"]
    reference = intake["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schemas = spec["components"]["schemas"]
    body = schemas[reference.removeprefix("#/components/schemas/")]
    assert {"channel", "queue", "contact", "external_ref"} <= body["properties"].keys()
    for field in body["properties"].values():  # every model it refers to is there too
        for ref in references(field):
            assert ref.removeprefix("#/components/schemas/") in schemas, ref
    assert {"200", "201", "422"} <= intake["responses"].keys()
    assert intake["security"] == [{"HTTPBearer": []}]
