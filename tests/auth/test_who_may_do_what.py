"""docs/api.md's "Who may do what", held to the code: every endpoint, every kind of caller.

The table is read from the page itself. For each endpoint it names, each kind of caller makes
one request built to succeed (fresh things to change or delete, its own agent, an interaction
it holds): a blank cell must answer 403, any other a 2xx, or the status the cell names. And
every endpoint the app serves must be in the table once.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from tests.support import held_by

Headers = dict[str, str]

API_PAGE = Path(__file__).resolve().parents[2] / "docs" / "api.md"
CALLERS = ("agent", "supervisor", "admin", "gateway key")
# Endpoints that need no token, outside the table by design.
OPEN = {("POST", "/v1/auth/login"), ("GET", "/health")}
# Twilio's webhooks: let through by Twilio's signature, never a token (tests/ivr's; the page
# lists them under the table).
SIGNED = {
    ("POST", f"/v1/voice/twilio/{step}")
    for step in ("incoming", "status", "gather", "record", "hold", "dial", "answered")
}
# The customer's answer to a complaint's reply: pages, not API (outside the OpenAPI document),
# opened by the link's token, never a login (tests/tickets/test_answer_page.py's; the page
# lists them under the table).
BY_LINK = {("GET", "/complaints/answer/{token}"), ("POST", "/complaints/answer/{token}")}


@dataclass(frozen=True)
class Row:
    what: str
    endpoints: tuple[tuple[str, str], ...]
    cells: dict[str, str]


def table() -> list[Row]:
    """The rows of the page's "Who may do what" table."""
    section = API_PAGE.read_text().split("## Who may do what", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header == ["what", "endpoints", *CALLERS], header
    rows = []
    for line in lines[2:]:
        what, endpoints, *cells = (cell.strip() for cell in line.strip("|").split("|"))
        found = re.findall(r"`([A-Z]+) (/[^`]*)`", endpoints)
        rows.append(Row(what, tuple(found), dict(zip(CALLERS, cells, strict=True))))
    return rows


def expected_status(cell: str) -> int | None:
    """403 for a blank cell, the status a cell names ("404: not an agent"), else None (2xx)."""
    if not cell:
        return 403
    named = re.match(r"(\d{3})\b", cell)
    return int(named.group(1)) if named else None


HTTP_ENDPOINTS = [
    pytest.param(row, method, path, id=f"{method} {path}")
    for row in table()
    for method, path in row.endpoints
    if method != "WS"  # the sockets' refusals are tests/desk's and tests/supervisor's
]


@dataclass
class Floor:
    """Everyone the table names, and the things their requests act on."""

    app: FastAPI
    client: httpx.AsyncClient
    callers: dict[str, Headers]
    agent_id: str
    customer_id: str
    names: count[int]

    @property
    def admin(self) -> Headers:
        return self.callers["admin"]

    def name(self, prefix: str) -> str:
        return f"{prefix}-{next(self.names)}"

    async def made(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Made by the admin: the created thing's JSON."""
        response = await self.client.post(path, json=body, headers=self.admin)
        assert response.status_code == 201, response.text
        made: dict[str, Any] = response.json()
        return made

    async def held(self) -> str:
        """A new interaction of the floor's customer, held by the floor's agent."""
        return await held_by(
            self.app, self.client, self.admin, self.callers["agent"], self.customer_id
        )


@pytest.fixture
async def floor(
    app: FastAPI,
    client: httpx.AsyncClient,
    admin: Headers,
    supervisor: Headers,
    agent: Headers,
    gateway_key: Headers,
) -> Floor:
    callers = {"agent": agent, "supervisor": supervisor, "admin": admin, "gateway key": gateway_key}
    me = await client.get("/v1/agents/me", headers=agent)
    assert me.status_code == 200, me.text
    built = Floor(app, client, callers, me.json()["id"], "", count(1))
    await built.made("/v1/skills", {"name": "general"})
    customer = await built.made("/v1/customers", {"name": "Ada", "phones": ["13800138000"]})
    built.customer_id = customer["id"]
    await built.held()  # the agent has served Ada
    return built


Request = tuple[str, Any]  # the path, with its ids; the JSON body (or None)
Build = Callable[[Floor], Awaitable[Request]]


async def _fresh_user(floor: Floor) -> Request:
    user = await floor.made(
        "/v1/users",
        {"username": floor.name("sam"), "display_name": "Sam", "role": "supervisor"},
    )
    return f"/v1/users/{user['id']}", {"display_name": "Sam Lee"}


async def _admin_id(floor: Floor) -> Request:
    me = (await floor.client.get("/v1/auth/me", headers=floor.admin)).json()
    return f"/v1/users/{me['id']}", None


async def _fresh_key(floor: Floor) -> Request:
    key = await floor.made("/v1/gateway-keys", {"name": floor.name("gw")})
    return f"/v1/gateway-keys/{key['id']}", None


async def _fresh_skill(floor: Floor) -> Request:
    skill = await floor.made("/v1/skills", {"name": floor.name("skill")})
    return f"/v1/skills/{skill['id']}", {"description": "changed"}


async def _fresh_queue(floor: Floor) -> Request:
    queue = await floor.made("/v1/queues", {"name": floor.name("queue")})
    return f"/v1/queues/{queue['id']}", {"description": "changed"}


async def _fresh_customer(floor: Floor) -> Request:
    customer = await floor.made("/v1/customers", {"name": floor.name("Gone")})
    return f"/v1/customers/{customer['id']}", None


async def _fresh_contact_point(floor: Floor) -> Request:
    path = f"/v1/customers/{floor.customer_id}/contact-points"
    email = f"{floor.name('ada')}@example.com"
    added = await floor.client.post(
        path, json={"kind": "email", "value": email}, headers=floor.admin
    )
    assert added.status_code == 201, added.text
    point = next(p for p in added.json()["contact_points"] if p["value"] == email)
    return f"{path}/{point['id']}", None


async def _queued(floor: Floor) -> Request:
    body = {"channel": "chat", "queue": "served", "customer_id": floor.customer_id}
    interaction = await floor.made("/v1/interactions", body)
    return f"/v1/interactions/{interaction['id']}/abandon", None


def _fixed(path: str, body: Any = None) -> Build:
    async def build(floor: Floor) -> Request:
        return path.format(agent_id=floor.agent_id, customer_id=floor.customer_id), body

    return build


def _named(path: str, prefix: str, **body: Any) -> Build:
    async def build(floor: Floor) -> Request:
        return path, {"name": floor.name(prefix), **body}

    return build


def _on_held(action: str, body: dict[str, Any]) -> Build:
    async def build(floor: Floor) -> Request:
        return f"/v1/interactions/{await floor.held()}{action}", body

    return build


async def _new_user(floor: Floor) -> Request:
    return "/v1/users", {"username": floor.name("pat"), "display_name": "Pat", "role": "admin"}


async def _new_agent(floor: Floor) -> Request:
    return "/v1/agents", {"username": floor.name("kim"), "display_name": "Kim"}


async def _new_contact_point(floor: Floor) -> Request:
    body = {"kind": "email", "value": f"{floor.name('ada')}@example.com"}
    return f"/v1/customers/{floor.customer_id}/contact-points", body


async def _new_interaction(floor: Floor) -> Request:
    return "/v1/interactions", {
        "channel": "chat",
        "queue": "served",
        "contact": {"kind": "chat", "value": floor.name("visitor")},
    }


async def _first_of(floor: Floor, path: str) -> Request:
    listed = (await floor.client.get(path, headers=floor.admin)).json()
    items = listed["items"] if isinstance(listed, dict) else listed
    return f"{path}/{items[0]['id']}", None


async def _a_skill(floor: Floor) -> Request:
    return await _first_of(floor, "/v1/skills")


async def _a_queue(floor: Floor) -> Request:
    return await _first_of(floor, "/v1/queues")


async def _a_queue_status(floor: Floor) -> Request:
    path, _ = await _a_queue(floor)
    return f"{path}/status", None


async def _held_one(floor: Floor) -> Request:
    return f"/v1/interactions/{await floor.held()}", None


async def _dead_message(floor: Floor) -> str:
    """A message the outbox gave up on (written so, as no courier would send it here)."""
    message_id = uuid.uuid4()
    async with floor.app.state.pg.acquire() as connection:
        await connection.execute(
            "INSERT INTO outbox_messages (id, kind, sender, request, dedupe_key, subject_type,"
            " subject_id, state, attempts, last_status, last_error)"
            " VALUES ($1, 'http', 'twilio', '{}', $2, 'interaction', 'CA1', 'dead', 1, 400,"
            " '400 Bad Request')",
            message_id,
            f"test:{message_id}",
        )
    return f"/v1/outbox/{message_id}"


async def _an_outbox_message(floor: Floor) -> Request:
    return await _dead_message(floor), None


async def _a_dead_message_to_retry(floor: Floor) -> Request:
    return f"{await _dead_message(floor)}/retry", None


IVR_FLOW = {"start": "hello", "nodes": {"hello": {"type": "hangup"}}}
IVR_DRY_RUN = {"document": IVR_FLOW, "inputs": []}


async def _a_call_starting(floor: Floor) -> Request:
    """A call's first event, to a number the default flow answers (it hangs up at once)."""
    await floor.made(
        "/v1/ivr/flows",
        {"name": floor.name("line"), "document": IVR_FLOW, "publish": True, "is_default": True},
    )
    event = {"event": "started", "call_id": floor.name("call"), "from": "+8613800138000"}
    return "/v1/voice/events", {**event, "to": "+864000000000"}


async def _a_call_record(floor: Floor) -> Request:
    path, event = await _a_call_starting(floor)
    started = await floor.client.post(path, json=event, headers=floor.callers["gateway key"])
    assert started.status_code == 200, started.text
    calls = await floor.client.get("/v1/voice/calls", headers=floor.admin)
    return f"/v1/voice/calls/{calls.json()['items'][0]['id']}", None


async def _fresh_ivr_flow(floor: Floor) -> Request:
    flow = await floor.made("/v1/ivr/flows", {"name": floor.name("flow"), "document": IVR_FLOW})
    return f"/v1/ivr/flows/{flow['id']}", {"description": "changed"}


def _on_fresh_ivr_flow(action: str, body: dict[str, Any] | None) -> Build:
    async def build(floor: Floor) -> Request:
        path, _ = await _fresh_ivr_flow(floor)
        return f"{path}{action}", body

    return build


async def _mapped_number(floor: Floor) -> Request:
    path, _ = await _fresh_ivr_flow(floor)
    number = f"+86105555{next(floor.names):04d}"
    mapped = await floor.client.put(
        f"/v1/ivr/numbers/{number}", json={"flow_id": path.rsplit("/", 1)[1]}, headers=floor.admin
    )
    assert mapped.status_code == 200, mapped.text
    return f"/v1/ivr/numbers/{number}", None


async def _new_number(floor: Floor) -> Request:
    path, _ = await _fresh_ivr_flow(floor)
    return f"/v1/ivr/numbers/+86105556{next(floor.names):04d}", {"flow_id": path.rsplit("/")[-1]}


async def _new_support_address(floor: Floor) -> Request:
    queue = await floor.made("/v1/queues", {"name": floor.name("mail")})
    return "/v1/email/addresses", {
        "address": f"{floor.name('help')}@example.com",
        "queue_id": queue["id"],
    }


async def _fresh_support_address(floor: Floor) -> Request:
    path, body = await _new_support_address(floor)
    address = await floor.made(path, body)
    return f"/v1/email/addresses/{address['id']}", {"display_name": "Help desk"}


async def _new_chat_site(floor: Floor) -> Request:
    queue = await floor.made("/v1/queues", {"name": floor.name("chat")})
    return "/v1/chat/sites", {
        "name": floor.name("shop"),
        "queue_id": queue["id"],
        "allowed_origins": ["https://shop.example.com"],
    }


async def _fresh_chat_site(floor: Floor) -> Request:
    path, body = await _new_chat_site(floor)
    site = await floor.made(path, body)
    return f"/v1/chat/sites/{site['id']}", {"resume_seconds": 300}


async def _a_chat_sites_secret(floor: Floor) -> Request:
    path, _ = await _fresh_chat_site(floor)
    return f"{path}/secret", None


async def _a_mail(floor: Floor) -> Request:
    """A new message from a customer, to a support address made for it."""
    path, body = await _new_support_address(floor)
    await floor.made(path, body)
    mail = (
        f"From: ada@customer.example\r\nTo: {body['address']}\r\nSubject: Hello\r\n"
        f"Message-ID: <{floor.name('mail')}@customer.example>\r\n\r\nMy invoice is wrong.\r\n"
    )
    return "/v1/email/inbound", mail.encode()


async def _an_email_held(floor: Floor) -> Request:
    """An email from a new customer, held by the floor's agent, in a queue with an address to
    answer from: a reply to send."""
    address = f"{floor.name('bo')}@customer.example"
    customer = await floor.made("/v1/customers", {"name": "Bo", "emails": [address]})
    held = await held_by(
        floor.app,
        floor.client,
        floor.admin,
        floor.callers["agent"],
        customer["id"],
        channel="email",
    )
    queue = (await floor.client.get(f"/v1/interactions/{held}", headers=floor.admin)).json()
    support = {"address": f"{floor.name('help')}@example.com", "queue_id": queue["queue_id"]}
    await floor.made("/v1/email/addresses", support)
    return f"/v1/interactions/{held}/replies", {"text": "Your invoice is corrected."}


async def _messages_of_one_held(floor: Floor) -> Request:
    return f"/v1/interactions/{await floor.held()}/messages", None


async def _an_attachment_of_one_held(floor: Floor) -> Request:
    """A message with an attachment, stored on an interaction the floor's agent holds."""
    held = uuid.UUID(await floor.held())
    message, attachment = uuid.uuid4(), uuid.uuid4()
    async with floor.app.state.pg.acquire() as connection:
        await connection.execute(
            "INSERT INTO interaction_messages"
            " (id, interaction_id, direction, kind, dedupe_key, received_at)"
            " VALUES ($1, $2, 'inbound', 'new_thread', $3, now())",
            message,
            held,
            floor.name("mail"),
        )
        await connection.execute(
            "INSERT INTO message_attachments (id, message_id, filename, content_type, size, data)"
            " VALUES ($1, $2, 'invoice.pdf', 'application/pdf', 3, 'pdf')",
            attachment,
            message,
        )
    return f"/v1/interactions/{held}/attachments/{attachment}", None


# --- complaints: each raised by the floor's agent from an interaction it holds ---------------

COMPLAINT = {
    "summary": "Charged twice",
    "original_message": "Two debits",
    "remedy_sought": "Refund",
}


async def _complaint(floor: Floor, *, channel: str = "chat") -> dict[str, Any]:
    """A complaint of the floor's agent at step 2 (a chat's acknowledgement is written, a
    call's waits to be read out)."""
    held = await held_by(
        floor.app,
        floor.client,
        floor.admin,
        floor.callers["agent"],
        floor.customer_id,
        channel=channel,
    )
    body = {"interaction_id": held, **COMPLAINT}
    made = await floor.client.post("/v1/complaints", json=body, headers=floor.callers["agent"])
    assert made.status_code == 201, made.text
    complaint: dict[str, Any] = made.json()
    return complaint


async def _complaint_at_improve(floor: Floor) -> dict[str, Any]:
    complaint = await _complaint(floor)
    category = await floor.made(
        "/v1/complaints/categories", {"kind": "complaint", "name": floor.name("billing")}
    )
    agent = floor.callers["agent"]
    path = f"/v1/complaints/{complaint['id']}"
    steps: list[tuple[str, dict[str, Any]]] = [
        ("/actions/confirm", {"category_id": category["id"], "severity": "minor"}),
        ("/notes", {"text": "two debits"}),
        ("/actions/send_reply", {"assessment": "a", "reply": "refunded", "actions_taken": "r"}),
        ("/actions/customer_accepts", {"answer": "fine", "satisfaction": 5}),
    ]
    for step, body in steps:
        response = await floor.client.post(path + step, json=body, headers=agent)
        assert response.is_success, response.text
    return complaint


async def _new_complaint(floor: Floor) -> Request:
    held = await floor.held()
    return "/v1/complaints", {"interaction_id": held, **COMPLAINT}


def _on_complaint(action: str, body: dict[str, Any] | None, channel: str = "chat") -> Build:
    async def build(floor: Floor) -> Request:
        complaint = await _complaint(floor, channel=channel)
        return f"/v1/complaints/{complaint['reference']}{action}", body

    return build


async def _a_complaint_to_confirm(floor: Floor) -> Request:
    complaint = await _complaint(floor)
    category = await floor.made(
        "/v1/complaints/categories", {"kind": "complaint", "name": floor.name("billing")}
    )
    body = {"category_id": category["id"], "severity": "major"}
    return f"/v1/complaints/{complaint['id']}/actions/confirm", body


async def _another_interaction_to_link(floor: Floor) -> Request:
    complaint = await _complaint(floor)
    return f"/v1/complaints/{complaint['id']}/interactions", {"interaction_id": await floor.held()}


async def _a_complaint_at_improve(floor: Floor) -> Request:
    complaint = await _complaint_at_improve(floor)
    body = {"action": "Alert on duplicate debits", "owner": "Billing"}
    return f"/v1/complaints/{complaint['id']}/corrective-actions", body


async def _a_corrective_action(floor: Floor) -> Request:
    complaint = await _complaint_at_improve(floor)
    made = await floor.made(
        f"/v1/complaints/{complaint['id']}/corrective-actions",
        {"action": "Alert on duplicate debits", "owner": "Billing"},
    )
    return f"/v1/complaints/corrective-actions/{made['id']}/done", {"note": "alert live"}


async def _a_category(floor: Floor) -> Request:
    made = await floor.made(
        "/v1/complaints/categories", {"kind": "root_cause", "name": floor.name("cause")}
    )
    return f"/v1/complaints/categories/{made['id']}", {"active": False}


async def _the_policy(floor: Floor) -> Request:
    policy = await floor.client.get("/v1/complaints/policy", headers=floor.admin)
    assert policy.status_code == 200, policy.text
    return "/v1/complaints/policy", {**policy.json(), "warn_minutes": 30}


# What each endpoint of the table is asked, built anew for each caller.
async def _fresh_agent_to_send_away(floor: Floor) -> Request:
    agent = await floor.made("/v1/agents", {"username": floor.name("al"), "display_name": "Al"})
    return f"/v1/supervisor/agents/{agent['id']}/state", {"state": "away", "reason": "meeting"}


async def _waiting_one(floor: Floor) -> str:
    body = {"channel": "chat", "queue": "served", "customer_id": floor.customer_id}
    interaction: str = (await floor.made("/v1/interactions", body))["id"]
    return interaction


async def _waiting_to_move(floor: Floor) -> Request:
    queue = await floor.made("/v1/queues", {"name": floor.name("overflow")})
    path = f"/v1/supervisor/interactions/{await _waiting_one(floor)}/move"
    return path, {"to_queue": queue["id"], "reason": "overflow"}


async def _waiting_to_raise(floor: Floor) -> Request:
    path = f"/v1/supervisor/interactions/{await _waiting_one(floor)}/priority"
    return path, {"priority": 7, "reason": "a VIP"}


async def _a_queue_notice(floor: Floor) -> Request:
    path, _ = await _a_queue(floor)
    return f"/v1/supervisor{path.removeprefix('/v1')}/notices", {"text": "hi", "reason": "x"}


REQUESTS: dict[tuple[str, str], Build] = {
    ("GET", "/v1/auth/me"): _fixed("/v1/auth/me"),
    ("POST", "/v1/auth/logout"): _fixed("/v1/auth/logout"),
    ("GET", "/v1/users"): _fixed("/v1/users"),
    ("GET", "/v1/users/{user_id}"): _admin_id,
    ("POST", "/v1/users"): _new_user,
    ("PATCH", "/v1/users/{user_id}"): _fresh_user,
    ("GET", "/v1/gateway-keys"): _fixed("/v1/gateway-keys"),
    ("POST", "/v1/gateway-keys"): _named("/v1/gateway-keys", "gw"),
    ("DELETE", "/v1/gateway-keys/{key_id}"): _fresh_key,
    ("GET", "/v1/agents"): _fixed("/v1/agents"),
    ("GET", "/v1/agents/{agent_id}"): _fixed("/v1/agents/{agent_id}"),
    ("GET", "/v1/agents/me"): _fixed("/v1/agents/me"),
    ("POST", "/v1/agents"): _new_agent,
    ("PATCH", "/v1/agents/{agent_id}"): _fixed("/v1/agents/{agent_id}", {"display_name": "Al"}),
    ("PUT", "/v1/agents/{agent_id}/skills"): _fixed(
        "/v1/agents/{agent_id}/skills",
        [{"skill": "general", "level": 2}],
    ),
    ("POST", "/v1/agents/{agent_id}/state"): _fixed(
        "/v1/agents/{agent_id}/state", {"state": "away", "reason": "break"}
    ),
    ("GET", "/v1/skills"): _fixed("/v1/skills"),
    ("GET", "/v1/skills/{skill_id}"): _a_skill,
    ("GET", "/v1/queues"): _fixed("/v1/queues"),
    ("GET", "/v1/queues/{queue_id}"): _a_queue,
    ("GET", "/v1/queues/{queue_id}/status"): _a_queue_status,
    ("POST", "/v1/skills"): _named("/v1/skills", "skill"),
    ("PATCH", "/v1/skills/{skill_id}"): _fresh_skill,
    ("DELETE", "/v1/skills/{skill_id}"): _fresh_skill,
    ("POST", "/v1/queues"): _named("/v1/queues", "queue"),
    ("PATCH", "/v1/queues/{queue_id}"): _fresh_queue,
    ("DELETE", "/v1/queues/{queue_id}"): _fresh_queue,
    ("GET", "/v1/customers"): _fixed("/v1/customers"),
    ("GET", "/v1/customers/lookup"): _fixed("/v1/customers/lookup?kind=phone&value=13800138000"),
    ("GET", "/v1/customers/{customer_id}"): _fixed("/v1/customers/{customer_id}"),
    ("POST", "/v1/customers"): _named("/v1/customers", "Walk-in"),
    ("PATCH", "/v1/customers/{customer_id}"): _fixed(
        "/v1/customers/{customer_id}", {"notes": "prefers email"}
    ),
    ("POST", "/v1/customers/{customer_id}/contact-points"): _new_contact_point,
    (
        "DELETE",
        "/v1/customers/{customer_id}/contact-points/{contact_point_id}",
    ): _fresh_contact_point,
    ("DELETE", "/v1/customers/{customer_id}"): _fresh_customer,
    ("POST", "/v1/customers/tiers/recompute"): _fixed("/v1/customers/tiers/recompute"),
    ("POST", "/v1/interactions"): _new_interaction,
    ("GET", "/v1/interactions"): _fixed("/v1/interactions"),
    ("GET", "/v1/interactions/{interaction_id}"): _held_one,
    ("POST", "/v1/interactions/{interaction_id}/transfer"): _on_held(
        "/transfer", {"queue": "served"}
    ),
    ("POST", "/v1/interactions/{interaction_id}/complete"): _on_held(
        "/complete", {"disposition": "resolved"}
    ),
    ("POST", "/v1/interactions/{interaction_id}/abandon"): _queued,
    ("GET", "/v1/ivr/flows"): _fixed("/v1/ivr/flows"),
    ("GET", "/v1/ivr/flows/{flow_id}"): _on_fresh_ivr_flow("", None),
    ("GET", "/v1/ivr/flows/{flow_id}/versions/{version}"): _on_fresh_ivr_flow("/versions/1", None),
    ("GET", "/v1/ivr/numbers"): _fixed("/v1/ivr/numbers"),
    ("POST", "/v1/ivr/flows"): _named("/v1/ivr/flows", "flow", document=IVR_FLOW),
    ("PATCH", "/v1/ivr/flows/{flow_id}"): _fresh_ivr_flow,
    ("POST", "/v1/ivr/flows/{flow_id}/versions"): _on_fresh_ivr_flow(
        "/versions", {"document": IVR_FLOW}
    ),
    ("POST", "/v1/ivr/flows/{flow_id}/versions/{version}/publish"): _on_fresh_ivr_flow(
        "/versions/1/publish", None
    ),
    ("PUT", "/v1/ivr/numbers/{number}"): _new_number,
    ("DELETE", "/v1/ivr/numbers/{number}"): _mapped_number,
    ("POST", "/v1/ivr/dry-run"): _fixed("/v1/ivr/dry-run", IVR_DRY_RUN),
    ("GET", "/v1/events"): _fixed("/v1/events"),
    ("POST", "/v1/supervisor/agents/{agent_id}/state"): _fresh_agent_to_send_away,
    ("POST", "/v1/supervisor/interactions/{interaction_id}/move"): _waiting_to_move,
    ("POST", "/v1/supervisor/interactions/{interaction_id}/priority"): _waiting_to_raise,
    ("POST", "/v1/supervisor/queues/{queue_id}/notices"): _a_queue_notice,
    ("GET", "/v1/outbox"): _fixed("/v1/outbox"),
    ("GET", "/v1/outbox/{message_id}"): _an_outbox_message,
    ("POST", "/v1/outbox/{message_id}/retry"): _a_dead_message_to_retry,
    ("POST", "/v1/workforce/staffing"): _fixed(
        "/v1/workforce/staffing",
        {"calls": 100, "interval_s": 1800, "aht_s": 180, "target_s": 20, "sl": 0.8},
    ),
    ("POST", "/v1/desk/tickets"): _fixed("/v1/desk/tickets"),
    ("POST", "/v1/supervisor/tickets"): _fixed("/v1/supervisor/tickets"),
    ("POST", "/v1/voice/events"): _a_call_starting,
    ("GET", "/v1/email/addresses"): _fixed("/v1/email/addresses"),
    ("POST", "/v1/email/addresses"): _new_support_address,
    ("PATCH", "/v1/email/addresses/{address_id}"): _fresh_support_address,
    ("DELETE", "/v1/email/addresses/{address_id}"): _fresh_support_address,
    ("POST", "/v1/email/inbound"): _a_mail,
    ("GET", "/v1/chat/sites"): _fixed("/v1/chat/sites"),
    ("GET", "/v1/chat/sites/{site_id}"): _fresh_chat_site,
    ("POST", "/v1/chat/sites"): _new_chat_site,
    ("PATCH", "/v1/chat/sites/{site_id}"): _fresh_chat_site,
    ("DELETE", "/v1/chat/sites/{site_id}"): _fresh_chat_site,
    ("POST", "/v1/chat/sites/{site_id}/secret"): _a_chat_sites_secret,
    ("POST", "/v1/interactions/{interaction_id}/replies"): _an_email_held,
    ("GET", "/v1/interactions/{interaction_id}/messages"): _messages_of_one_held,
    ("GET", "/v1/interactions/{interaction_id}/attachments/{attachment_id}"): (
        _an_attachment_of_one_held
    ),
    ("GET", "/v1/voice/calls"): _fixed("/v1/voice/calls"),
    ("GET", "/v1/voice/calls/{call_id}"): _a_call_record,
    ("POST", "/v1/complaints"): _new_complaint,
    ("GET", "/v1/complaints"): _fixed("/v1/complaints"),
    ("GET", "/v1/complaints/{complaint}"): _on_complaint("", None),
    ("GET", "/v1/complaints/{complaint}/timeline"): _on_complaint("/timeline", None),
    ("POST", "/v1/complaints/{complaint}/actions/{action}"): _a_complaint_to_confirm,
    ("PATCH", "/v1/complaints/{complaint}"): _on_complaint("", {"severity": "critical"}),
    ("POST", "/v1/complaints/{complaint}/notes"): _on_complaint("/notes", {"text": "called"}),
    ("POST", "/v1/complaints/{complaint}/interactions"): _another_interaction_to_link,
    ("POST", "/v1/complaints/{complaint}/acknowledgement"): _on_complaint(
        "/acknowledgement", {"said": True}, channel="voice"
    ),
    ("POST", "/v1/complaints/{complaint}/corrective-actions"): _a_complaint_at_improve,
    ("GET", "/v1/complaints/corrective-actions"): _fixed("/v1/complaints/corrective-actions"),
    ("POST", "/v1/complaints/corrective-actions/{action_id}/done"): _a_corrective_action,
    ("GET", "/v1/complaints/categories"): _fixed("/v1/complaints/categories"),
    ("GET", "/v1/complaints/policy"): _fixed("/v1/complaints/policy"),
    ("PUT", "/v1/complaints/policy"): _the_policy,
    ("POST", "/v1/complaints/categories"): _named(
        "/v1/complaints/categories", "category", kind="complaint"
    ),
    ("PATCH", "/v1/complaints/categories/{category_id}"): _a_category,
    ("GET", "/v1/complaints/report"): _fixed("/v1/complaints/report"),
    ("GET", "/v1/reports/queues"): _fixed("/v1/reports/queues"),
    ("GET", "/v1/reports/agents"): _fixed("/v1/reports/agents"),
    ("GET", "/v1/complaints/report.csv"): _fixed("/v1/complaints/report.csv"),
    ("GET", "/metrics"): _fixed("/metrics"),
}


def test_the_table_names_every_endpoint_once(app: FastAPI) -> None:
    served = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    documented = [endpoint for row in table() for endpoint in row.endpoints]
    assert len(documented) == len(set(documented)), "an endpoint is in two rows"
    http = {endpoint for endpoint in documented if endpoint[0] != "WS"}
    assert http == served - OPEN - SIGNED
    listed = API_PAGE.read_text().split("## Who may do what", 1)[1]
    assert all(f"`{method} {path}`" in listed for method, path in SIGNED | BY_LINK)
    pages = {
        (method, context.path)
        for context in iter_route_contexts(app.routes)
        for method in context.methods or ()
    }
    assert pages - served >= BY_LINK
    assert set(REQUESTS) == http, "each endpoint of the table needs a request here"


@pytest.mark.parametrize(("row", "method", "path"), HTTP_ENDPOINTS)
async def test_each_kind_of_caller_gets_what_the_table_says(
    floor: Floor, row: Row, method: str, path: str
) -> None:
    answers = {}
    for caller in CALLERS:
        url, body = await REQUESTS[method, path](floor)
        # Bytes go as they are (a raw message to the inbound webhook), anything else as JSON.
        sent = {"content": body} if isinstance(body, bytes) else {"json": body}
        response = await floor.client.request(method, url, **sent, headers=floor.callers[caller])
        answers[caller] = response
    for caller, response in answers.items():
        expected = expected_status(row.cells[caller])
        context = f"{caller}: {method} {path} ({row.what}): {response.text}"
        if expected is None:
            assert response.is_success, context
        else:
            assert response.status_code == expected, context
        if expected == 403:
            assert response.json()["error"] == "forbidden", context
            assert response.json()["detail"], context
