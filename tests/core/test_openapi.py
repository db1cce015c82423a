"""/docs and /openapi.json describe every endpoint."""

from __future__ import annotations

import httpx

from tests.core.request_inputs import references

METHODS = {"get", "post", "put", "patch", "delete"}


async def test_every_operation_has_a_summary_and_lives_under_v1(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path, operations in spec["paths"].items():
        assert path == "/health" or path.startswith("/v1/"), path
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
