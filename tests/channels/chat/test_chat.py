"""Web chat end to end: customers on real sockets with their page's Origin, agents on real
desks, a real PostgreSQL behind: identity, origin, limits, messages both ways with typing and
receipts, resume, abandon, three chats on one agent, after hours."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app.channels.chat.sweep import sweep_once
from tests.channels.chat.conftest import Customer, Site, chat_agent, make_site
from tests.desk.conftest import Desk
from tests.support import held_by, login

Headers = dict[str, str]
pytestmark = pytest.mark.asyncio


async def say(customer: Customer, text: str, client_id: str | None = None) -> dict[str, Any]:
    await customer.send(type="message", client_id=client_id or uuid.uuid4().hex, text=text)
    return await customer.next("stored")


async def taken(desk: Desk) -> dict[str, Any]:
    """The desk's next offer, accepted: the offer."""
    offer = await desk.next("offer")
    await desk.send(type="accept", offer_id=offer["offer_id"])
    assert (await desk.next("ack"))["of"] == "accept"
    return offer


async def until_value(
    connection: asyncpg.Connection, query: str, argument: object, wanted: object
) -> None:
    """Until the query's value is `wanted` (polled: it is another task's write)."""
    async with asyncio.timeout(10):
        while True:
            if await connection.fetchval(query, argument) == wanted:
                return
            await asyncio.sleep(0.02)


STATE = "SELECT state FROM interactions WHERE id = $1"


async def test_a_visitor_and_an_agent_chat_both_ways_with_typing_and_receipts(
    site: Site, client: httpx.AsyncClient, admin: Headers, served: str
) -> None:
    _, desk = await chat_agent(client, admin, served, "mei")
    customer, welcome = await site.customer()
    assert welcome["open"] is True
    assert welcome["chat"] is None
    assert welcome["visitor_token"].startswith("cvt_")

    first = await say(customer, "Hello, my invoice is wrong", client_id="c1")
    offer = await taken(desk)
    assert offer["channel"] == "chat"
    [shown] = offer["screen_pop"]["messages"]
    assert shown["text"] == "Hello, my invoice is wrong"
    assert (await customer.next("agent_joined"))["agent"] == "Mei"
    chat_id = offer["interaction_id"]
    assert first["chat_id"] == chat_id
    # The offer showed the first line to the agent: it is delivered.
    await customer.seen("receipt", message_id=first["message_id"], delivered=True)

    # The agent types, then answers: the customer sees both, and the line is delivered.
    await desk.send(type="typing", interaction_id=chat_id, active=True)
    assert (await customer.next("typing"))["active"] is True
    await desk.send(type="reply", interaction_id=chat_id, text="Let me check that for you.")
    assert (await desk.next("ack"))["of"] == "reply"
    line = await customer.next("message")
    assert (line["sender"], line["agent"], line["text"]) == (
        "agent",
        "Mei",
        "Let me check that for you.",
    )
    delivered = await desk.next("receipt")
    assert delivered["message_ids"] == [line["message_id"]]
    assert (delivered["delivered"], delivered["read"]) == (True, False)
    await customer.send(type="read", message_id=line["message_id"])
    read = await desk.next("receipt")
    assert (read["message_ids"], read["read"]) == ([line["message_id"]], True)

    # The customer types and writes again: the desk gets both as they come.
    await customer.send(type="typing", active=True)
    typing = await desk.next("typing")
    assert (typing["interaction_id"], typing["active"]) == (chat_id, True)
    second = await say(customer, "It says 200 instead of 100")
    update = await desk.next("interaction_update")
    assert update["detail"]["text"] == "It says 200 instead of 100"
    assert update["detail"]["message_id"] == second["message_id"]
    await customer.seen("receipt", message_id=second["message_id"], delivered=True)

    # The agent ends it: the customer is told the chat is over.
    await desk.send(type="complete", interaction_id=chat_id, disposition="resolved")
    assert (await customer.next("closed"))["reason"]


async def test_a_resend_after_a_drop_is_stored_once(
    site: Site, connection: asyncpg.Connection
) -> None:
    customer, _ = await site.customer()
    once = await say(customer, "Are you there?", client_id="same")
    again = await say(customer, "Are you there?", client_id="same")
    assert again["message_id"] == once["message_id"]
    count = await connection.fetchval(
        "SELECT count(*) FROM interaction_messages WHERE interaction_id = $1",
        uuid.UUID(once["chat_id"]),
    )
    assert count == 1


