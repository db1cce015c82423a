"""Complaints by mail, over real SMTP both ways: a new thread to a complaints address raises a
complaint at step 1 (once, however often the mail is delivered); the acknowledgement of step 2
goes out on the customer's thread with the reference in its subject; a later mail naming the
reference is linked to the complaint instead of raising another."""

from __future__ import annotations

import email
import uuid
from email import policy
from typing import Any

import asyncpg
import httpx
import pytest

from tests.channels.email.conftest import SUPPORT, Mailbox, mail
from tests.channels.email.test_replies import CUSTOMER, relay, relay_port, settings  # noqa: F401
from tests.core.smtp_sink import Sink
from tests.support import login

pytestmark = pytest.mark.asyncio

Headers = dict[str, str]
COMPLAINTS_ADDRESS = "complaints@example.com"


async def complaints_address(client: httpx.AsyncClient, admin: Headers, mailbox: Mailbox) -> None:
    body = {"address": COMPLAINTS_ADDRESS, "queue_id": str(mailbox.queue_id), "complaints": True}
    added = await client.post("/v1/email/addresses", json=body, headers=admin)
    assert added.status_code == 201, added.text
    assert added.json()["complaints"] is True


async def complaints_of(client: httpx.AsyncClient, admin: Headers) -> list[dict[str, Any]]:
    listed = await client.get("/v1/complaints", headers=admin)
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


async def test_a_mail_to_the_complaints_address_raises_one_complaint_at_step_1(
    mailbox: Mailbox, client: httpx.AsyncClient, admin: Headers
) -> None:
    await complaints_address(client, admin, mailbox)
    letter = mail(
        "The engineer did not come on Tuesday and nobody called.",
        subject="Missed appointment",
        to=COMPLAINTS_ADDRESS,
        message_id="<missed@customer.example>",
    )
    assert (await mailbox.send(letter, to=[COMPLAINTS_ADDRESS])).code == 250
    assert (await mailbox.send(letter, to=[COMPLAINTS_ADDRESS])).code == 250  # a retry
    [summary] = await complaints_of(client, admin)
    assert (summary["step"], summary["channel"], summary["summary"]) == (
        "intake",
        "email",
        "Missed appointment",
    )
    found = await client.get(f"/v1/complaints/{summary['id']}", headers=admin)
    complaint = found.json()
    assert complaint["original_message"].strip() == (
        "The engineer did not come on Tuesday and nobody called."
    )
    assert complaint["raised_by"] == f"customer:{complaint['customer_id']}"
    assert complaint["remedy_sought"] == ""  # asked by an agent, not guessed
    # The same mail to the plain support address is work, not a complaint.
    plain = mail("Where is my engineer?", subject="Engineer", to=SUPPORT)
    assert (await mailbox.send(plain)).code == 250
    assert len(await complaints_of(client, admin)) == 1


async def test_the_acknowledgement_goes_out_on_the_thread_and_a_mail_naming_it_is_linked(
    mailbox: Mailbox,
    client: httpx.AsyncClient,
    admin: Headers,
    connection: asyncpg.Connection,
    relay: Sink,  # noqa: F811
) -> None:
    await complaints_address(client, admin, mailbox)
    first = mail("You billed me twice.", subject="Billed twice", to=COMPLAINTS_ADDRESS)
    assert (await mailbox.send(first, to=[COMPLAINTS_ADDRESS])).code == 250
    [summary] = await complaints_of(client, admin)
    agent = await an_agent(client, admin)
    assigned = await client.post(
        f"/v1/complaints/{summary['id']}/actions/assign",
        json={"owner_agent_id": agent["id"]},
        headers=admin,
    )
    assert assigned.status_code == 200, assigned.text
    completed = await client.post(
        f"/v1/complaints/{summary['reference']}/actions/complete_intake",
        json={"remedy_sought": "Refund the second charge"},
        headers=agent["headers"],
    )
    assert completed.status_code == 200, completed.text
    assert completed.json()["acknowledged_by"] == "mail"

    [delivery] = await relay.until_delivered(CUSTOMER)
    ack = email.message_from_bytes(delivery.content, policy=policy.default)
    assert f"[{summary['reference']}] Billed twice" in ack["Subject"]
    body = ack.get_body(preferencelist=("plain",))
    assert body is not None
    assert summary["reference"] in body.get_content()

    # A new mail to the plain support address that quotes the reference joins the complaint.
    again = mail(f"About {summary['reference']}: still nothing.", subject="Still waiting")
    assert (await mailbox.send(again)).code == 250
    complaint = (await client.get(f"/v1/complaints/{summary['id']}", headers=admin)).json()
    assert len(complaint["interaction_ids"]) == 2
    assert len(await complaints_of(client, admin)) == 1
    customer = await connection.fetchval(
        "SELECT customer_id FROM interactions WHERE id = $1",
        uuid.UUID(complaint["interaction_ids"][1]),
    )
    assert str(customer) == complaint["customer_id"]


async def an_agent(client: httpx.AsyncClient, admin: Headers) -> dict[str, Any]:
    name = f"mei-{uuid.uuid4().hex[:6]}"
    body = {"username": name, "display_name": "Mei", "password": "correct horse battery"}
    made = await client.post("/v1/agents", json=body, headers=admin)
    assert made.status_code == 201, made.text
    return {"id": made.json()["id"], "headers": await login(client, name, "correct horse battery")}
