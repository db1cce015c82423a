"""An agent answers by mail, over HTTP or from the desk socket: the reply goes out through the
outbox to a real SMTP sink standing in for the relay, threads as mail clients thread, and the
customer's answer to it comes back into the same interaction; attachments are downloaded only by
those who may see the interaction."""

from __future__ import annotations

import asyncio
import email
import json
import uuid
from collections.abc import Iterator
from email import policy
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx
import pytest

from app.core.settings import Settings
from tests.channels.email.conftest import Mailbox, mail, open_desk
from tests.channels.email.test_mail_in import interactions_of, messages_of
from tests.core.smtp_sink import Sink, free_port
from tests.desk.conftest import Desk
from tests.support import LiveServer, login

Headers = dict[str, str]
CUSTOMER = "li.wei@customer.example"
CORPUS = Path(__file__).parent / "corpus"
PASSWORD = "correct horse battery"


@pytest.fixture
def relay_port() -> int:
    """Where the relay listens: the `relay` fixture's sink, or one a test starts itself."""
    return free_port()


@pytest.fixture
def relay(relay_port: int) -> Iterator[Sink]:
    with Sink.running(relay_port) as sink:
        yield sink


@pytest.fixture
def settings(settings: Settings, relay_port: int) -> Settings:
    """The mail-in settings, with the relay replies go out through at `relay_port`, tried
    again within a fraction of a second while it is down."""
    return settings.model_copy(
        update={
            "smtp_relay_host": "127.0.0.1",
            "smtp_relay_port": relay_port,
            "smtp_relay_starttls": False,
            "outbox_backoff_seconds": 0.2,
            "outbox_max_backoff_seconds": 1.0,
        }
    )


async def agent_holding(
    client: httpx.AsyncClient,
    admin: Headers,
    connection: asyncpg.Connection,
    name: str,
    interaction_id: uuid.UUID,
) -> Headers:
    """An agent, logged in, who holds the interaction (assigned as an accept leaves it)."""
    body = {"username": name, "display_name": name.title(), "password": PASSWORD}
    made = await client.post("/v1/agents", json=body, headers=admin)
    assert made.status_code == 201, made.text
    await connection.execute(
        "UPDATE interactions SET state = 'assigned', agent_id = $2::text::uuid,"
        " assigned_at = now() WHERE id = $1",
        interaction_id,
        made.json()["id"],
    )
    return await login(client, name, PASSWORD)


async def first_interaction(connection: asyncpg.Connection, sender: str) -> uuid.UUID:
    [interaction] = await interactions_of(connection, sender)
    return cast(uuid.UUID, interaction["id"])


