"""An email offered to a desk carries its messages in the screen pop: what the customer wrote,
with its attachments to download, read by the statement that writes the offer and read alike
for a replayed offer; the latest few only, and long texts cut with a flag."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app.desk import screen_pop
from app.interactions.history import MESSAGE_TEXT_SHOWN, MESSAGES_SHOWN
from tests.channels.email.conftest import Mailbox, mail, open_desk
from tests.channels.email.test_mail_in import interactions_of
from tests.desk.conftest import Desk
from tests.support import login, served_in_loop, until_the_directory_holds

Headers = dict[str, str]
CUSTOMER = "li.wei@customer.example"
PASSWORD = "correct horse battery"


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The app on a loopback port, in the test's loop: one replica, whose matcher leads."""
    async with served_in_loop(app) as base_url:
        yield base_url


async def available_agent(
    client: httpx.AsyncClient, admin: Headers, served: str, name: str
) -> tuple[Headers, Desk]:
    """An agent who takes email, with a desk open (on the app at `served`) and available."""
    body = {
        "username": name,
        "display_name": name.title(),
        "password": PASSWORD,
        "capacity": {"email": 2},
    }
    made = await client.post("/v1/agents", json=body, headers=admin)
    assert made.status_code == 201, made.text
    headers = await login(client, name, PASSWORD)
    desk = await open_desk(client, served, headers)
    await desk.send(type="set_state", state="available")
    assert (await desk.next("ack"))["of"] == "set_state"
    return headers, desk


def complaint(number: int) -> EmailMessage:
    message = mail(
        f"您好，发票金额错了。\nThe amount on invoice {number} is wrong.",
        subject=f"Invoice {number}",
    )
    message.add_attachment(
        "发票".encode() * 100, maintype="application", subtype="pdf", filename="发票.pdf"
    )
    return message


def assert_shows(pop: dict[str, Any], number: int) -> dict[str, Any]:
    """The pop shows the complaint `number` as its one message; its attachment."""
    [message] = pop["messages"]
    assert message["text"].startswith(
        f"您好，发票金额错了。\nThe amount on invoice {number} is wrong."
    )
    assert not message["text_cut"]
    assert (message["direction"], message["kind"]) == ("inbound", "new_thread")
    assert (message["sender"], message["sender_name"]) == (CUSTOMER, "Li Wei")
    assert message["subject"] == f"Invoice {number}"
    assert (message["dropped"], message["mentions"]) == ([], None)
    [attachment] = message["attachments"]
    assert (attachment["filename"], attachment["size"]) == ("发票.pdf", 600)
    found: dict[str, Any] = attachment
    return found


async def test_an_offered_email_shows_the_customers_message_in_the_screen_pop_live_and_replayed(
    app: FastAPI,
    mailbox: Mailbox,
    client: httpx.AsyncClient,
    admin: Headers,
    connection: asyncpg.Connection,
    served: str,
) -> None:
    mei, desk = await available_agent(client, admin, served, "mei")
    mei_id = (await client.get("/v1/agents/me", headers=mei)).json()["id"]

    # The first is offered by a pass (the matcher has read no queue's settings yet).
    assert (await mailbox.send(complaint(1))).code == 250
    first = await desk.next("offer")
    attachment = assert_shows(first["screen_pop"], 1)
    # The second by the very statement that writes it, before its message is attached to it.
    await until_the_directory_holds(app, connection, mei_id)
    assert (await mailbox.send(complaint(2))).code == 250
    second = await desk.next("offer")
    assert_shows(second["screen_pop"], 2)

    download = await client.get(
        f"/v1/interactions/{first['interaction_id']}/attachments/{attachment['id']}",
        headers=admin,
    )
    assert download.content == "发票".encode() * 100
    # The desk reconnects: the offers, still pending, come again before `ready` (as what the
    # agent holds now), with the same messages.
    again = await open_desk(client, served, mei, last_event_id=second["event_id"])
    replayed = [frame for frame in again.frames if frame["type"] == "offer"]
    assert [offer["offer_id"] for offer in replayed] == [first["offer_id"], second["offer_id"]]
    assert [offer["screen_pop"]["messages"] for offer in replayed] == [
        first["screen_pop"]["messages"],
        second["screen_pop"]["messages"],
    ]


async def test_the_screen_pop_shows_the_latest_messages_oldest_first_with_long_texts_cut(
    mailbox: Mailbox, connection: asyncpg.Connection
) -> None:
    assert (await mailbox.send(mail("The first of many."))).code == 250
    [interaction] = await interactions_of(connection, CUSTOMER)
    start = datetime.now(UTC) + timedelta(minutes=1)
    texts = [f"Message {n}." for n in range(MESSAGES_SHOWN + 4)]
    texts[-1] = "长" * (MESSAGE_TEXT_SHOWN + 1)
    for n, text in enumerate(texts):
        await connection.execute(
            "INSERT INTO interaction_messages (id, interaction_id, direction, kind,"
            " dedupe_key, text, received_at) VALUES ($1, $2, 'inbound', 'reply', $3, $4, $5)",
            uuid.uuid4(),
            interaction["id"],
            f"test:{n}",
            text,
            start + timedelta(seconds=n),
        )

    pop = await screen_pop.read(connection, interaction["id"], screen_pop.routing_of({}))

    shown: list[Any] = pop.messages
    assert [m.text for m in shown[:-1]] == texts[-MESSAGES_SHOWN:-1]
    assert [m.text_cut for m in shown] == [False] * (MESSAGES_SHOWN - 1) + [True]
    assert shown[-1].text == "长" * MESSAGE_TEXT_SHOWN
