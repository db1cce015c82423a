"""Every list answers an envelope (docs/api.md): `{items, total, limit, offset}`, or for the
event log, read with a cursor, `{items, after, limit, next_after, has_more}`. Never a bare array,
and `limit` is honoured."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.core.settings import Settings
from app.main import create_app

Headers = dict[str, str]
PAGE = {"items", "total", "limit", "offset"}
CURSOR = {"items", "after", "limit", "next_after", "has_more"}


def _answers(spec: dict[str, Any], get: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The JSON schemas a GET operation answers with, by status, references resolved."""
    schemas = spec["components"]["schemas"]
    found = []
    for status, answer in get["responses"].items():
        schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
        if "$ref" in schema:
            schema = schemas[schema["$ref"].removeprefix("#/components/schemas/")]
        found.append((status, schema))
    return found


def test_no_get_endpoint_answers_a_bare_array() -> None:
    """Every GET operation of the app's OpenAPI document (FastAPI builds it from every route):
    a list is an envelope with its paging, whatever it lists."""
    app = create_app(Settings(environment="test", load_demo=False), "postgresql://unused/none")
    spec = app.openapi()
    lists = 0
    for path, operations in spec["paths"].items():
        if "get" not in operations:
            continue
        get = operations["get"]
        for status, schema in _answers(spec, get):
            where = f"GET {path} ({status})"
            assert schema.get("type") != "array", f"{where} answers a bare array"
            properties = set(schema.get("properties", {}))
            if "items" not in properties:
                continue
            lists += 1
            assert properties in (PAGE, CURSOR), f"{where} answers {sorted(properties)}"
            paging = {"limit", "offset"} if properties == PAGE else {"limit", "after"}
            query = {p["name"] for p in get.get("parameters", []) if p["in"] == "query"}
            assert paging <= query, f"{where} takes no {sorted(paging - query)}"
    assert lists >= 8  # users, agents, customers, interactions, skills, queues, keys, events


@pytest.mark.parametrize("path", ["/v1/skills", "/v1/queues", "/v1/gateway-keys"])
async def test_a_list_answers_one_page_and_counts_them_all(
    client: httpx.AsyncClient, admin: Headers, path: str
) -> None:
    for name in ("alpha", "bravo", "charlie"):
        created = await client.post(path, json={"name": name}, headers=admin)
        assert created.status_code == 201, created.text

    first = (await client.get(path, params={"limit": 2}, headers=admin)).json()
    rest = (await client.get(path, params={"limit": 2, "offset": 2}, headers=admin)).json()

    assert [item["name"] for item in first["items"]] == ["alpha", "bravo"]
    assert (first["total"], first["limit"], first["offset"]) == (3, 2, 0)
    assert [item["name"] for item in rest["items"]] == ["charlie"]
    assert (rest["total"], rest["limit"], rest["offset"]) == (3, 2, 2)


async def test_the_event_log_is_read_page_by_page_from_a_cursor(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    """A client polling the log passes `next_after` back as `after` until `has_more` is false:
    it sees every event once, in order, as one long read would."""
    for name in ("alpha", "bravo", "charlie", "delta", "echo"):
        await client.post("/v1/skills", json={"name": name}, headers=admin)
    params = {"kind": "skill.created"}
    whole = (await client.get("/v1/events", params=params, headers=admin)).json()
    assert whole["has_more"] is False
    assert len(whole["items"]) == 5

    read: list[dict[str, Any]] = []
    after, pages = 0, 0
    while True:
        page = (
            await client.get(
                "/v1/events", params={**params, "after": after, "limit": 2}, headers=admin
            )
        ).json()
        pages += 1
        assert (page["after"], page["limit"]) == (after, 2)
        read += page["items"]
        assert page["next_after"] == (page["items"][-1]["id"] if page["items"] else after)
        after = page["next_after"]
        if not page["has_more"]:
            break

    assert read == whole["items"]
    assert pages == 3  # 2 + 2 + 1: the last page says there is no more without a fourth read
    empty = await client.get("/v1/events", params={**params, "after": after}, headers=admin)
    assert empty.json() == {
        "items": [],
        "after": after,
        "limit": 100,
        "next_after": after,
        "has_more": False,
    }