async def test_a_signed_in_customer_is_known_and_a_wrong_signature_is_refused(
    site: Site, client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    known = await client.post(
        "/v1/customers",
        json={"name": "Jonas Meyer", "tier": "platinum"},
        headers=admin,
    )
    assert known.status_code == 201, known.text
    customer_id = known.json()["id"]
    added = await client.post(
        f"/v1/customers/{customer_id}/contact-points",
        json={"kind": "chat", "value": "shop:account-42"},
        headers=admin,
    )
    assert added.status_code == 201, added.text

    # The same browser was an anonymous visitor before (a chat of its own, ended): signed in
    # now, its next chat is Jonas's.
    anonymous, welcome = await site.customer()
    await say(anonymous, "Just looking")
    await anonymous.send(type="leave")
    await anonymous.closed()
    customer, _ = await site.customer(token=welcome["visitor_token"], identity="account-42")
    stored = await say(customer, "Hi, it is Jonas")
    held_by = await connection.fetchval(
        "SELECT customer_id::text FROM interactions WHERE id = $1", uuid.UUID(stored["chat_id"])
    )
    assert held_by == customer_id

    forged = await site.connect()
    await forged.send(
        type="hello",
        identity={"customer": "account-42", "signature": "0" * 64},
        visitor_token=None,
    )
    assert await forged.closed() == (4003, "identity signature does not match")


async def test_a_page_of_another_origin_is_refused(site: Site) -> None:
    foreign = await site.connect(origin="https://evil.example")
    code, reason = await foreign.closed()
    assert code == 1008
    assert "origin not allowed" in reason


async def test_a_visitor_over_the_sites_limit_is_told_when_to_go_on(
    app: FastAPI, client: httpx.AsyncClient, admin: Headers, served: str
) -> None:
    site = await make_site(app, client, admin, served, messages_per_minute=3)
    customer, _ = await site.customer()
    for n in range(3):
        await say(customer, f"message {n}")
    await customer.send(type="message", client_id="fourth", text="one too many")
    refused = await customer.next("error")
    assert (refused["of"], refused["error"]) == ("message", "rate_limited")
    assert "3 messages a minute" in refused["detail"]
    assert 0 < refused["retry_after_seconds"] <= 60


async def test_a_customer_who_drops_and_comes_back_resumes_with_what_they_missed(
    site: Site, client: httpx.AsyncClient, admin: Headers, served: str
) -> None:
    _, desk = await chat_agent(client, admin, served, "mei")
    customer, welcome = await site.customer()
    token = welcome["visitor_token"]
    stored = await say(customer, "My parcel is late")
    chat_id = (await taken(desk))["interaction_id"]
    await customer.next("agent_joined")
    await customer.socket.close()

    await desk.send(type="reply", interaction_id=chat_id, text="It left the depot today.")
    assert (await desk.next("ack"))["of"] == "reply"
    back, welcome = await site.customer(token=token)

    assert welcome["visitor_token"] == token
    assert welcome["chat"]["chat_id"] == chat_id
    assert welcome["chat"]["state"] == "assigned"
    assert welcome["chat"]["agent"] == "Mei"
    lines = [(m["sender"], m["text"]) for m in welcome["chat"]["messages"]]
    assert lines == [("customer", "My parcel is late"), ("agent", "It left the depot today.")]
    assert welcome["chat"]["messages"][0]["message_id"] == stored["message_id"]
    # And it goes on live.
    await desk.send(type="reply", interaction_id=chat_id, text="Anything else?")
    assert (await back.next("message"))["text"] == "Anything else?"


async def test_a_chat_whose_customer_stays_away_is_abandoned_with_a_line_saying_why(
    app: FastAPI, site: Site, connection: asyncpg.Connection
) -> None:
    customer, _ = await site.customer()
    stored = await say(customer, "Hello?")
    chat_id = uuid.UUID(stored["chat_id"])
    await customer.socket.close()
    replica = "SELECT replica_id FROM chats WHERE interaction_id = $1"
    await until_value(connection, replica, chat_id, None)
    # Still within the site's resume time: the sweep leaves it waiting.
    await sweep_once(app.state.pg, app.state.chats)
    assert (
        await connection.fetchval("SELECT state FROM interactions WHERE id = $1", chat_id)
        == "queued"
    )
    await connection.execute(
        "UPDATE chats SET customer_left_at = now() - interval '121 seconds'"
        " WHERE interaction_id = $1",
        chat_id,
    )

    assert await sweep_once(app.state.pg, app.state.chats) == 1

    assert (
        await connection.fetchval("SELECT state FROM interactions WHERE id = $1", chat_id)
        == "abandoned"
    )
    last = await connection.fetchrow(
        "SELECT kind, text FROM interaction_messages WHERE interaction_id = $1"
        " ORDER BY received_at DESC LIMIT 1",
        chat_id,
    )
    assert (last["kind"], last["text"]) == ("system", "the customer went away")


async def test_a_held_chat_that_goes_quiet_is_closed_for_the_customer(
    app: FastAPI,
    site: Site,
    client: httpx.AsyncClient,
    admin: Headers,
    served: str,
    connection: asyncpg.Connection,
) -> None:
    _, desk = await chat_agent(client, admin, served, "mei")
    customer, _ = await site.customer()
    await say(customer, "Hi")
    chat_id = uuid.UUID((await taken(desk))["interaction_id"])
    await customer.next("agent_joined")
    await connection.execute(
        "UPDATE chats SET last_message_at = now() - interval '11 minutes'"
        " WHERE interaction_id = $1",
        chat_id,
    )
    await connection.execute(
        "UPDATE interactions SET assigned_at = now() - interval '11 minutes' WHERE id = $1",
        chat_id,
    )

    assert await sweep_once(app.state.pg, app.state.chats) == 1

    closed = await customer.next("closed")
    assert closed["reason"] == "nobody wrote for a while"
    update = await desk.next("interaction_update")
    assert update["state"] in ("completed", "wrap_up")


async def test_one_agent_holds_three_chats_and_a_fourth_waits_its_turn(
    site: Site, client: httpx.AsyncClient, admin: Headers, served: str
) -> None:
    _, desk = await chat_agent(client, admin, served, "mei", chats=3)
    customers = []
    for n in range(3):
        customer, _ = await site.customer(name=f"Visitor {n}")
        await say(customer, f"Question {n}")
        await taken(desk)
        await customer.next("agent_joined")
        customers.append(customer)
    fourth, _ = await site.customer(name="Visitor 3")
    await say(fourth, "Question 3")

    waiting = await fourth.next("waiting")
    assert waiting["position"] == 1
    # Each of the three talks to the agent on its own.
    for n, customer in enumerate(customers):
        assert not any(f["type"] == "closed" for f in customer.frames), n


async def test_after_hours_the_widget_is_told_and_a_message_left_becomes_an_email(
    site: Site, client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    # Open one minute a week, at a time that is not now.
    hours = {"timezone": "UTC", "weekly": {"mon": [{"opens": "03:00", "closes": "03:01"}]}}
    closed = await client.patch(
        f"/v1/queues/{site.queue_id}", json={"business_hours": hours}, headers=admin
    )
    assert closed.status_code == 200, closed.text
    customer, welcome = await site.customer()
    if welcome["open"]:
        pytest.skip("the test ran in the one minute the queue is open")
    assert welcome["next_opening"] is not None

    await customer.send(type="message", client_id="x", text="Hello?")
    refused = await customer.next("error")
    assert (refused["of"], refused["error"]) == ("message", "closed")
    await customer.send(
        type="leave_message", email="Li.Wei@Example.com", text="Please call me about my bill."
    )
    await customer.next("left_message")

    row = await connection.fetchrow(
        "SELECT i.channel, i.queue_id, m.text, m.sender FROM interactions i"
        " JOIN interaction_messages m ON m.interaction_id = i.id"
    )
    assert (row["channel"], row["queue_id"]) == ("email", site.queue_id)
    assert (row["text"], row["sender"]) == ("Please call me about my bill.", "li.wei@example.com")


async def test_a_leave_ends_a_waiting_chat_as_abandoned(
    site: Site, connection: asyncpg.Connection
) -> None:
    customer, _ = await site.customer()
    stored = await say(customer, "Never mind")
    await customer.send(type="leave")
    code, _ = await customer.closed()
    assert code == 1000
    await until_value(connection, STATE, uuid.UUID(stored["chat_id"]), "abandoned")


async def test_an_agent_answers_a_chat_over_http_and_the_transcript_shows_its_receipts(
    site: Site, client: httpx.AsyncClient, admin: Headers, served: str
) -> None:
    mei, desk = await chat_agent(client, admin, served, "mei")
    customer, _ = await site.customer()
    await say(customer, "Is anyone there?")
    chat_id = (await taken(desk))["interaction_id"]

    sent = await client.post(
        f"/v1/interactions/{chat_id}/replies", json={"text": "Yes, Mei here."}, headers=mei
    )
    assert sent.status_code == 201, sent.text
    line = await customer.next("message")
    assert line["message_id"] == sent.json()["message_id"]
    await customer.send(type="read", message_id=line["message_id"])
    await desk.next("receipt")  # delivered
    await desk.next("receipt")  # read

    listed = await client.get(f"/v1/interactions/{chat_id}/messages", headers=mei)
    transcript = [(m["direction"], m["text"]) for m in listed.json()["items"]]
    assert transcript == [("inbound", "Is anyone there?"), ("outbound", "Yes, Mei here.")]
    reply = listed.json()["items"][1]
    assert reply["delivered_at"] is not None
    assert reply["read_at"] is not None


async def test_a_call_is_not_answered_in_writing(
    app: FastAPI, client: httpx.AsyncClient, admin: Headers
) -> None:
    customer = await client.post("/v1/customers", json={"name": "Ada"}, headers=admin)
    agent = await client.post(
        "/v1/agents",
        json={"username": "tom", "display_name": "Tom", "password": "correct horse battery"},
        headers=admin,
    )
    assert agent.status_code == 201, agent.text
    tom = await login(client, "tom", "correct horse battery")
    call = await held_by(app, client, admin, tom, customer.json()["id"], channel="voice")

    refused = await client.post(
        f"/v1/interactions/{call}/replies", json={"text": "Hello?"}, headers=tom
    )

    assert refused.status_code == 409
    assert refused.json()["error"] == "cannot_reply"
    assert "phone" in refused.json()["detail"]


async def test_a_page_view_keeps_no_visitor_until_they_write(
    site: Site, connection: asyncpg.Connection
) -> None:
    viewer, _ = await site.customer()
    await viewer.send(type="heartbeat")
    await viewer.socket.close()
    writer, welcome = await site.customer()
    assert await connection.fetchval("SELECT count(*) FROM chat_visitors") == 0

    await say(writer, "Hello")

    kept = await connection.fetch("SELECT id, token_hash FROM chat_visitors")
    assert len(kept) == 1
    # Their token finds them again: the same visitor, the same chat.
    _, again = await site.customer(token=welcome["visitor_token"])
    assert again["visitor_token"] == welcome["visitor_token"]
    assert again["chat"] is not None


async def test_a_chat_transferred_to_another_queue_waits_there_and_its_next_agent_joins(
    site: Site, client: httpx.AsyncClient, admin: Headers, served: str
) -> None:
    mei, mei_desk = await chat_agent(client, admin, served, "mei")
    customer, _ = await site.customer()
    await say(customer, "I need billing")
    chat_id = (await taken(mei_desk))["interaction_id"]
    assert (await customer.next("agent_joined"))["agent"] == "Mei"
    queue = await client.post("/v1/queues", json={"name": "billing-chat"}, headers=admin)
    assert queue.status_code == 201, queue.text

    await mei_desk.send(type="set_state", state="away")  # she takes no more, this included
    assert (await mei_desk.next("ack"))["of"] == "set_state"

    moved = await client.post(
        f"/v1/interactions/{chat_id}/transfer",
        json={"queue": "billing-chat", "note": "billing question"},
        headers=mei,
    )
    assert moved.status_code == 200, moved.text

    assert (await customer.next("waiting"))["position"] == 1
    _, tom_desk = await chat_agent(client, admin, served, "tom")
    await taken(tom_desk)
    assert (await customer.next("agent_joined"))["agent"] == "Tom"
    await tom_desk.send(type="reply", interaction_id=chat_id, text="Billing here.")
    assert (await customer.next("message"))["text"] == "Billing here."
