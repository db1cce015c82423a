"""The agents API: creating agents with their users, who sees whom, skills, capacity and state."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest

from app.auth.models import Role
from tests.conftest import UserFactory
from tests.support import create_skills, field_problems, login

Headers = dict[str, str]


async def create_agent(
    client: httpx.AsyncClient, admin: Headers, username: str, **fields: Any
) -> dict[str, Any]:
    body = {"username": username, "display_name": username.title(), **fields}
    response = await client.post("/v1/agents", json=body, headers=admin)
    assert response.status_code == 201, response.text
    agent: dict[str, Any] = response.json()
    return agent


async def my_agent(client: httpx.AsyncClient, headers: Headers) -> dict[str, Any]:
    response = await client.get("/v1/agents/me", headers=headers)
    assert response.status_code == 200, response.text
    agent: dict[str, Any] = response.json()
    return agent


async def events_of(
    client: httpx.AsyncClient, admin: Headers, subject_id: str, kind: str | None = None
) -> list[Any]:
    params = {"subject_id": subject_id} | ({"kind": kind} if kind else {})
    response = await client.get("/v1/events", params=params, headers=admin)
    assert response.status_code == 200, response.text
    events: list[Any] = response.json()["items"]
    return events


async def user_count(client: httpx.AsyncClient, admin: Headers) -> int:
    response = await client.get("/v1/users", headers=admin)
    assert response.status_code == 200, response.text
    total: int = response.json()["total"]
    return total


async def set_state(
    client: httpx.AsyncClient,
    headers: Headers,
    agent_id: str,
    state: str,
    reason: str | None = None,
) -> httpx.Response:
    return await client.post(
        f"/v1/agents/{agent_id}/state", json={"state": state, "reason": reason}, headers=headers
    )


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


# --- create -------------------------------------------------------------------------------------


async def test_admin_creates_an_agent_whose_generated_password_works(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    await create_skills(client, admin, "billing", "mandarin")
    body = {
        "username": "mei",
        "display_name": "Mei Chen",
        "capacity": {"voice": 0, "chat": 5, "email": 4},
        "skills": [{"skill": "mandarin", "level": 5}, {"skill": "Billing", "level": 4}],
    }

    response = await client.post("/v1/agents", json=body, headers=admin)

    assert response.status_code == 201, response.text
    agent = response.json()
    assert agent["username"] == "mei"
    assert agent["display_name"] == "Mei Chen"
    assert agent["is_active"] is True
    assert agent["capacity"] == {"voice": 0, "chat": 5, "email": 4}
    assert agent["skills"] == [{"skill": "billing", "level": 4}, {"skill": "mandarin", "level": 5}]
    assert agent["state"] == "offline"
    assert agent["state_reason"] is None
    password = agent["initial_password"]
    assert isinstance(password, str)
    assert len(password) >= 8

    headers = await login(client, "mei", password)
    me = await my_agent(client, headers)
    assert me == {k: v for k, v in agent.items() if k != "initial_password"}
    user = (await client.get("/v1/auth/me", headers=headers)).json()
    assert user["id"] == agent["user_id"]
    assert user["role"] == "agent"


async def test_the_generated_password_is_shown_only_at_creation(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    agent = await create_agent(client, admin, "mei")
    assert agent["initial_password"]
    fetched = (await client.get(f"/v1/agents/{agent['id']}", headers=admin)).json()
    assert "initial_password" not in fetched


async def test_a_given_password_is_not_echoed_and_works(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    agent = await create_agent(client, admin, "mei", password="long enough secret")
    assert agent["initial_password"] is None
    await login(client, "mei", "long enough secret")


async def test_capacity_defaults_to_one_call_three_chats_two_emails(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    agent = await create_agent(client, admin, "mei")
    assert agent["capacity"] == {"voice": 1, "chat": 3, "email": 2}
    assert agent["skills"] == []


async def test_creating_an_agent_writes_events_for_the_user_and_the_agent(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    await create_skills(client, admin, "billing")
    agent = await create_agent(client, admin, "mei", skills=[{"skill": "billing", "level": 3}])
    admin_id = (await client.get("/v1/auth/me", headers=admin)).json()["id"]

    events = await events_of(client, admin, agent["id"])
    assert [e["kind"] for e in events] == ["agent.created"]
    assert events[0]["actor"] == f"user:{admin_id}"
    assert events[0]["payload"] == {
        "username": "mei",
        "capacity": {"voice": 1, "chat": 3, "email": 2},
        "skills": {"billing": 3},
        "voice_endpoint": None,
    }
    user_events = await events_of(client, admin, agent["user_id"], kind="user.created")
    assert user_events[0]["payload"] == {"username": "mei", "role": "agent"}


@pytest.mark.parametrize(
    ("skills", "field"),
    [
        ([{"skill": "cantonese", "level": 3}], "skills[0].skill"),
        ([{"skill": "billing", "level": 3}, {"skill": "cantonese", "level": 3}], "skills[1].skill"),
    ],
)
async def test_an_unknown_skill_is_refused_and_nothing_is_written(
    client: httpx.AsyncClient, admin: Headers, skills: list[dict[str, Any]], field: str
) -> None:
    await create_skills(client, admin, "billing")
    users_before = await user_count(client, admin)

    response = await client.post(
        "/v1/agents",
        json={"username": "mei", "display_name": "Mei", "skills": skills},
        headers=admin,
    )

    problems = field_problems(response)
    assert list(problems) == [field]
    assert "cantonese" in problems[field]
    assert await user_count(client, admin) == users_before
    agents = (await client.get("/v1/agents", headers=admin)).json()
    assert agents["total"] == 0
    assert agents["items"] == []
    refused = await client.post("/v1/auth/login", json={"username": "mei", "password": "x"})
    assert refused.status_code == 401
    agent_events = await client.get("/v1/events", params={"kind": "agent.created"}, headers=admin)
    assert agent_events.json()["items"] == []
    user_events = await client.get("/v1/events", params={"kind": "user.created"}, headers=admin)
    assert "mei" not in [e["payload"]["username"] for e in user_events.json()["items"]]


@pytest.mark.parametrize("second", ["billing", "BILLING"])
async def test_the_same_skill_twice_is_refused(
    client: httpx.AsyncClient, admin: Headers, second: str
) -> None:
    await create_skills(client, admin, "billing")
    skills = [{"skill": "billing", "level": 3}, {"skill": second, "level": 5}]
    users_before = await user_count(client, admin)

    response = await client.post(
        "/v1/agents",
        json={"username": "mei", "display_name": "Mei", "skills": skills},
        headers=admin,
    )

    problems = field_problems(response)
    assert list(problems) == ["skills[1].skill"]
    assert "twice" in problems["skills[1].skill"]
    assert await user_count(client, admin) == users_before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"skills": [{"skill": "billing", "level": 7}]}, "skills[0].level"),
        ({"skills": [{"skill": "billing", "level": 0}]}, "skills[0].level"),
        ({"skills": [{"skill": "billing"}]}, "skills[0].level"),
        ({"skills": [{"skill": "bad name", "level": 2}]}, "skills[0].skill"),
        ({"capacity": {"voice": 2}}, "capacity.voice"),
        ({"capacity": {"voice": -1}}, "capacity.voice"),
        ({"capacity": {"chat": 21}}, "capacity.chat"),
        ({"capacity": {"email": -1}}, "capacity.email"),
        ({"username": "x"}, "username"),
        ({"username": "mei chen"}, "username"),
        ({"display_name": ""}, "display_name"),
        ({"password": "short"}, "password"),
    ],
)
async def test_a_bad_value_is_refused_naming_its_field(
    client: httpx.AsyncClient, admin: Headers, body: dict[str, Any], field: str
) -> None:
    await create_skills(client, admin, "billing")
    users_before = await user_count(client, admin)

    response = await client.post(
        "/v1/agents", json={"username": "mei", "display_name": "Mei", **body}, headers=admin
    )

    assert list(field_problems(response)) == [field]
    assert await user_count(client, admin) == users_before


@pytest.mark.parametrize("username", ["mei", "MEI"])
async def test_a_taken_username_is_refused(
    client: httpx.AsyncClient, admin: Headers, username: str
) -> None:
    await create_agent(client, admin, "mei")
    users_before = await user_count(client, admin)

    response = await client.post(
        "/v1/agents", json={"username": username, "display_name": "Another"}, headers=admin
    )

    assert response.status_code == 409
    assert response.json()["error"] == "username_taken"
    assert await user_count(client, admin) == users_before
    assert (await client.get("/v1/agents", headers=admin)).json()["total"] == 1


async def test_a_username_taken_by_a_supervisor_is_refused(
    client: httpx.AsyncClient, admin: Headers, make_user: UserFactory
) -> None:
    await make_user(Role.supervisor, username="sam")
    response = await client.post(
        "/v1/agents", json={"username": "sam", "display_name": "Sam"}, headers=admin
    )
    assert response.status_code == 409


@pytest.mark.parametrize("role", ["agent", "supervisor"])
async def test_only_admins_create_agents(
    client: httpx.AsyncClient, agent: Headers, supervisor: Headers, role: str
) -> None:
    headers = agent if role == "agent" else supervisor
    response = await client.post(
        "/v1/agents", json={"username": "mei", "display_name": "Mei"}, headers=headers
    )
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"


# --- list ---------------------------------------------------------------------------------------


async def test_staff_list_agents_by_state_and_skill_a_page_at_a_time(
    client: httpx.AsyncClient, admin: Headers, supervisor: Headers
) -> None:
    await create_skills(client, admin, "billing", "vip")
    ann = await create_agent(client, admin, "ann", skills=[{"skill": "billing", "level": 2}])
    bob = await create_agent(
        client,
        admin,
        "bob",
        skills=[{"skill": "billing", "level": 5}, {"skill": "vip", "level": 1}],
    )
    cy = await create_agent(client, admin, "cy")
    dee = await create_agent(client, admin, "dee", skills=[{"skill": "vip", "level": 3}])
    for agent in (bob, cy):
        assert (await set_state(client, admin, agent["id"], "available")).status_code == 200

    async def names(**params: Any) -> tuple[list[str], int]:
        response = await client.get("/v1/agents", params=params, headers=supervisor)
        assert response.status_code == 200, response.text
        page = response.json()
        return [a["username"] for a in page["items"]], page["total"]

    assert await names() == (["ann", "bob", "cy", "dee"], 4)
    assert await names(state="available") == (["bob", "cy"], 2)
    assert await names(state="offline") == (["ann", "dee"], 2)
    assert await names(state="busy") == ([], 0)
    assert await names(skill="billing") == (["ann", "bob"], 2)
    assert await names(skill="VIP") == (["bob", "dee"], 2)
    assert await names(skill="cantonese") == ([], 0)
    assert await names(state="available", skill="vip") == (["bob"], 1)
    assert await names(limit=2) == (["ann", "bob"], 4)
    assert await names(limit=2, offset=2) == (["cy", "dee"], 4)
    assert await names(limit=2, offset=4) == ([], 4)

    page = (await client.get("/v1/agents", params={"limit": 1}, headers=admin)).json()
    assert page["limit"] == 1
    assert page["offset"] == 0
    assert page["items"][0]["id"] == ann["id"]
    assert page["items"][0]["skills"] == [{"skill": "billing", "level": 2}]
    listed = (await client.get("/v1/agents", headers=admin)).json()["items"]
    by_name = {a["username"]: a for a in listed}
    assert by_name["bob"]["skills"] == [
        {"skill": "billing", "level": 5},
        {"skill": "vip", "level": 1},
    ]
    assert by_name["dee"]["id"] == dee["id"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"state": "sleeping"}, "query.state"),
        ({"limit": 0}, "query.limit"),
        ({"limit": 201}, "query.limit"),
        ({"offset": -1}, "query.offset"),
    ],
)
async def test_bad_list_parameters_are_refused(
    client: httpx.AsyncClient, admin: Headers, params: dict[str, Any], field: str
) -> None:
    response = await client.get("/v1/agents", params=params, headers=admin)
    assert list(field_problems(response)) == [field]


async def test_agents_cannot_list_agents(client: httpx.AsyncClient, agent: Headers) -> None:
    response = await client.get("/v1/agents", headers=agent)
    assert response.status_code == 403


# --- read ---------------------------------------------------------------------------------------


async def test_an_agent_reads_its_own_profile(client: httpx.AsyncClient, agent: Headers) -> None:
    me = await my_agent(client, agent)
    user = (await client.get("/v1/auth/me", headers=agent)).json()
    assert me["user_id"] == user["id"]
    assert me["username"] == user["username"]

    by_id = await client.get(f"/v1/agents/{me['id']}", headers=agent)
    assert by_id.status_code == 200
    assert by_id.json() == me


async def test_me_is_404_for_a_user_without_an_agent_profile(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    response = await client.get("/v1/agents/me", headers=admin)
    assert response.status_code == 404
    assert response.json()["error"] == "agent_not_found"


async def test_an_agent_cannot_read_another_agent_but_staff_can(
    client: httpx.AsyncClient, admin: Headers, supervisor: Headers, agent: Headers
) -> None:
    other = await create_agent(client, admin, "other")

    refused = await client.get(f"/v1/agents/{other['id']}", headers=agent)
    assert refused.status_code == 403
    assert refused.json()["error"] == "forbidden"
    assert "other" not in refused.text

    for staff in (supervisor, admin):
        allowed = await client.get(f"/v1/agents/{other['id']}", headers=staff)
        assert allowed.status_code == 200
        assert allowed.json()["username"] == "other"


async def test_an_unknown_agent_is_404_for_staff(
    client: httpx.AsyncClient, supervisor: Headers
) -> None:
    response = await client.get(f"/v1/agents/{uuid.uuid4()}", headers=supervisor)
    assert response.status_code == 404
    assert response.json()["error"] == "agent_not_found"


async def test_agents_need_a_login(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/agents/me")).status_code == 401
    assert (await client.get("/v1/agents")).status_code == 401


# --- update -------------------------------------------------------------------------------------


async def test_admin_changes_an_agents_capacity_and_name(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    agent = await create_agent(client, admin, "mei")

    response = await client.patch(
        f"/v1/agents/{agent['id']}",
        json={"capacity": {"voice": 0, "chat": 8, "email": 5}},
        headers=admin,
    )

    assert response.status_code == 200, response.text
    assert response.json()["capacity"] == {"voice": 0, "chat": 8, "email": 5}
    assert response.json()["display_name"] == "Mei"
    fetched = (await client.get(f"/v1/agents/{agent['id']}", headers=admin)).json()
    assert fetched["capacity"] == {"voice": 0, "chat": 8, "email": 5}

    renamed = await client.patch(
        f"/v1/agents/{agent['id']}", json={"display_name": "Mei Chen"}, headers=admin
    )
    assert renamed.json()["display_name"] == "Mei Chen"
    assert renamed.json()["capacity"] == {"voice": 0, "chat": 8, "email": 5}

    updates = await events_of(client, admin, agent["id"], kind="agent.updated")
    assert [e["payload"] for e in updates] == [
        {"capacity": {"voice": 0, "chat": 8, "email": 5}},
        {"display_name": "Mei Chen"},
    ]


async def test_patching_one_channel_keeps_the_others(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    agent = await create_agent(client, admin, "mei", capacity={"voice": 0, "chat": 6, "email": 4})

    response = await client.patch(
        f"/v1/agents/{agent['id']}", json={"capacity": {"chat": 2}}, headers=admin
    )

    assert response.status_code == 200, response.text
    assert response.json()["capacity"] == {"voice": 0, "chat": 2, "email": 4}
    updates = await events_of(client, admin, agent["id"], kind="agent.updated")
    assert updates[-1]["payload"] == {"capacity": {"voice": 0, "chat": 2, "email": 4}}


async def test_patch_refuses_a_bad_capacity(client: httpx.AsyncClient, admin: Headers) -> None:
    agent = await create_agent(client, admin, "mei")
    response = await client.patch(
        f"/v1/agents/{agent['id']}", json={"capacity": {"voice": 2}}, headers=admin
    )
    assert list(field_problems(response)) == ["capacity.voice"]
    fetched = (await client.get(f"/v1/agents/{agent['id']}", headers=admin)).json()
    assert fetched["capacity"] == {"voice": 1, "chat": 3, "email": 2}


async def test_only_admins_patch_agents(
    client: httpx.AsyncClient, admin: Headers, supervisor: Headers, agent: Headers
) -> None:
    me = await my_agent(client, agent)
    for headers in (supervisor, agent):
        response = await client.patch(
            f"/v1/agents/{me['id']}", json={"capacity": {"chat": 20}}, headers=headers
        )
        assert response.status_code == 403
    assert (await my_agent(client, agent))["capacity"] == me["capacity"]


async def test_patching_an_unknown_agent_is_404(client: httpx.AsyncClient, admin: Headers) -> None:
    response = await client.patch(
        f"/v1/agents/{uuid.uuid4()}", json={"display_name": "x"}, headers=admin
    )
    assert response.status_code == 404


# --- skills -------------------------------------------------------------------------------------


async def test_put_skills_replaces_them(client: httpx.AsyncClient, admin: Headers) -> None:
    await create_skills(client, admin, "billing", "mandarin", "vip")
    agent = await create_agent(
        client,
        admin,
        "mei",
        skills=[{"skill": "billing", "level": 4}, {"skill": "mandarin", "level": 5}],
    )

    response = await client.put(
        f"/v1/agents/{agent['id']}/skills",
        json=[{"skill": "vip", "level": 3}, {"skill": "billing", "level": 2}],
        headers=admin,
    )

    assert response.status_code == 200, response.text
    expected = [{"skill": "billing", "level": 2}, {"skill": "vip", "level": 3}]
    assert response.json()["skills"] == expected
    fetched = (await client.get(f"/v1/agents/{agent['id']}", headers=admin)).json()
    assert fetched["skills"] == expected
    changed = await events_of(client, admin, agent["id"], kind="agent.skills_changed")
    assert changed[0]["payload"] == {"skills": {"vip": 3, "billing": 2}}

    cleared = await client.put(f"/v1/agents/{agent['id']}/skills", json=[], headers=admin)
    assert cleared.json()["skills"] == []


async def test_put_skills_refuses_an_unknown_or_repeated_skill_and_keeps_the_old_ones(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    await create_skills(client, admin, "billing")
    agent = await create_agent(client, admin, "mei", skills=[{"skill": "billing", "level": 4}])
    url = f"/v1/agents/{agent['id']}/skills"

    unknown = await client.put(url, json=[{"skill": "cantonese", "level": 1}], headers=admin)
    assert list(field_problems(unknown)) == ["skills[0].skill"]

    twice = [{"skill": "billing", "level": 1}, {"skill": "billing", "level": 2}]
    repeated = await client.put(url, json=twice, headers=admin)
    assert list(field_problems(repeated)) == ["skills[1].skill"]

    too_high = await client.put(url, json=[{"skill": "billing", "level": 6}], headers=admin)
    assert "less than or equal to 5" in " ".join(field_problems(too_high).values())

    fetched = (await client.get(f"/v1/agents/{agent['id']}", headers=admin)).json()
    assert fetched["skills"] == [{"skill": "billing", "level": 4}]


async def test_a_bad_level_in_put_skills_names_the_item(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    await create_skills(client, admin, "billing")
    agent = await create_agent(client, admin, "mei")

    response = await client.put(
        f"/v1/agents/{agent['id']}/skills",
        json=[{"skill": "billing", "level": 2}, {"skill": "vip", "level": 6}],
        headers=admin,
    )

    assert "[1].level" in field_problems(response)


async def test_only_admins_replace_skills(
    client: httpx.AsyncClient, admin: Headers, supervisor: Headers, agent: Headers
) -> None:
    await create_skills(client, admin, "vip")
    me = await my_agent(client, agent)
    for headers in (supervisor, agent):
        response = await client.put(
            f"/v1/agents/{me['id']}/skills", json=[{"skill": "vip", "level": 5}], headers=headers
        )
        assert response.status_code == 403
    assert (await my_agent(client, agent))["skills"] == []


# --- state --------------------------------------------------------------------------------------


async def test_an_agent_goes_available_away_and_offline(
    client: httpx.AsyncClient, admin: Headers, agent: Headers
) -> None:
    me = await my_agent(client, agent)
    assert me["state"] == "offline"
    since = instant(me["state_since"])
    user_id = me["user_id"]

    steps = [("available", None), ("away", "break"), ("offline", None)]
    for state, reason in steps:
        response = await set_state(client, agent, me["id"], state, reason)
        assert response.status_code == 200, response.text
        changed = response.json()
        assert changed["state"] == state
        assert changed["state_reason"] == reason
        assert instant(changed["state_since"]) > since
        since = instant(changed["state_since"])
        assert await my_agent(client, agent) == changed

    events = await events_of(client, admin, me["id"], kind="agent.state_changed")
    assert [(e["payload"]["from"], e["payload"]["to"]) for e in events] == [
        ("offline", "available"),
        ("available", "away"),
        ("away", "offline"),
    ]
    assert events[1]["payload"]["reason"] == "break"
    assert {e["actor"] for e in events} == {f"user:{user_id}"}


@pytest.mark.parametrize("state", ["busy", "wrap_up", "lunch", ""])
async def test_busy_and_wrap_up_cannot_be_set_by_hand(
    client: httpx.AsyncClient, admin: Headers, agent: Headers, state: str
) -> None:
    me = await my_agent(client, agent)

    response = await set_state(client, agent, me["id"], state)

    assert list(field_problems(response)) == ["state"]
    assert (await my_agent(client, agent))["state"] == "offline"
    assert await events_of(client, admin, me["id"], kind="agent.state_changed") == []


async def test_a_long_reason_is_refused(client: httpx.AsyncClient, agent: Headers) -> None:
    me = await my_agent(client, agent)
    response = await set_state(client, agent, me["id"], "away", "x" * 201)
    assert list(field_problems(response)) == ["reason"]


async def test_an_agent_cannot_change_another_agents_state(
    client: httpx.AsyncClient, admin: Headers, agent: Headers
) -> None:
    other = await create_agent(client, admin, "other")

    response = await set_state(client, agent, other["id"], "available")

    assert response.status_code == 403
    fetched = (await client.get(f"/v1/agents/{other['id']}", headers=admin)).json()
    assert fetched["state"] == "offline"
    assert fetched["state_since"] == other["state_since"]
    assert await events_of(client, admin, other["id"], kind="agent.state_changed") == []


async def test_a_supervisor_changes_an_agents_state(
    client: httpx.AsyncClient, admin: Headers, supervisor: Headers, agent: Headers
) -> None:
    me = await my_agent(client, agent)
    supervisor_id = (await client.get("/v1/auth/me", headers=supervisor)).json()["id"]

    response = await set_state(client, supervisor, me["id"], "away", "coaching")

    assert response.status_code == 200, response.text
    assert (await my_agent(client, agent))["state"] == "away"
    events = await events_of(client, admin, me["id"], kind="agent.state_changed")
    assert len(events) == 1
    assert events[0]["actor"] == f"user:{supervisor_id}"
    assert events[0]["payload"] == {"from": "offline", "to": "away", "reason": "coaching"}


async def test_an_unchanged_state_writes_no_event(
    client: httpx.AsyncClient, admin: Headers, agent: Headers
) -> None:
    me = await my_agent(client, agent)
    first = (await set_state(client, agent, me["id"], "available")).json()

    again = await set_state(client, agent, me["id"], "available")

    assert again.status_code == 200
    assert again.json()["state"] == "available"
    assert again.json()["state_since"] == first["state_since"]
    events = await events_of(client, admin, me["id"], kind="agent.state_changed")
    assert len(events) == 1

    offline_again = await set_state(client, admin, me["id"], "available")
    assert offline_again.json()["state_since"] == first["state_since"]
    assert len(await events_of(client, admin, me["id"], kind="agent.state_changed")) == 1


async def test_a_new_reason_in_the_same_state_is_recorded(
    client: httpx.AsyncClient, admin: Headers, agent: Headers
) -> None:
    me = await my_agent(client, agent)
    await set_state(client, agent, me["id"], "away", "break")

    response = await set_state(client, agent, me["id"], "away", "training")

    assert response.json()["state_reason"] == "training"
    events = await events_of(client, admin, me["id"], kind="agent.state_changed")
    assert [e["payload"]["reason"] for e in events] == ["break", "training"]


async def test_changing_the_state_of_an_unknown_agent_is_404(
    client: httpx.AsyncClient, supervisor: Headers
) -> None:
    response = await set_state(client, supervisor, str(uuid.uuid4()), "available")
    assert response.status_code == 404
    assert response.json()["error"] == "agent_not_found"


@pytest.mark.parametrize(
    "endpoint", ["client:mei_chen", "sip:1001@pbx.example.com:5060", "+8613800138000"]
)
async def test_an_agent_s_voice_endpoint_is_kept_and_shown(
    client: httpx.AsyncClient, admin: Headers, endpoint: str
) -> None:
    """Where the agent's calls ring when a gateway bridges a caller (docs/telephony.md)."""
    agent = await create_agent(client, admin, "mei", voice_endpoint=endpoint)
    assert agent["voice_endpoint"] == endpoint

    fetched = (await client.get(f"/v1/agents/{agent['id']}", headers=admin)).json()
    assert fetched["voice_endpoint"] == endpoint


