"""Users: admins create admins and supervisors, list, read and change them."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.auth.models import User
from tests.support import login

GOOD_PASSWORD = "a long enough password"


async def _create(
    client: httpx.AsyncClient, headers: dict[str, str], **fields: Any
) -> httpx.Response:
    body = {"username": "sam", "display_name": "Sam Lee", "role": "supervisor", **fields}
    return await client.post("/v1/users", json=body, headers=headers)


async def _users_named(app: FastAPI, username: str) -> int:
    async with app.state.sessions() as session:
        count: int = (
            await session.execute(
                select(func.count())
                .select_from(User)
                .where(func.lower(User.username) == username.lower())
            )
        ).scalar_one()
        return count


async def _user_count(app: FastAPI) -> int:
    async with app.state.sessions() as session:
        count: int = (await session.execute(select(func.count()).select_from(User))).scalar_one()
        return count


async def _events(
    client: httpx.AsyncClient, headers: dict[str, str], kind: str, subject_id: str | None = None
) -> list[dict[str, Any]]:
    params = {"kind": kind} | ({"subject_id": subject_id} if subject_id else {})
    response = await client.get("/v1/events", params=params, headers=headers)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["items"]
    return events


async def _me(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get("/v1/auth/me", headers=headers)
    assert response.status_code == 200, response.text
    me: dict[str, Any] = response.json()
    return me


# Creating


async def test_admin_creates_a_supervisor_with_a_generated_password(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await _create(client, admin)

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["username"] == "sam"
    assert body["display_name"] == "Sam Lee"
    assert body["role"] == "supervisor"
    assert body["is_active"] is True
    generated = body["initial_password"]
    assert isinstance(generated, str)
    assert len(generated) >= 12
    assert "password_hash" not in body
    sam = await login(client, "sam", generated)
    assert (await _me(client, sam))["id"] == body["id"]


async def test_the_generated_password_is_shown_only_once(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = (await _create(client, admin)).json()

    again = await client.get(f"/v1/users/{created['id']}", headers=admin)
    listed = await client.get("/v1/users", headers=admin)

    assert "initial_password" not in again.json()
    assert created["initial_password"] not in again.text
    assert created["initial_password"] not in listed.text


async def test_admin_creates_an_admin_with_a_given_password(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await _create(client, admin, username="root2", role="admin", password=GOOD_PASSWORD)

    assert response.status_code == 201, response.text
    assert response.json()["role"] == "admin"
    assert response.json()["initial_password"] is None
    new_admin = await login(client, "root2", GOOD_PASSWORD)
    assert (await _create(client, new_admin, username="third")).status_code == 201


async def test_names_are_trimmed(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await _create(client, admin, username="  sam  ", display_name="  Sam Lee ")
    assert response.status_code == 201, response.text
    assert response.json()["username"] == "sam"
    assert response.json()["display_name"] == "Sam Lee"


async def test_an_agent_cannot_be_created_here(
    client: httpx.AsyncClient, admin: dict[str, str], app: FastAPI
) -> None:
    users_before = await _user_count(app)

    response = await _create(client, admin, role="agent")

    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_error"
    assert [f["field"] for f in body["fields"]] == ["role"]
    assert "/v1/agents" in body["detail"]
    assert await _user_count(app) == users_before
    created = await _events(client, admin, "user.created")
    assert [e for e in created if e["payload"]["username"] == "sam"] == []


@pytest.mark.parametrize("second", ["sam", "SAM", "Sam", " sam "])
async def test_a_taken_username_is_a_409_whatever_its_case(
    client: httpx.AsyncClient, admin: dict[str, str], app: FastAPI, second: str
) -> None:
    first = await _create(client, admin, username="sam")
    assert first.status_code == 201

    response = await _create(client, admin, username=second, role="admin")

    assert response.status_code == 409
    assert response.json()["error"] == "username_taken"
    assert "already taken" in response.json()["detail"]
    assert await _users_named(app, "sam") == 1
    created = await _events(client, admin, "user.created")
    sams = [e["subject_id"] for e in created if e["payload"]["username"].lower() == "sam"]
    assert sams == [first.json()["id"]]


async def test_racing_creates_of_one_username_make_one_user_and_409s(
    client: httpx.AsyncClient, admin: dict[str, str], app: FastAPI
) -> None:
    """The look-up before the insert cannot see a concurrent insert; the unique index can."""
    responses = await asyncio.gather(
        *(_create(client, admin, username=name) for name in ("sam", "SAM", "Sam", "sAm"))
    )

    codes = sorted(r.status_code for r in responses)
    assert codes == [201, 409, 409, 409]
    assert all(r.json()["error"] == "username_taken" for r in responses if r.status_code == 409)
    assert await _users_named(app, "sam") == 1
    sams = [
        e
        for e in await _events(client, admin, "user.created")
        if e["payload"]["username"].lower() == "sam"
    ]
    assert len(sams) == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        pytest.param({"username": "s"}, "username", id="username-too-short"),
        pytest.param({"username": "s" * 65}, "username", id="username-too-long"),
        pytest.param({"username": "sam lee"}, "username", id="username-with-space"),
        pytest.param({"username": "sam/lee"}, "username", id="username-with-slash"),
        pytest.param({"username": "   "}, "username", id="username-blank"),
        pytest.param({"display_name": "   "}, "display_name", id="display-name-blank"),
        pytest.param({"display_name": "x" * 201}, "display_name", id="display-name-too-long"),
        pytest.param({"password": "seven77"}, "password", id="password-too-short"),
        pytest.param({"password": "p" * 201}, "password", id="password-too-long"),
        pytest.param({"role": "owner"}, "role", id="unknown-role"),
        pytest.param({"role": None}, "role", id="role-missing"),
    ],
)
async def test_an_invalid_user_is_a_422_naming_the_field(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    app: FastAPI,
    fields: dict[str, Any],
    field: str,
) -> None:
    users_before = await _user_count(app)

    response = await _create(client, admin, **fields)

    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "validation_error"
    assert [f["field"] for f in body["fields"]] == [field]
    assert await _user_count(app) == users_before


async def test_a_password_of_exactly_eight_characters_is_enough(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await _create(client, admin, password="eight888")
    assert response.status_code == 201, response.text
    await login(client, "sam", "eight888")


async def test_creating_a_user_writes_one_user_created_event_naming_the_admin(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    admin_id = (await _me(client, admin))["id"]

    created = (await _create(client, admin, password=GOOD_PASSWORD)).json()

    events = await _events(client, admin, "user.created")
    mine = [e for e in events if e["subject_id"] == created["id"]]
    assert len(mine) == 1
    event = mine[0]
    assert event["actor"] == f"user:{admin_id}"
    assert event["subject_type"] == "user"
    assert event["payload"] == {"username": "sam", "role": "supervisor"}
    assert GOOD_PASSWORD not in str(events)
    # The only other one is the admin fixture's own, made by the system.
    assert [(e["subject_id"], e["actor"]) for e in events if e is not event] == [
        (admin_id, "system")
    ]


# Listing and reading


async def test_users_are_listed_by_username_and_filtered_by_role(
    client: httpx.AsyncClient, admin: dict[str, str], agent_user: dict[str, str]
) -> None:
    for name in ("zoe", "bob"):
        assert (await _create(client, admin, username=name)).status_code == 201

    everyone = (await client.get("/v1/users", headers=admin)).json()
    supervisors = (await client.get("/v1/users?role=supervisor", headers=admin)).json()
    agents = (await client.get("/v1/users?role=agent", headers=admin)).json()
    admins = (await client.get("/v1/users?role=admin", headers=admin)).json()

    assert everyone["total"] == 4
    names = [u["username"] for u in everyone["items"]]
    assert names == sorted(names)
    assert [u["username"] for u in supervisors["items"]] == ["bob", "zoe"]
    assert supervisors["total"] == 2
    assert [u["username"] for u in agents["items"]] == ["agent-alex"]
    assert agents["total"] == 1
    assert admins["total"] == 1
    assert all(u["role"] == "admin" for u in admins["items"])


async def test_an_unknown_role_filter_is_a_422(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.get("/v1/users?role=owner", headers=admin)
    assert response.status_code == 422
    assert [f["field"] for f in response.json()["fields"]] == ["query.role"]


async def test_users_are_paged_with_limit_and_offset(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for index in range(5):
        assert (await _create(client, admin, username=f"sup-{index}")).status_code == 201

    pages = [
        (await client.get(f"/v1/users?role=supervisor&limit=2&offset={o}", headers=admin)).json()
        for o in (0, 2, 4, 6)
    ]

    assert [len(p["items"]) for p in pages] == [2, 2, 1, 0]
    assert {p["total"] for p in pages} == {5}
    assert [(p["limit"], p["offset"]) for p in pages] == [(2, 0), (2, 2), (2, 4), (2, 6)]
    names = [u["username"] for p in pages for u in p["items"]]
    assert names == [f"sup-{index}" for index in range(5)]


async def test_the_default_page_is_fifty(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    body = (await client.get("/v1/users", headers=admin)).json()
    assert (body["limit"], body["offset"]) == (50, 0)


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=0", "query.limit"), ("limit=201", "query.limit"), ("offset=-1", "query.offset")],
)
async def test_a_page_out_of_range_is_a_422(
    client: httpx.AsyncClient, admin: dict[str, str], query: str, field: str
) -> None:
    response = await client.get(f"/v1/users?{query}", headers=admin)
    assert response.status_code == 422
    assert [f["field"] for f in response.json()["fields"]] == [field]


async def test_one_user_by_id(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    created = (await _create(client, admin)).json()

    response = await client.get(f"/v1/users/{created['id']}", headers=admin)

    assert response.status_code == 200
    expected = {k: v for k, v in created.items() if k != "initial_password"}
    assert response.json() == expected


async def test_an_unknown_user_is_a_404(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    missing = uuid.uuid4()

    response = await client.get(f"/v1/users/{missing}", headers=admin)

    assert response.status_code == 404
    assert response.json() == {"error": "user_not_found", "detail": f"no user with id {missing}"}


async def test_a_user_id_that_is_no_uuid_is_a_422(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.get("/v1/users/42", headers=admin)
    assert response.status_code == 422
    assert [f["field"] for f in response.json()["fields"]] == ["path.user_id"]


# Changing


async def test_patch_changes_the_display_name_only(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = (await _create(client, admin, password=GOOD_PASSWORD)).json()
    sam = await login(client, "sam", GOOD_PASSWORD)

    response = await client.patch(
        f"/v1/users/{created['id']}", json={"display_name": " Samantha Lee "}, headers=admin
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["display_name"] == "Samantha Lee"
    assert (body["username"], body["role"], body["is_active"]) == ("sam", "supervisor", True)
    assert (await client.get(f"/v1/users/{created['id']}", headers=admin)).json() == body
    assert (await _me(client, sam))["display_name"] == "Samantha Lee"  # token still good
    updated = await _events(client, admin, "user.updated", created["id"])
    assert [e["payload"] for e in updated] == [{"display_name": "Samantha Lee"}]


async def test_patching_an_unknown_user_is_a_404(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.patch(
        f"/v1/users/{uuid.uuid4()}", json={"display_name": "X"}, headers=admin
    )
    assert response.status_code == 404
    assert response.json()["error"] == "user_not_found"


async def test_a_password_change_revokes_the_old_tokens(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = (await _create(client, admin, password=GOOD_PASSWORD)).json()
    sam = await login(client, "sam", GOOD_PASSWORD)
    new_password = "another long password"

    response = await client.patch(
        f"/v1/users/{created['id']}", json={"password": new_password}, headers=admin
    )

    assert response.status_code == 200, response.text
    assert "password" not in response.json()
    assert (await client.get("/v1/auth/me", headers=sam)).status_code == 401
    old = await client.post("/v1/auth/login", json={"username": "sam", "password": GOOD_PASSWORD})
    assert old.status_code == 401
    await login(client, "sam", new_password)
    updated = await _events(client, admin, "user.updated", created["id"])
    assert [e["payload"] for e in updated] == [{"password": "changed"}]
    assert new_password not in str(updated)


async def test_changing_ones_own_password_ends_ones_own_session(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    admin_id = (await _me(client, admin))["id"]
    response = await client.patch(
        f"/v1/users/{admin_id}", json={"password": GOOD_PASSWORD}, headers=admin
    )
    assert response.status_code == 200, response.text
    assert (await client.get("/v1/auth/me", headers=admin)).status_code == 401


async def test_a_too_short_new_password_changes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = (await _create(client, admin, password=GOOD_PASSWORD)).json()
    sam = await login(client, "sam", GOOD_PASSWORD)

    response = await client.patch(
        f"/v1/users/{created['id']}",
        json={"password": "short", "display_name": "Changed"},
        headers=admin,
    )

    assert response.status_code == 422
    assert [f["field"] for f in response.json()["fields"]] == ["password"]
    assert (await _me(client, sam))["display_name"] == "Sam Lee"
    assert await _events(client, admin, "user.updated", created["id"]) == []


async def test_deactivation_revokes_tokens_and_blocks_login_until_reactivated(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = (await _create(client, admin, password=GOOD_PASSWORD)).json()
    sam = await login(client, "sam", GOOD_PASSWORD)

    response = await client.patch(
        f"/v1/users/{created['id']}", json={"is_active": False}, headers=admin
    )

    assert response.status_code == 200, response.text
    assert response.json()["is_active"] is False
    assert (await client.get("/v1/auth/me", headers=sam)).status_code == 401
    blocked = await client.post(
        "/v1/auth/login", json={"username": "sam", "password": GOOD_PASSWORD}
    )
    assert blocked.status_code == 401
    assert blocked.json()["detail"] == "wrong username or password"
    inactive = (await client.get("/v1/users", headers=admin)).json()["items"]
    assert [u["is_active"] for u in inactive if u["id"] == created["id"]] == [False]

    reactivated = await client.patch(
        f"/v1/users/{created['id']}", json={"is_active": True}, headers=admin
    )
    assert reactivated.status_code == 200
    assert (await client.get("/v1/auth/me", headers=sam)).status_code == 401  # still revoked
    await login(client, "sam", GOOD_PASSWORD)


async def test_a_role_change_between_admin_and_supervisor_applies_at_once(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = (await _create(client, admin, role="admin", password=GOOD_PASSWORD)).json()
    other_admin = await login(client, "sam", GOOD_PASSWORD)
    assert (await _create(client, other_admin, username="made-by-sam")).status_code == 201

    response = await client.patch(
        f"/v1/users/{created['id']}", json={"role": "supervisor"}, headers=admin
    )

    assert response.status_code == 200, response.text
    assert response.json()["role"] == "supervisor"
    refused = await _create(client, other_admin, username="not-any-more")
    assert refused.status_code == 403
    assert (await client.get("/v1/users", headers=other_admin)).status_code == 200
    updated = await _events(client, admin, "user.updated", created["id"])
    assert [e["payload"] for e in updated] == [{"role": "supervisor"}]


async def test_nobody_becomes_an_agent_by_a_role_change(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = (await _create(client, admin)).json()

    response = await client.patch(
        f"/v1/users/{created['id']}", json={"role": "agent"}, headers=admin
    )

    assert response.status_code == 422
    assert [f["field"] for f in response.json()["fields"]] == ["role"]
    assert (await client.get(f"/v1/users/{created['id']}", headers=admin)).json()[
        "role"
    ] == "supervisor"
    assert await _events(client, admin, "user.updated", created["id"]) == []


@pytest.mark.parametrize("role", ["supervisor", "admin"])
async def test_an_agent_stays_an_agent(
    client: httpx.AsyncClient, admin: dict[str, str], agent_user: dict[str, str], role: str
) -> None:
    agent_id = (await _me(client, agent_user))["id"]

    response = await client.patch(f"/v1/users/{agent_id}", json={"role": role}, headers=admin)

    assert response.status_code == 422
    assert [f["field"] for f in response.json()["fields"]] == ["role"]
    assert (await _me(client, agent_user))["role"] == "agent"


async def test_an_agent_keeping_its_role_is_no_change(
    client: httpx.AsyncClient, admin: dict[str, str], agent_user: dict[str, str]
) -> None:
    agent_id = (await _me(client, agent_user))["id"]
    response = await client.patch(
        f"/v1/users/{agent_id}", json={"role": "agent", "display_name": "Alex B"}, headers=admin
    )
    assert response.status_code == 200, response.text
    assert (response.json()["role"], response.json()["display_name"]) == ("agent", "Alex B")


async def test_the_last_active_admin_can_be_neither_demoted_nor_deactivated(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    me = await _me(client, admin)
    for change in ({"role": "supervisor"}, {"is_active": False}):
        refused = await client.patch(f"/v1/users/{me['id']}", json=change, headers=admin)
        assert refused.status_code == 409, refused.text
        assert "last active admin" in refused.json()["detail"]
    assert (await _me(client, admin))["role"] == "admin"

    await _create(client, admin, role="admin", password=GOOD_PASSWORD)
    demoted = await client.patch(
        f"/v1/users/{me['id']}", json={"role": "supervisor"}, headers=admin
    )
    assert demoted.status_code == 200, demoted.text
