"""The chat sites' admin API: a site's secret shown once (made, rotated) and never again, nor
in a log or an event; origins kept as browsers send them, bad ones refused by name; the
queue checked; one site per name; who may do what; a site with chats kept; the demo's site."""

from __future__ import annotations

import io
import re
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.channels.chat.sites import identity_signature, read_site
from app.core.db import unit_of_work
from app.core.settings import Settings
from app.demo import load_demo
from tests.channels.chat.conftest import Site, make_site
from tests.support import field_problems

Headers = dict[str, str]
pytestmark = pytest.mark.asyncio

SITES = "/v1/chat/sites"
HEX64 = re.compile(r"[0-9a-f]{64}")


async def new_queue(client: httpx.AsyncClient, admin: Headers, name: str = "webchat") -> str:
    made = await client.post("/v1/queues", json={"name": name}, headers=admin)
    assert made.status_code == 201, made.text
    queue_id: str = made.json()["id"]
    return queue_id


async def new_site(
    client: httpx.AsyncClient, admin: Headers, queue_id: str, **fields: Any
) -> dict[str, Any]:
    body = {"name": "shop", "queue_id": queue_id, "allowed_origins": ["https://shop.example.com"]}
    made = await client.post(SITES, json={**body, **fields}, headers=admin)
    assert made.status_code == 201, made.text
    site: dict[str, Any] = made.json()
    return site


