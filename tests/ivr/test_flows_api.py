"""Flows over the API: versions kept as saved, one published at a time, roll backs, the default
flow, dialled numbers, and the flow a call runs on (which a call in progress keeps)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.core.db import unit_of_work
from app.ivr import service
from tests.ivr.calls import DEMO_FLOW

Headers = dict[str, str]


def hangup_flow(text: str) -> dict[str, Any]:
    return {"start": "bye", "nodes": {"bye": {"type": "hangup", "prompts": [{"text": text}]}}}


async def create(
    client: httpx.AsyncClient, admin: Headers, name: str, **extra: Any
) -> dict[str, Any]:
    body = {"name": name, "document": hangup_flow(f"{name} 1"), **extra}
    response = await client.post("/v1/ivr/flows", json=body, headers=admin)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def save(
    client: httpx.AsyncClient, admin: Headers, flow_id: str, text: str, **extra: Any
) -> dict[str, Any]:
    body = {"document": hangup_flow(text), **extra}
    response = await client.post(f"/v1/ivr/flows/{flow_id}/versions", json=body, headers=admin)
    assert response.status_code == 201, response.text
    saved: dict[str, Any] = response.json()
    return saved


async def publish(
    client: httpx.AsyncClient, admin: Headers, flow_id: str, version: int
) -> httpx.Response:
    return await client.post(f"/v1/ivr/flows/{flow_id}/versions/{version}/publish", headers=admin)


async def states(client: httpx.AsyncClient, headers: Headers, flow_id: str) -> dict[int, str]:
    flow = (await client.get(f"/v1/ivr/flows/{flow_id}", headers=headers)).json()
    return {v["version"]: v["state"] for v in flow["versions"]}


async def test_a_flow_is_created_as_its_first_draft(
    client: httpx.AsyncClient, admin: Headers, supervisor: Headers
) -> None:
    flow = await create(client, admin, "Main line", description="What callers hear first")
    assert flow["name"] == "Main line"
    assert flow["published_version"] is None
    assert flow["is_default"] is False
    [version] = flow["versions"]
    assert (version["version"], version["state"]) == (1, "draft")
    assert version["created_by"].startswith("user:")
    listed = (await client.get("/v1/ivr/flows", headers=supervisor)).json()
    assert [f["name"] for f in listed["items"]] == ["Main line"]
    assert listed["total"] == 1


async def test_a_flow_may_be_published_and_made_the_default_as_it_is_created(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    flow = await create(client, admin, "Main", publish=True, is_default=True)
    assert flow["published_version"] == 1
    assert flow["is_default"] is True


async def test_a_bad_flow_is_refused_on_save_naming_its_nodes(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    document = {
        "start": "menu",
        "nodes": {
            "menu": {
                "type": "menu",
                "prompts": [{"text": "Press 1."}],
                "options": {"1": "billing", "2": "nowhere"},
                "on_invalid": "menu",
            },
            "billing": {"type": "enqueue", "queue": "billing"},
            "lost": {"type": "hangup"},
        },
    }
    response = await client.post(
        "/v1/ivr/flows", json={"name": "Broken", "document": document}, headers=admin
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_flow"
    assert [f["field"] for f in body["fields"]] == [
        "document.nodes.menu.options.2",
        "document.nodes.lost",
    ]
    assert "names no node 'nowhere'" in body["detail"]
    assert (await client.get("/v1/ivr/flows", headers=admin)).json()["total"] == 0


async def test_queues_and_skills_a_flow_names_must_exist(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    await client.post("/v1/skills", json={"name": "billing"}, headers=admin)
    await client.post("/v1/queues", json={"name": "Billing"}, headers=admin)
    document = {
        "start": "hours",
        "nodes": {
            "hours": {"type": "branch_hours", "queue": "billing", "open": "q", "closed": "vm"},
            "q": {
                "type": "enqueue",
                "queue": "billing",
                "skills": [{"skill": "billing", "level": 2}, {"skill": "klingon", "level": 1}],
            },
            "vm": {"type": "voicemail", "queue": "after-hours", "prompts": [{"text": "Hi."}]},
        },
    }
    response = await client.post(
        "/v1/ivr/flows", json={"name": "Names", "document": document}, headers=admin
    )
    assert response.status_code == 422, response.text
    assert response.json()["fields"] == [
        {"field": "document.nodes.q.skills[1].skill", "problem": "no skill 'klingon'"},
        {"field": "document.nodes.vm.queue", "problem": "no queue is named 'after-hours'"},
    ]


async def test_flow_names_are_unique_whatever_their_case(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    await create(client, admin, "Main")
    response = await client.post(
        "/v1/ivr/flows", json={"name": "MAIN", "document": hangup_flow("x")}, headers=admin
    )
    assert response.status_code == 409
    assert response.json()["error"] == "ivr_flow_name_taken"


async def test_versions_are_numbered_and_kept_as_saved(
    client: httpx.AsyncClient, admin: Headers, supervisor: Headers
) -> None:
    flow = await create(client, admin, "Main")
    second = await save(client, admin, flow["id"], "second")
    third = await save(client, admin, flow["id"], "third")
    assert (second["version"], third["version"]) == (2, 3)
    assert second["state"] == "draft"
    first = await client.get(f"/v1/ivr/flows/{flow['id']}/versions/1", headers=supervisor)
    assert first.status_code == 200
    assert first.json()["document"]["nodes"]["bye"]["prompts"] == [
        {"text": "Main 1", "language": None, "voice": None, "always": False}
    ]
    assert list(await states(client, admin, flow["id"])) == [3, 2, 1]  # the newest first


async def test_publishing_retires_the_version_before_and_a_roll_back_publishes_it_again(
    client: httpx.AsyncClient, admin: Headers, app: FastAPI
) -> None:
    flow = await create(client, admin, "Main", publish=True)
    await save(client, admin, flow["id"], "v2", publish=True)
    assert await states(client, admin, flow["id"]) == {2: "published", 1: "retired"}
    rolled = await publish(client, admin, flow["id"], 1)
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["state"] == "published"
    assert await states(client, admin, flow["id"]) == {2: "retired", 1: "published"}
    again = await publish(client, admin, flow["id"], 1)  # publishing it again changes nothing
    assert again.json()["published_at"] == rolled.json()["published_at"]
    await save(client, admin, flow["id"], "v3")
    assert await states(client, admin, flow["id"]) == {3: "draft", 2: "retired", 1: "published"}
    events = (await client.get("/v1/events?limit=1000", headers=admin)).json()["items"]
    published = [e["payload"] for e in events if e["kind"] == "ivr_flow.published"]
    assert published == [
        {"version": 1, "retired": None},
        {"version": 2, "retired": 1},
        {"version": 1, "retired": 2},
    ]


async def test_publishing_what_does_not_exist_is_a_404(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    flow = await create(client, admin, "Main")
    missing = await publish(client, admin, flow["id"], 7)
    assert missing.status_code == 404
    assert missing.json()["error"] == "ivr_flow_version_not_found"
    nobody = await publish(client, admin, str(uuid.uuid4()), 1)
    assert nobody.json()["error"] == "ivr_flow_not_found"


async def test_one_flow_is_the_default_at_most(client: httpx.AsyncClient, admin: Headers) -> None:
    first = await create(client, admin, "First", is_default=True)
    second = await create(client, admin, "Second")
    changed = await client.patch(
        f"/v1/ivr/flows/{second['id']}", json={"is_default": True}, headers=admin
    )
    assert changed.status_code == 200, changed.text
    listed = (await client.get("/v1/ivr/flows", headers=admin)).json()["items"]
    assert {f["name"]: f["is_default"] for f in listed} == {"First": False, "Second": True}
    await client.patch(f"/v1/ivr/flows/{second['id']}", json={"is_default": False}, headers=admin)
    renamed = await client.patch(
        f"/v1/ivr/flows/{first['id']}", json={"name": "Renamed"}, headers=admin
    )
    assert renamed.json()["name"] == "Renamed"
    listed = (await client.get("/v1/ivr/flows", headers=admin)).json()["items"]
    assert not any(f["is_default"] for f in listed)


async def test_dialled_numbers_are_kept_in_e164_and_mapped_to_one_flow(
    client: httpx.AsyncClient, admin: Headers, supervisor: Headers
) -> None:
    first = await create(client, admin, "First")
    second = await create(client, admin, "Second")
    mapped = await client.put(
        "/v1/ivr/numbers/010 6552 9988", json={"flow_id": first["id"]}, headers=admin
    )
    assert mapped.status_code == 200, mapped.text
    assert mapped.json()["number"] == "+861065529988"
    assert mapped.json()["flow_name"] == "First"
    moved = await client.put(
        "/v1/ivr/numbers/+861065529988", json={"flow_id": second["id"]}, headers=admin
    )
    assert moved.json()["flow_name"] == "Second"
    listed = (await client.get("/v1/ivr/numbers", headers=supervisor)).json()
    assert [(n["number"], n["flow_name"]) for n in listed["items"]] == [("+861065529988", "Second")]
    gone = await client.delete("/v1/ivr/numbers/+861065529988", headers=admin)
    assert gone.status_code == 204
    again = await client.delete("/v1/ivr/numbers/+861065529988", headers=admin)
    assert again.status_code == 404


async def test_a_number_must_be_a_phone_number_and_its_flow_must_exist(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    flow = await create(client, admin, "Main")
    bad = await client.put("/v1/ivr/numbers/12", json={"flow_id": flow["id"]}, headers=admin)
    assert bad.status_code == 422
    assert bad.json()["fields"][0]["field"] == "number"
    unknown = await client.put(
        "/v1/ivr/numbers/+861065529988", json={"flow_id": str(uuid.uuid4())}, headers=admin
    )
    assert unknown.status_code == 404


# the flow a call runs on


async def test_a_call_gets_its_numbers_flow_else_the_default(
    client: httpx.AsyncClient, admin: Headers, app: FastAPI
) -> None:
    default = await create(client, admin, "Default", publish=True, is_default=True)
    sales = await create(client, admin, "Sales", publish=True)
    drafts = await create(client, admin, "Drafts only")
    for number, flow in (("+861065529988", sales), ("+861065520000", drafts)):
        await client.put(f"/v1/ivr/numbers/{number}", json={"flow_id": flow["id"]}, headers=admin)
    async with unit_of_work(app.state.sessions) as session:
        on_sales = await service.flow_for_call(session, "+861065529988")
        unmapped = await service.flow_for_call(session, "+861065521111")
        not_published = await service.flow_for_call(session, "+861065520000")
        a_sip_address = await service.flow_for_call(session, "sip:desk@pbx.example")
        local = await service.flow_for_call(session, "010 6552 9988", default_region="CN")
    assert (str(on_sales.flow_id), on_sales.version) == (sales["id"], 1)
    assert on_sales.flow.nodes["bye"].prompts[0].text == "Sales 1"  # type: ignore[union-attr]
    assert str(unmapped.flow_id) == default["id"]
    assert str(not_published.flow_id) == default["id"]
    assert str(a_sip_address.flow_id) == default["id"]
    assert local.flow_id == on_sales.flow_id


async def test_a_call_with_no_flow_at_all_is_refused(app: FastAPI) -> None:
    with pytest.raises(service.NoFlowForCall, match="publish a default flow"):
        await service.flow_for_call(app.state.pg, "+861065529988")


async def test_a_call_keeps_the_version_it_started_on(
    client: httpx.AsyncClient, admin: Headers, app: FastAPI
) -> None:
    """The gateway keeps (flow id, version) from the call's start and reads that version at
    every event: a publish in between changes nothing for it, and the next call gets the new
    one. Read on the hot pool, as a gateway would."""
    flow = await create(client, admin, "Main", publish=True, is_default=True)
    started = await service.flow_for_call(app.state.pg, "+861065529988")
    await save(client, admin, flow["id"], "Main 2", publish=True)
    during = await service.flow_version(app.state.pg, started.flow_id, started.version)
    assert during == started.flow
    nxt = await service.flow_for_call(app.state.pg, "+861065529988")
    assert nxt.version == 2
    assert nxt.flow != started.flow
    with pytest.raises(service.FlowVersionNotFound):
        await service.flow_version(app.state.pg, started.flow_id, 9)


async def test_the_demo_flow_is_stored_and_read_back_unchanged(
    client: httpx.AsyncClient, admin: Headers, app: FastAPI
) -> None:
    for queue in ("general", "billing", "vip"):
        await client.post("/v1/queues", json={"name": queue}, headers=admin)
    document = DEMO_FLOW.model_dump(mode="json")
    await create(client, admin, "Demo", document=document, publish=True, is_default=True)
    async with unit_of_work(app.state.sessions) as session:
        stored = await service.flow_for_call(session, "+14155550132")
    assert stored.flow == DEMO_FLOW


async def test_a_stored_flow_can_be_dry_run(client: httpx.AsyncClient, admin: Headers) -> None:
    flow = await create(client, admin, "Main")
    await save(client, admin, flow["id"], "second", publish=True)
    run = await client.post(
        "/v1/ivr/dry-run", json={"flow_id": flow["id"], "version": 1}, headers=admin
    )
    assert run.status_code == 200, run.text
    assert run.json()["heard"] == [{"say": "Main 1", "play": None, "language": "en-US"}]
    published = await client.post("/v1/ivr/dry-run", json={"flow_id": flow["id"]}, headers=admin)
    assert published.json()["heard"][0]["say"] == "second"
    drafts = await create(client, admin, "Drafts")
    none = await client.post("/v1/ivr/dry-run", json={"flow_id": drafts["id"]}, headers=admin)
    assert none.status_code == 404
    both = await client.post(
        "/v1/ivr/dry-run",
        json={"flow_id": flow["id"], "document": hangup_flow("x")},
        headers=admin,
    )
    assert both.status_code == 422