async def thread_mei_holds(
    mailbox: Mailbox, client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> tuple[uuid.UUID, Headers]:
    """Li Wei's first mail (Message-ID <first@customer.example>), held by Mei: its
    interaction, and Mei's headers."""
    assert (await mailbox.send(mail(message_id="<first@customer.example>"))).code == 250
    interaction_id = await first_interaction(connection, CUSTOMER)
    return interaction_id, await agent_holding(client, admin, connection, "mei", interaction_id)


async def reply_once(
    client: httpx.AsyncClient, interaction_id: uuid.UUID, headers: Headers, delivery: str
) -> dict[str, Any]:
    """The interaction's one reply, once `GET .../messages` shows it with `delivery`."""
    async with asyncio.timeout(10):
        while True:
            listed = await client.get(
                f"/v1/interactions/{interaction_id}/messages", headers=headers
            )
            outbound = [m for m in listed.json()["items"] if m["direction"] == "outbound"]
            if outbound and outbound[0]["delivery"] == delivery:
                [reply] = outbound
                found: dict[str, Any] = reply
                return found
            await asyncio.sleep(0.05)


async def me(client: httpx.AsyncClient, headers: Headers) -> dict[str, Any]:
    """The agent of `headers`, as `GET /v1/agents/me` shows it."""
    found = await client.get("/v1/agents/me", headers=headers)
    assert found.status_code == 200, found.text
    agent: dict[str, Any] = found.json()
    return agent


async def test_a_reply_goes_out_threaded_and_the_customers_answer_comes_back_to_it(
    mailbox: Mailbox,
    client: httpx.AsyncClient,
    admin: Headers,
    connection: asyncpg.Connection,
    relay: Sink,
) -> None:
    interaction_id, mei = await thread_mei_holds(mailbox, client, admin, connection)

    sent = await client.post(
        f"/v1/interactions/{interaction_id}/replies",
        json={"text": "您好，发票已更正。Your invoice is corrected."},
        headers=mei,
    )

    assert sent.status_code == 201, sent.text
    assert sent.json()["delivery"] == "pending"
    [delivery] = await relay.until_delivered(CUSTOMER)
    answer = email.message_from_bytes(delivery.content, policy=policy.default)
    token = await connection.fetchval(
        "SELECT reply_token FROM interactions WHERE id = $1", interaction_id
    )
    assert answer["In-Reply-To"] == "<first@customer.example>"
    assert "<first@customer.example>" in answer["References"]
    assert answer["Reply-To"].addresses[0].addr_spec == f"support+{token}@example.com"
    assert answer["Subject"] == f"Re: Invoice 42 [#{token}]"
    assert answer["Message-ID"] == f"<{sent.json()['channel_message_id']}>"
    body = answer.get_body(preferencelist=("plain",))
    assert body is not None
    assert "您好，发票已更正。" in body.get_content()

    await reply_once(client, interaction_id, mei, "sent")  # the outbox says what the relay did

    thanks = mail("Thanks!", In_Reply_To=str(answer["Message-ID"]), subject=answer["Subject"])
    assert (await mailbox.send(thanks)).code == 250
    messages = await messages_of(connection)
    assert [m["interaction_id"] for m in messages] == [interaction_id] * 3
    assert [m["direction"] for m in messages] == ["inbound", "outbound", "inbound"]


async def test_a_refused_reply_is_shown_dead_with_the_relays_words(
    mailbox: Mailbox,
    client: httpx.AsyncClient,
    admin: Headers,
    connection: asyncpg.Connection,
    relay: Sink,
) -> None:
    assert (await mailbox.send(mail())).code == 250
    interaction_id = await first_interaction(connection, CUSTOMER)
    mei = await agent_holding(client, admin, connection, "mei", interaction_id)
    relay.refuse_recipient(CUSTOMER, "550 5.1.1 <li.wei@customer.example>: no such user")

    sent = await client.post(
        f"/v1/interactions/{interaction_id}/replies", json={"text": "Hello"}, headers=mei
    )

    assert sent.status_code == 201, sent.text
    outbound = await reply_once(client, interaction_id, mei, "dead")
    assert "no such user" in outbound["delivery_error"]
    assert outbound["text"] == "Hello"  # what the agent wrote is kept


async def test_only_those_who_may_see_it_answer_it_and_only_while_it_is_held(
    mailbox: Mailbox, client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    assert (await mailbox.send(mail())).code == 250
    interaction_id = await first_interaction(connection, CUSTOMER)
    await agent_holding(client, admin, connection, "mei", interaction_id)
    tom = await agent_holding(client, admin, connection, "tom", uuid.uuid4())  # holds nothing
    await connection.execute(
        "UPDATE interactions SET state = 'completed', ended_at = now() WHERE id = $1",
        interaction_id,
    )
    path = f"/v1/interactions/{interaction_id}/replies"

    not_his = await client.post(path, json={"text": "Hi"}, headers=tom)
    over = await client.post(path, json={"text": "Hi"}, headers=admin)
    empty = await client.post(path, json={"text": ""}, headers=admin)

    assert not_his.status_code == 403
    assert (over.status_code, over.json()["error"]) == (409, "cannot_reply")
    assert "completed" in over.json()["detail"]
    assert empty.status_code == 422


async def test_an_attachment_is_downloaded_whole_and_only_by_those_who_may_see_it(
    mailbox: Mailbox, client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection
) -> None:
    raw = (CORPUS / "foxmail_gbk_complaint.eml").read_bytes()
    assert (await mailbox.send(raw)).code == 250
    interaction_id = await first_interaction(connection, "wangzhe@163.com")
    mei = await agent_holding(client, admin, connection, "mei", interaction_id)
    tom = await agent_holding(client, admin, connection, "tom", uuid.uuid4())
    listed = await client.get(f"/v1/interactions/{interaction_id}/messages", headers=mei)
    [message] = listed.json()["items"]
    first: dict[str, Any] = message["attachments"][0]
    path = f"/v1/interactions/{interaction_id}/attachments/{first['id']}"
    stored = await connection.fetchval(
        "SELECT data FROM message_attachments WHERE id = $1", uuid.UUID(first["id"])
    )

    got = await client.get(path, headers=mei)
    refused = await client.get(path, headers=tom)
    elsewhere = await client.get(
        f"/v1/interactions/{uuid.uuid4()}/attachments/{first['id']}", headers=admin
    )

    assert got.status_code == 200
    assert got.content == stored
    assert len(got.content) == first["size"]
    assert got.headers["content-disposition"].startswith("attachment; filename*=UTF-8''")
    assert refused.status_code == 403
    assert elsewhere.status_code == 404


async def test_a_queue_that_acknowledges_does_so_once_per_thread_as_automatic_mail(
    mailbox: Mailbox, client: httpx.AsyncClient, admin: Headers, relay: Sink
) -> None:
    [address] = (await client.get("/v1/email/addresses", headers=admin)).json()["items"]
    turned_on = await client.patch(
        f"/v1/email/addresses/{address['id']}", json={"acknowledge": True}, headers=admin
    )
    assert turned_on.status_code == 200, turned_on.text

    assert (await mailbox.send(mail(message_id="<first@customer.example>"))).code == 250
    [ack] = await relay.until_delivered(CUSTOMER)
    answer = email.message_from_bytes(ack.content, policy=policy.default)
    more = mail("And another thing.", In_Reply_To="<first@customer.example>")
    assert (await mailbox.send(more)).code == 250
    other = mail("A new question.", message_id="<second@customer.example>", subject="Other")
    assert (await mailbox.send(other)).code == 250
    acks = await relay.until_delivered(CUSTOMER, count=2)

    assert ack.mail_from == "<>"  # the null sender: no bounce comes back (RFC 3834)
    assert answer["Auto-Submitted"] == "auto-replied"
    assert answer["In-Reply-To"] == "<first@customer.example>"
    text = answer.get_body(preferencelist=("plain",))
    assert text is not None
    assert "我们已收到您的邮件" in text.get_content()
    # The reply in the first thread drew none; the second thread its own.
    assert [email.message_from_bytes(a.content)["In-Reply-To"] for a in acks] == [
        "<first@customer.example>",
        "<second@customer.example>",
    ]


async def test_an_agent_replies_from_the_desk_and_the_reply_goes_out_threaded(
    mailbox: Mailbox,
    client: httpx.AsyncClient,
    admin: Headers,
    connection: asyncpg.Connection,
    relay: Sink,
    live_server: LiveServer,
) -> None:
    interaction_id, mei = await thread_mei_holds(mailbox, client, admin, connection)
    desk = await open_desk(client, live_server, mei)

    await desk.send(type="reply", interaction_id=str(interaction_id), text="已更正。Corrected.")

    ack = await desk.next("ack")
    assert ack["of"] == "reply"
    assert ack["detail"]["delivery"] == "pending"
    [delivery] = await relay.until_delivered(CUSTOMER)
    answer = email.message_from_bytes(delivery.content, policy=policy.default)
    assert answer["In-Reply-To"] == "<first@customer.example>"
    assert answer["Message-ID"] == f"<{ack['detail']['channel_message_id']}>"
    body = answer.get_body(preferencelist=("plain",))
    assert body is not None
    assert "已更正。Corrected." in body.get_content()
    reply = await reply_once(client, interaction_id, mei, "sent")
    assert reply["id"] == ack["detail"]["message_id"]
    assert reply["sender_name"] == f"user:{(await me(client, mei))['user_id']}"


async def answer_to(desk: Desk) -> dict[str, Any]:
    """The ack or error that answers the desk's last action (other frames are skipped)."""
    async with asyncio.timeout(10):
        while True:
            frame: dict[str, Any] = json.loads(await desk.socket.recv())
            desk.frames.append(frame)
            if frame["type"] in {"ack", "error"}:
                return frame


async def test_only_the_holder_replies_from_the_desk_and_a_bad_reply_is_refused(
    mailbox: Mailbox,
    client: httpx.AsyncClient,
    admin: Headers,
    connection: asyncpg.Connection,
    live_server: LiveServer,
) -> None:
    assert (await mailbox.send(mail())).code == 250
    interaction_id = await first_interaction(connection, CUSTOMER)
    mei = await agent_holding(client, admin, connection, "mei", interaction_id)
    tom = await agent_holding(client, admin, connection, "tom", uuid.uuid4())  # holds nothing
    toms_desk = await open_desk(client, live_server, tom)
    meis_desk = await open_desk(client, live_server, mei)
    reply = {"type": "reply", "interaction_id": str(interaction_id)}

    await toms_desk.send(**reply, text="Hello from Tom")
    not_his = await answer_to(toms_desk)
    await meis_desk.send(**reply, text="")
    empty = await answer_to(meis_desk)
    await meis_desk.send(**reply, text="Hello\u0000")
    nul = await answer_to(meis_desk)
    await connection.execute(
        "UPDATE interactions SET state = 'completed', ended_at = now() WHERE id = $1",
        interaction_id,
    )
    await meis_desk.send(**reply, text="Too late")
    over = await answer_to(meis_desk)

    assert (not_his["type"], not_his.get("error")) == ("error", "forbidden"), not_his
    assert not_his["of"] == "reply"
    assert [empty["type"], nul["type"], over["type"]] == ["error"] * 3
    assert (empty["error"], nul["error"]) == ("validation_error", "validation_error")
    assert empty["detail"].startswith("reply.text: ")
    assert nul["detail"].startswith("reply.text: ")
    assert (over["error"], over["of"]) == ("cannot_reply", "reply")
    assert "completed" in over["detail"]
    # Every refusal wrote nothing: the customer's message is the interaction's only one.
    assert [m["direction"] for m in await messages_of(connection)] == ["inbound"]


async def test_a_reply_waits_while_the_relay_is_down_and_goes_once_when_it_is_back(
    mailbox: Mailbox,
    client: httpx.AsyncClient,
    admin: Headers,
    connection: asyncpg.Connection,
    relay_port: int,
) -> None:
    interaction_id, mei = await thread_mei_holds(mailbox, client, admin, connection)

    # Nothing listens at the relay's port yet.
    sent = await client.post(
        f"/v1/interactions/{interaction_id}/replies",
        json={"text": "Your refund is on its way."},
        headers=mei,
    )

    assert sent.status_code == 201, sent.text
    waiting = await reply_once(client, interaction_id, mei, "failed")
    assert waiting["text"] == "Your refund is on its way."  # kept, to be tried again
    assert waiting["delivery_error"].startswith(f"the relay 127.0.0.1:{relay_port}: ")
    with Sink.running(relay_port) as relay:
        # Nobody wakes the courier: its own retry, come due, finds the relay up.
        [delivery] = await relay.until_delivered(CUSTOMER)
        gone = await reply_once(client, interaction_id, mei, "sent")
        assert len(relay.deliveries) == 1  # once sent, it is not sent again
    answer = email.message_from_bytes(delivery.content, policy=policy.default)
    assert answer["Message-ID"] == f"<{sent.json()['channel_message_id']}>"
    assert answer["In-Reply-To"] == "<first@customer.example>"
    assert gone["id"] == sent.json()["message_id"]
    attempts = await connection.fetchval(
        "SELECT attempts FROM outbox_messages WHERE dedupe_key = $1", f"reply:{gone['id']}"
    )
    assert attempts >= 2