async def test_a_site_is_made_with_its_secret_shown_once_and_never_read_again(
    client: httpx.AsyncClient, admin: Headers, supervisor: Headers, log_lines: io.StringIO
) -> None:
    queue_id = await new_queue(client, admin)
    made = await new_site(client, admin, queue_id)
    secret = made.pop("identity_secret")
    assert HEX64.fullmatch(secret)
    assert made["queue_id"] == queue_id
    assert made["allowed_origins"] == ["https://shop.example.com"]
    defaults = ("resume_seconds", "quiet_close_seconds", "messages_per_minute", "chats_per_minute")
    assert [made[name] for name in defaults] == [120, 600, 20, 3]

    path = f"{SITES}/{made['id']}"
    changed = await client.patch(path, json={"resume_seconds": 300}, headers=admin)
    assert changed.status_code == 200, changed.text
    answers = [
        changed,
        await client.get(SITES, headers=supervisor),
        await client.get(path, headers=supervisor),
        await client.get("/v1/events", headers=supervisor),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert "identity_secret" not in answer.text
        assert secret not in answer.text
    [listed] = answers[1].json()["items"]
    assert listed == {**made, "resume_seconds": 300, "updated_at": listed["updated_at"]}
    assert secret not in log_lines.getvalue()


async def test_rotating_the_secret_retires_the_old_signatures(
    app: FastAPI, client: httpx.AsyncClient, admin: Headers, served: str
) -> None:
    queue_id = await new_queue(client, admin)
    made = await new_site(client, admin, queue_id, allowed_origins=[served])
    old = made["identity_secret"]

    rotated = await client.post(f"{SITES}/{made['id']}/secret", headers=admin)
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["identity_secret"]
    assert HEX64.fullmatch(new)
    assert new != old

    async with app.state.pg.acquire() as connection:
        stored = await read_site(connection, uuid.UUID(made["id"]))
    assert stored is not None
    assert not stored.signs("account-42", identity_signature(old, "account-42"))
    assert stored.signs("account-42", identity_signature(new, "account-42"))
    # And as the customer's socket hears it: the old signature is refused, the new one taken.
    page = Site(stored.id, stored.queue_id, stored.name, served, served.replace("http", "ws"))
    forged = await page.connect()
    await forged.send(
        type="hello",
        visitor_token=None,
        identity={"customer": "account-42", "signature": identity_signature(old, "account-42")},
    )
    assert await forged.closed() == (4003, "identity signature does not match")
    signature = identity_signature(new, "account-42")
    _, welcome = await page.customer(identity="account-42", signature=signature)
    assert welcome["visitor_token"]


@pytest.mark.parametrize(
    ("origin", "problem"),
    [
        ("https://shop.example.com/cart", "no path, query or fragment"),
        ("https://shop.example.com?from=ad", "no path, query or fragment"),
        ("https://shop.example.com#top", "no path, query or fragment"),
        ("ftp://shop.example.com", "its scheme http or https"),
        ("shop.example.com", "its scheme http or https"),
        ("https://*.example.com", "wildcards are not matched"),
        ("https://shop.example.com:70000", "the port must be a number from 1 to 65535"),
        ("https://user:pw@shop.example.com", "no user or password"),
        ("https://shop_example.com", "is not a host name"),
    ],
)
async def test_a_bad_origin_is_refused_by_name(
    client: httpx.AsyncClient, admin: Headers, origin: str, problem: str
) -> None:
    queue_id = await new_queue(client, admin)
    body = {
        "name": "shop",
        "queue_id": queue_id,
        "allowed_origins": ["https://shop.example.com", origin],
    }
    refused = await client.post(SITES, json=body, headers=admin)
    assert refused.status_code == 422, refused.text
    said = field_problems(refused)["allowed_origins[1]"]
    assert repr(origin) in said
    assert problem in said
    site = await new_site(client, admin, queue_id)
    changed = await client.patch(
        f"{SITES}/{site['id']}", json={"allowed_origins": [origin]}, headers=admin
    )
    assert changed.status_code == 422, changed.text
    assert repr(origin) in field_problems(changed)["allowed_origins[0]"]


async def test_origins_are_kept_as_a_browser_sends_them(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    queue_id = await new_queue(client, admin)
    given = [
        "HTTPS://Shop.Example.com/",
        "https://shop.example.com",
        "https://shop.example.com:443",
        "http://127.0.0.1:8000",
        "https://bücher.example",
    ]
    site = await new_site(client, admin, queue_id, allowed_origins=given)
    assert site["allowed_origins"] == [
        "https://shop.example.com",
        "http://127.0.0.1:8000",
        "https://xn--bcher-kva.example",
    ]


async def test_origins_are_one_to_twenty(client: httpx.AsyncClient, admin: Headers) -> None:
    queue_id = await new_queue(client, admin)
    body = {"name": "shop", "queue_id": queue_id}
    for origins in ([], [f"https://shop{n}.example.com" for n in range(21)]):
        refused = await client.post(SITES, json={**body, "allowed_origins": origins}, headers=admin)
        assert refused.status_code == 422, refused.text
        assert "allowed_origins" in field_problems(refused)


@pytest.mark.parametrize(
    ("field", "low", "high"),
    [
        ("resume_seconds", 10, 3600),
        ("quiet_close_seconds", 60, 86400),
        ("messages_per_minute", 1, 600),
        ("chats_per_minute", 1, 60),
    ],
)
async def test_timings_and_limits_are_held_to_the_tables_bounds(
    client: httpx.AsyncClient, admin: Headers, field: str, low: int, high: int
) -> None:
    queue_id = await new_queue(client, admin)
    site = await new_site(client, admin, queue_id, **{field: low})
    path = f"{SITES}/{site['id']}"
    for outside in (low - 1, high + 1):
        refused = await client.patch(path, json={field: outside}, headers=admin)
        assert refused.status_code == 422, refused.text
        assert field in field_problems(refused)
    changed = await client.patch(path, json={field: high}, headers=admin)
    assert changed.status_code == 200, changed.text
    assert changed.json()[field] == high


async def test_a_site_needs_a_queue_that_exists(client: httpx.AsyncClient, admin: Headers) -> None:
    nowhere = str(uuid.uuid4())
    body = {"name": "shop", "queue_id": nowhere, "allowed_origins": ["https://shop.example.com"]}
    refused = await client.post(SITES, json=body, headers=admin)
    assert refused.status_code == 422, refused.text
    assert field_problems(refused)["queue_id"] == f"no queue with id {nowhere}"
    site = await new_site(client, admin, await new_queue(client, admin))
    moved = await client.patch(f"{SITES}/{site['id']}", json={"queue_id": nowhere}, headers=admin)
    assert moved.status_code == 422, moved.text
    assert field_problems(moved)["queue_id"] == f"no queue with id {nowhere}"


async def test_two_sites_cannot_share_a_name(client: httpx.AsyncClient, admin: Headers) -> None:
    queue_id = await new_queue(client, admin)
    await new_site(client, admin, queue_id, name="shop")
    body = {"name": "Shop", "queue_id": queue_id, "allowed_origins": ["https://b.example.com"]}
    clash = await client.post(SITES, json=body, headers=admin)
    assert clash.status_code == 409, clash.text
    assert clash.json() == {
        "error": "chat_site_name_taken",
        "detail": "a chat site named 'Shop' already exists",
    }
    other = await new_site(client, admin, queue_id, name="outlet")
    renamed = await client.patch(f"{SITES}/{other['id']}", json={"name": "shop"}, headers=admin)
    assert renamed.status_code == 409, renamed.text
    assert renamed.json()["detail"] == "a chat site named 'shop' already exists"
    kept = await client.patch(f"{SITES}/{other['id']}", json={"name": "Outlet"}, headers=admin)
    assert kept.status_code == 200, kept.text  # its own name, in other letters


async def test_staff_read_sites_and_only_admins_change_them(
    client: httpx.AsyncClient, admin: Headers, supervisor: Headers, agent: Headers
) -> None:
    site = await new_site(client, admin, await new_queue(client, admin))
    path = f"{SITES}/{site['id']}"
    for refused in (
        await client.get(SITES, headers=agent),
        await client.get(path, headers=agent),
        await client.post(f"{path}/secret", headers=supervisor),
        await client.patch(path, json={"name": "mine"}, headers=supervisor),
        await client.delete(path, headers=supervisor),
    ):
        assert refused.status_code == 403, refused.text
    assert (await client.get(path, headers=supervisor)).status_code == 200
    assert (await client.get(f"{SITES}/{uuid.uuid4()}", headers=admin)).status_code == 404


async def test_a_site_that_has_had_chats_is_kept_and_one_without_is_deleted(
    app: FastAPI, client: httpx.AsyncClient, admin: Headers, served: str
) -> None:
    queue_id = await new_queue(client, admin)
    used = await new_site(client, admin, queue_id, allowed_origins=[served])
    page = Site(
        uuid.UUID(used["id"]),
        uuid.UUID(queue_id),
        "shop",
        served,
        served.replace("http", "ws"),
    )
    customer, _ = await page.customer()
    await customer.send(type="message", client_id="c1", text="Is my parcel on its way?")
    await customer.next("stored")

    refused = await client.delete(f"{SITES}/{used['id']}", headers=admin)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "chat_site_has_chats"
    assert "chat site 'shop' has 1 chats (1 open)" in refused.json()["detail"]
    assert (await client.get(f"{SITES}/{used['id']}", headers=admin)).status_code == 200

    unused = await new_site(client, admin, queue_id, name="never-embedded")
    gone = await client.delete(f"{SITES}/{unused['id']}", headers=admin)
    assert gone.status_code == 204, gone.text
    assert (await client.get(f"{SITES}/{unused['id']}", headers=admin)).status_code == 404


async def test_the_demo_has_a_chat_site_on_the_general_queue(
    app: FastAPI,
    settings: Settings,
    client: httpx.AsyncClient,
    admin: Headers,
    log_lines: io.StringIO,
) -> None:
    async with unit_of_work(app.state.sessions) as session:
        await load_demo(session, settings)
    [site] = (await client.get(SITES, headers=admin)).json()["items"]
    queue = (await client.get(f"/v1/queues/{site['queue_id']}", headers=admin)).json()
    assert (site["name"], queue["name"]) == ("demo", "general")
    assert site["allowed_origins"] == ["http://127.0.0.1:8000", "http://localhost:8000"]
    async with app.state.pg.acquire() as connection:
        stored = await read_site(connection, uuid.UUID(site["id"]))
    assert stored is not None
    assert HEX64.fullmatch(stored.identity_secret)
    assert stored.identity_secret not in log_lines.getvalue()


async def test_a_site_that_has_had_chats_keeps_its_name_but_changes_the_rest(
    app: FastAPI, client: httpx.AsyncClient, admin: Headers, served: str
) -> None:
    site = await make_site(app, client, admin, served)
    customer, _ = await site.customer()
    await customer.send(type="message", client_id="c1", text="Hello")
    await customer.next("stored")

    renamed = await client.patch(
        f"/v1/chat/sites/{site.id}", json={"name": "boutique"}, headers=admin
    )
    slower = await client.patch(
        f"/v1/chat/sites/{site.id}", json={"name": "shop", "resume_seconds": 300}, headers=admin
    )

    assert renamed.status_code == 409, renamed.text
    assert renamed.json()["error"] == "chat_site_has_chats"
    assert "signed-in customers" in renamed.json()["detail"]
    assert slower.status_code == 200, slower.text
    assert slower.json()["resume_seconds"] == 300
