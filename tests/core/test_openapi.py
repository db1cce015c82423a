"""/docs and /openapi.json describe every endpoint."""

from __future__ import annotations

import httpx

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
    for name in ("CustomerCreate", "AgentCreate", "QueueCreate", "LoginIn", "SkillCreate"):
        assert schemas[name].get("examples"), f"{name} has no example"


async def test_docs_page_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()