async def test_a_voice_endpoint_of_no_known_shape_is_refused_naming_the_shapes(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    body = {"username": "mei", "display_name": "Mei", "voice_endpoint": "13800138000"}
    response = await client.post("/v1/agents", json=body, headers=admin)

    problem = field_problems(response)["voice_endpoint"]
    assert "client:<name>" in problem
    assert "E.164" in problem
    agents = (await client.get("/v1/agents", headers=admin)).json()
    assert agents["total"] == 0


async def test_a_voice_endpoint_is_changed_and_cleared_by_patch_and_other_fields_keep_it(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    agent = await create_agent(client, admin, "mei", voice_endpoint="client:mei")
    path = f"/v1/agents/{agent['id']}"

    renamed = await client.patch(path, json={"display_name": "Mei Chen"}, headers=admin)
    assert renamed.json()["voice_endpoint"] == "client:mei"
    moved = await client.patch(path, json={"voice_endpoint": "+8613800138000"}, headers=admin)
    assert moved.json()["voice_endpoint"] == "+8613800138000"
    cleared = await client.patch(path, json={"voice_endpoint": None}, headers=admin)
    assert cleared.json()["voice_endpoint"] is None

    updates = await events_of(client, admin, agent["id"], kind="agent.updated")
    assert [e["payload"].get("voice_endpoint", "-") for e in updates] == [
        "-",
        "+8613800138000",
        None,
    ]
