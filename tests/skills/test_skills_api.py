"""The skills API: what an admin can define, what everyone can read, and what cannot be deleted."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.support import field_problems

Headers = dict[str, str]


async def create_skill(
    client: httpx.AsyncClient, admin: Headers, name: str, description: str = ""
) -> dict[str, Any]:
    response = await client.post(
        "/v1/skills", json={"name": name, "description": description}, headers=admin
    )
    assert response.status_code == 201, response.text
    skill: dict[str, Any] = response.json()
    return skill


async def events_of(client: httpx.AsyncClient, admin: Headers, subject_id: str) -> list[Any]:
    response = await client.get("/v1/events", params={"subject_id": subject_id}, headers=admin)
    assert response.status_code == 200, response.text
    events: list[Any] = response.json()["items"]
    return events


# --- create -----------------------------------------------------------------------------------


async def test_admin_creates_a_skill_and_its_name_is_lower_cased(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    response = await client.post(
        "/v1/skills", json={"name": "Billing", "description": "Invoices, refunds"}, headers=admin
    )
    assert response.status_code == 201, response.text
    skill = response.json()
    assert skill["name"] == "billing"
    assert skill["description"] == "Invoices, refunds"
    uuid.UUID(skill["id"])

    fetched = await client.get(f"/v1/skills/{skill['id']}", headers=admin)
    assert fetched.status_code == 200
    assert fetched.json() == skill


async def test_a_skill_name_is_trimmed_and_the_description_defaults_to_empty(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    response = await client.post("/v1/skills", json={"name": "  VIP "}, headers=admin)
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "vip"
    assert response.json()["description"] == ""


async def test_creating_a_skill_writes_an_event_naming_the_admin(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    skill = await create_skill(client, admin, "mandarin")
    me = (await client.get("/v1/auth/me", headers=admin)).json()

    events = await events_of(client, admin, skill["id"])
    assert [e["kind"] for e in events] == ["skill.created"]
    assert events[0]["subject_type"] == "skill"
    assert events[0]["actor"] == f"user:{me['id']}"
    assert events[0]["payload"] == {"name": "mandarin"}


@pytest.mark.parametrize("duplicate", ["billing", "BILLING", "Billing", " billing "])
async def test_a_duplicate_name_is_refused_whatever_its_case(
    client: httpx.AsyncClient, admin: Headers, duplicate: str
) -> None:
    await create_skill(client, admin, "billing")

    response = await client.post("/v1/skills", json={"name": duplicate}, headers=admin)

    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "skill_name_taken"
    assert "billing" in body["detail"]
    listed = (await client.get("/v1/skills", headers=admin)).json()["items"]
    assert [s["name"] for s in listed] == ["billing"]


@pytest.mark.parametrize(
    "name",
    ["", "   ", "-billing", ".vip", "bill ing", "billing!", "a" * 65, "普通话", "vip/gold"],
)
async def test_a_bad_name_is_refused_naming_the_field(
    client: httpx.AsyncClient, admin: Headers, name: str
) -> None:
    response = await client.post("/v1/skills", json={"name": name}, headers=admin)
    assert list(field_problems(response)) == ["name"]
    assert (await client.get("/v1/skills", headers=admin)).json()["items"] == []


async def test_the_longest_allowed_name_is_64_characters(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    skill = await create_skill(client, admin, "a" * 64)
    assert skill["name"] == "a" * 64


async def test_a_missing_name_or_a_long_description_is_refused(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    missing = await client.post("/v1/skills", json={"description": "x"}, headers=admin)
    assert "name" in field_problems(missing)

    long = await client.post(
        "/v1/skills", json={"name": "billing", "description": "x" * 501}, headers=admin
    )
    assert list(field_problems(long)) == ["description"]


# --- read ---------------------------------------------------------------------------------------


async def test_skills_are_listed_by_name(client: httpx.AsyncClient, admin: Headers) -> None:
    for name in ("vip", "billing", "mandarin"):
        await create_skill(client, admin, name)

    response = await client.get("/v1/skills", headers=admin)

    assert response.status_code == 200
    assert [s["name"] for s in response.json()["items"]] == ["billing", "mandarin", "vip"]


async def test_an_unknown_skill_is_404(client: httpx.AsyncClient, admin: Headers) -> None:
    missing = uuid.uuid4()
    response = await client.get(f"/v1/skills/{missing}", headers=admin)
    assert response.status_code == 404
    assert response.json()["error"] == "skill_not_found"
    assert str(missing) in response.json()["detail"]


async def test_a_skill_id_that_is_not_a_uuid_is_422(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    response = await client.get("/v1/skills/billing", headers=admin)
    assert "path.skill_id" in field_problems(response)


# --- update -------------------------------------------------------------------------------------


async def test_patch_renames_and_describes_a_skill(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    skill = await create_skill(client, admin, "billing", "old")

    response = await client.patch(
        f"/v1/skills/{skill['id']}",
        json={"name": "Invoicing", "description": "Invoices only"},
        headers=admin,
    )

    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": skill["id"],
        "name": "invoicing",
        "description": "Invoices only",
    }
    fetched = (await client.get(f"/v1/skills/{skill['id']}", headers=admin)).json()
    assert fetched == response.json()
    kinds = [e["kind"] for e in await events_of(client, admin, skill["id"])]
    assert kinds == ["skill.created", "skill.updated"]


async def test_patch_changes_only_the_fields_sent(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    skill = await create_skill(client, admin, "billing", "Invoices")

    described = await client.patch(
        f"/v1/skills/{skill['id']}", json={"description": "Refunds too"}, headers=admin
    )
    assert described.json() == {**skill, "description": "Refunds too"}

    renamed = await client.patch(f"/v1/skills/{skill['id']}", json={"name": "money"}, headers=admin)
    assert renamed.json() == {**skill, "name": "money", "description": "Refunds too"}


async def test_patch_refuses_the_name_of_another_skill(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    await create_skill(client, admin, "billing")
    vip = await create_skill(client, admin, "vip")

    response = await client.patch(
        f"/v1/skills/{vip['id']}", json={"name": "BILLING"}, headers=admin
    )

    assert response.status_code == 409
    assert response.json()["error"] == "skill_name_taken"
    assert (await client.get(f"/v1/skills/{vip['id']}", headers=admin)).json()["name"] == "vip"


async def test_patch_may_keep_a_skills_own_name(client: httpx.AsyncClient, admin: Headers) -> None:
    skill = await create_skill(client, admin, "billing")
    response = await client.patch(
        f"/v1/skills/{skill['id']}", json={"name": "Billing"}, headers=admin
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "billing"


async def test_patch_refuses_a_bad_name_and_an_unknown_skill(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    skill = await create_skill(client, admin, "billing")
    bad = await client.patch(f"/v1/skills/{skill['id']}", json={"name": "no way"}, headers=admin)
    assert list(field_problems(bad)) == ["name"]

    missing = await client.patch(f"/v1/skills/{uuid.uuid4()}", json={"name": "x"}, headers=admin)
    assert missing.status_code == 404
    assert missing.json()["error"] == "skill_not_found"


# --- delete -------------------------------------------------------------------------------------


async def test_admin_deletes_an_unused_skill(client: httpx.AsyncClient, admin: Headers) -> None:
    skill = await create_skill(client, admin, "billing")
    keep = await create_skill(client, admin, "vip")

    response = await client.delete(f"/v1/skills/{skill['id']}", headers=admin)

    assert response.status_code == 204
    assert response.content == b""
    gone = await client.get(f"/v1/skills/{skill['id']}", headers=admin)
    assert gone.status_code == 404
    assert (await client.get("/v1/skills", headers=admin)).json()["items"] == [keep]
    kinds = [e["kind"] for e in await events_of(client, admin, skill["id"])]
    assert kinds == ["skill.created", "skill.deleted"]

    again = await client.delete(f"/v1/skills/{skill['id']}", headers=admin)
    assert again.status_code == 404


async def test_a_skill_held_by_an_agent_cannot_be_deleted(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    skill = await create_skill(client, admin, "billing")
    created = await client.post(
        "/v1/agents",
        json={
            "username": "mei",
            "display_name": "Mei",
            "skills": [{"skill": "billing", "level": 4}],
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text

    response = await client.delete(f"/v1/skills/{skill['id']}", headers=admin)

    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    assert "billing" in response.json()["detail"]
    assert (await client.get(f"/v1/skills/{skill['id']}", headers=admin)).status_code == 200
    agent = (await client.get(f"/v1/agents/{created.json()['id']}", headers=admin)).json()
    assert agent["skills"] == [{"skill": "billing", "level": 4}]
    kinds = [e["kind"] for e in await events_of(client, admin, skill["id"])]
    assert kinds == ["skill.created"]


async def test_a_skill_required_by_a_queue_cannot_be_deleted(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    skill = await create_skill(client, admin, "mandarin")
    queue = await client.post(
        "/v1/queues",
        json={"name": "China", "required_skills": [{"skill": "mandarin", "level": 3}]},
        headers=admin,
    )
    assert queue.status_code == 201, queue.text

    response = await client.delete(f"/v1/skills/{skill['id']}", headers=admin)

    assert response.status_code == 409
    assert (await client.get(f"/v1/skills/{skill['id']}", headers=admin)).status_code == 200
    fetched = await client.get(f"/v1/queues/{queue.json()['id']}", headers=admin)
    assert fetched.json()["required_skills"] == [{"skill": "mandarin", "level": 3}]


async def test_a_skill_can_be_deleted_once_its_holders_let_go(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    skill = await create_skill(client, admin, "billing")
    created = await client.post(
        "/v1/agents",
        json={
            "username": "mei",
            "display_name": "Mei",
            "skills": [{"skill": "billing", "level": 2}],
        },
        headers=admin,
    )
    agent_id = created.json()["id"]
    assert (await client.delete(f"/v1/skills/{skill['id']}", headers=admin)).status_code == 409

    cleared = await client.put(f"/v1/agents/{agent_id}/skills", json=[], headers=admin)
    assert cleared.status_code == 200, cleared.text

    assert (await client.delete(f"/v1/skills/{skill['id']}", headers=admin)).status_code == 204


# --- who may do what ----------------------------------------------------------------------------


async def test_agents_and_supervisors_can_read_skills(
    client: httpx.AsyncClient, admin: Headers, agent: Headers, supervisor: Headers
) -> None:
    skill = await create_skill(client, admin, "billing")
    for reader in (agent, supervisor):
        listed = await client.get("/v1/skills", headers=reader)
        assert listed.status_code == 200
        assert listed.json()["items"] == [skill]
        one = await client.get(f"/v1/skills/{skill['id']}", headers=reader)
        assert one.json() == skill


@pytest.mark.parametrize("role", ["agent", "supervisor"])
async def test_only_admins_change_skills(
    client: httpx.AsyncClient,
    admin: Headers,
    agent: Headers,
    supervisor: Headers,
    role: str,
) -> None:
    headers = agent if role == "agent" else supervisor
    skill = await create_skill(client, admin, "billing")

    create = await client.post("/v1/skills", json={"name": "vip"}, headers=headers)
    patch = await client.patch(f"/v1/skills/{skill['id']}", json={"name": "money"}, headers=headers)
    delete = await client.delete(f"/v1/skills/{skill['id']}", headers=headers)

    for response in (create, patch, delete):
        assert response.status_code == 403
        assert response.json()["error"] == "forbidden"
    assert (await client.get("/v1/skills", headers=admin)).json()["items"] == [skill]


async def test_skills_need_a_login(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/skills")
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    created = await client.post("/v1/skills", json={"name": "vip"})
    assert created.status_code == 401
