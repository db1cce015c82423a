"""Mail in, end to end: real SMTP to the app's listener (and the inbound webhook), a real
PostgreSQL behind it. Each message's fate is read back from the database once the listener
has answered: a 250 comes only after the message is stored (committed)."""

from __future__ import annotations

import asyncio
import pprint
import smtplib
import socket
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app.channels.email.listener import SmtpListener
from app.core.db import unit_of_work
from app.core.settings import Settings
from app.demo import CUSTOMERS, load_demo
from app.main import create_app
from tests.channels.email.conftest import MAX_BYTES, SUPPORT, Mailbox, mail
from tests.support import present_desk

Headers = dict[str, str]
pytestmark = pytest.mark.asyncio
CORPUS = Path(__file__).parent / "corpus"


async def interactions_of(connection: asyncpg.Connection, sender: str) -> list[dict[str, Any]]:
    rows = await connection.fetch(
        "SELECT i.* FROM interactions i JOIN contact_points p ON p.customer_id = i.customer_id"
        " WHERE p.kind = 'email' AND p.value = $1 ORDER BY i.created_at",
        sender,
    )
    return [dict(row) for row in rows]


async def messages_of(connection: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await connection.fetch("SELECT * FROM interaction_messages ORDER BY received_at")
    return [dict(row) for row in rows]


async def offer_of(connection: asyncpg.Connection, interaction_id: uuid.UUID) -> asyncpg.Record:
    """The interaction's offer, once routing has made it (at once, or by the matcher's pass)."""
    async with asyncio.timeout(10):
        while True:
            offer = await connection.fetchrow(
                "SELECT agent_id, state FROM offers WHERE interaction_id = $1", interaction_id
            )
            if offer is not None:
                return offer
            await asyncio.sleep(0.02)


async def test_a_new_message_becomes_an_email_interaction_offered_with_its_text(
    mailbox: Mailbox,
    client: httpx.AsyncClient,
    admin: Headers,
    connection: asyncpg.Connection,
) -> None:
    body = {"username": "mei", "display_name": "Mei", "capacity": {"email": 2}}
    made = await client.post("/v1/agents", json=body, headers=admin)
    assert made.status_code == 201, made.text
    mei = uuid.UUID(made.json()["id"])
    await present_desk(connection, mei)

    delivered = await mailbox.send(mail("My invoice is wrong.\nPlease fix it."))

    assert delivered.code == 250, delivered
    [interaction] = await interactions_of(connection, "li.wei@customer.example")
    assert interaction["channel"] == "email"
    assert interaction["queue_id"] == mailbox.queue_id
    assert interaction["subject"] == "Invoice 42"
    assert "My invoice is wrong." in interaction["summary"]
    assert interaction["reply_token"]
    offer = await offer_of(connection, interaction["id"])
    assert (offer["agent_id"], offer["state"]) == (mei, "pending")
    [message] = await messages_of(connection)
    assert message["interaction_id"] == interaction["id"]
    assert message["kind"] == "new_thread"
    assert "Please fix it." in message["text"]
    customer = await connection.fetchval(
        "SELECT name FROM customers WHERE id = $1", interaction["customer_id"]
    )
    assert customer == "Li Wei"


async def test_a_reply_threads_by_its_references_and_by_its_token(
    mailbox: Mailbox, connection: asyncpg.Connection
) -> None:
    first = mail(message_id="<first@customer.example>")
    assert (await mailbox.send(first)).code == 250
    [interaction] = await interactions_of(connection, "li.wei@customer.example")

    reply = mail("Any news?", subject="Re: Invoice 42", In_Reply_To="<first@customer.example>")
    assert (await mailbox.send(reply)).code == 250
    token = interaction["reply_token"]
    # The token in the envelope's plus address (the headers name only support@)...
    delivered = await mailbox.send(mail("Again"), to=[f"support+{token}@example.com"])
    assert delivered.code == 250, delivered
    # ... and in the subject.
    assert (await mailbox.send(mail("And again", subject=f"Re: [#{token}] Hi"))).code == 250

    assert len(await interactions_of(connection, "li.wei@customer.example")) == 1
    stored = await messages_of(connection)
    assert [m["interaction_id"] for m in stored] == [interaction["id"]] * 4
    assert [m["kind"] for m in stored] == ["new_thread", "reply", "reply", "reply"]
    events = await connection.fetch(
        "SELECT payload FROM events WHERE kind = 'interaction.message' AND subject_id = $1"
        " ORDER BY id",
        str(interaction["id"]),
    )
    assert [e["payload"]["message_id"] for e in events] == [str(m["id"]) for m in stored[1:]]


async def test_a_reply_to_a_thread_an_agent_holds_reaches_that_agents_desk(
    app: FastAPI,
    mailbox: Mailbox,
    client: httpx.AsyncClient,
    admin: Headers,
    connection: asyncpg.Connection,
) -> None:
    agent = {"username": "mei", "display_name": "Mei"}
    made = await client.post("/v1/agents", json=agent, headers=admin)
    assert made.status_code == 201, made.text
    mei = made.json()["id"]
    assert (await mailbox.send(mail(message_id="<first@customer.example>"))).code == 250
    [interaction] = await interactions_of(connection, "li.wei@customer.example")
    await connection.execute(
        "UPDATE interactions SET state = 'assigned', agent_id = $2::text::uuid,"
        " assigned_at = now() WHERE id = $1",
        interaction["id"],
        mei,
    )
    desk = app.state.hub.subscribe_agent(mei)
    try:
        reply = mail("Any news?", In_Reply_To="<first@customer.example>")
        assert (await mailbox.send(reply)).code == 250
        async with asyncio.timeout(10):
            heard = await desk.queue.get()
    finally:
        app.state.hub.unsubscribe(desk)
    [_, message] = await messages_of(connection)
    assert (heard.kind, heard.subject_id) == ("interaction.message", str(interaction["id"]))
    assert heard.payload["message_id"] == str(message["id"])


async def test_a_reply_from_another_address_does_not_thread(
    mailbox: Mailbox, connection: asyncpg.Connection
) -> None:
    assert (await mailbox.send(mail(message_id="<first@customer.example>"))).code == 250
    [theirs] = await interactions_of(connection, "li.wei@customer.example")
    # Someone else, a customer too, who has a thread of their own.
    assert (await mailbox.send(mail("Mine", sender="someone@else.example"))).code == 250
    forwarded = mail(
        "I saw this thread",
        sender="someone@else.example",
        In_Reply_To="<first@customer.example>",
        References="<first@customer.example>",
    )
    token = theirs["reply_token"]
    delivered = await mailbox.send(forwarded, to=[f"support+{token}@example.com"])
    assert delivered.code == 250, delivered

    [_, other] = await interactions_of(connection, "someone@else.example")
    assert other["customer_id"] != theirs["customer_id"]
    assert other["linked_to"] is None
    stored = await messages_of(connection)
    assert [m["kind"] for m in stored] == ["new_thread", "new_thread", "new_thread"]
    # It joins no thread of Li's, but shows it mentions one.
    assert [m["mentions"] for m in stored] == [None, None, theirs["id"]]


async def test_a_reply_to_a_completed_thread_opens_a_new_interaction_linked_to_it(
    mailbox: Mailbox, connection: asyncpg.Connection, client: httpx.AsyncClient, admin: Headers
) -> None:
    assert (await mailbox.send(mail(message_id="<first@customer.example>"))).code == 250
    [first] = await interactions_of(connection, "li.wei@customer.example")
    await connection.execute(
        "UPDATE interactions SET state = 'completed', ended_at = now() WHERE id = $1", first["id"]
    )
    reply = mail("It is still wrong", In_Reply_To="<first@customer.example>")
    assert (await mailbox.send(reply)).code == 250

    [was, now] = await interactions_of(connection, "li.wei@customer.example")
    assert was["state"] == "completed"
    assert now["linked_to"] == first["id"]
    assert now["state"] == "queued"
    shown = await client.get(f"/v1/interactions/{now['id']}", headers=admin)
    assert shown.json()["linked_to"] == str(first["id"])
    # A later reply to the first message joins the thread's newest interaction.
    again = mail("Hello?", References="<first@customer.example>")
    assert (await mailbox.send(again)).code == 250
    assert len(await interactions_of(connection, "li.wei@customer.example")) == 2
    assert (await messages_of(connection))[-1]["interaction_id"] == now["id"]


async def _email_agent(
    client: httpx.AsyncClient, admin: Headers, connection: asyncpg.Connection, name: str
) -> uuid.UUID:
    body = {"username": name.lower(), "display_name": name, "capacity": {"email": 2}}
    made = await client.post("/v1/agents", json=body, headers=admin)
    assert made.status_code == 201, made.text
    return uuid.UUID(made.json()["id"])


async def _both_present(connection: asyncpg.Connection, agents: Iterable[uuid.UUID]) -> None:
    """Their desks appear at once (one transaction): made present by hand, with no event, they
    are seen at the matcher directory's next read of everyone, which must not find one of them
    alone (the reply would go to her for want of the other)."""
    async with connection.transaction():
        for agent_id in agents:
            await present_desk(connection, agent_id)


@pytest.mark.parametrize("routed", ["at once", "by a pass"])
@pytest.mark.parametrize(("follow_up_days", "goes_to"), [(7, "Mei"), (1, "Ben")])
async def test_a_follow_up_goes_back_to_its_threads_agent_within_the_queues_days(
    app: FastAPI,
    mailbox: Mailbox,
    client: httpx.AsyncClient,
    admin: Headers,
    connection: asyncpg.Connection,
    routed: str,
    follow_up_days: int,
    goes_to: str,
) -> None:
    """Mei answered the thread two days ago; Ben has been idle longest. Within the queue's
    follow-up days the customer's reply goes back to Mei, after them to Ben, whether it is
    placed on arrival or by a later pass of the matcher."""
    body = {"follow_up_days": follow_up_days}
    patched = await client.patch(f"/v1/queues/{mailbox.queue_id}", json=body, headers=admin)
    assert patched.status_code == 200, patched.text
    agents = {name: await _email_agent(client, admin, connection, name) for name in ("Mei", "Ben")}
    assert (await mailbox.send(mail(message_id="<first@customer.example>"))).code == 250
    [first] = await interactions_of(connection, "li.wei@customer.example")
    await connection.execute(
        "UPDATE interactions SET state = 'completed', agent_id = $2,"
        " assigned_at = now() - interval '3 days', ended_at = now() - interval '2 days'"
        " WHERE id = $1",
        first["id"],
        agents["Mei"],
    )
    # Ben's idle time is set before the desks are present: the matcher's directory reads an
    # agent as it appears, and may not see a later change made by hand.
    await connection.execute(
        "UPDATE agents SET idle_since = now() - interval '1 hour' WHERE id = $1", agents["Ben"]
    )
    if routed == "at once":
        await _both_present(connection, agents.values())

    reply = mail("It is still wrong", In_Reply_To="<first@customer.example>")
    assert (await mailbox.send(reply)).code == 250
    [_, follow_up] = await interactions_of(connection, "li.wei@customer.example")
    assert follow_up["linked_to"] == first["id"]
    if routed == "by a pass":
        assert follow_up["state"] == "queued"
        await _both_present(connection, agents.values())
        app.state.matcher.wake()

    offer = await offer_of(connection, follow_up["id"])
    # This case failed once on a slow machine (Ben's offer where Mei's was due), and the cause
    # is not known: a failure shows what routing saw (captured output, shown whole).
    pprint.pprint(await _what_routing_saw(connection, agents))
    assert offer["agent_id"] == agents[goes_to]
    reason = await connection.fetchval(
        "SELECT reason FROM offers WHERE interaction_id = $1", follow_up["id"]
    )
    assert reason.startswith("follow-up: ") == (goes_to == "Mei"), reason


async def _what_routing_saw(
    connection: asyncpg.Connection, agents: dict[str, uuid.UUID]
) -> dict[str, Any]:
    """The offers made, the agents' rows and the interactions, by name where there is one."""
    names = {agent_id: name for name, agent_id in agents.items()}
    offers = await connection.fetch(
        "SELECT interaction_id, agent_id, state, reason, created_at FROM offers ORDER BY created_at"
    )
    rows = await connection.fetch(
        "SELECT a.id, a.state, a.idle_since, a.routing_version, p.last_seen_at"
        " FROM agents a LEFT JOIN agent_presence p ON p.agent_id = a.id"
    )
    interactions = await connection.fetch(
        "SELECT id, state, linked_to, agent_id, ended_at, created_at FROM interactions"
        " ORDER BY created_at"
    )
    return {
        "offers": [{**dict(o), "agent": names.get(o["agent_id"])} for o in offers],
        "agents": [{**dict(a), "name": names.get(a["id"])} for a in rows],
        "interactions": [dict(i) for i in interactions],
    }


@pytest.mark.parametrize(
    ("name", "subject", "says", "files"),
    [
        (
            "foxmail_gbk_complaint.eml",
            "投诉：账单多扣款（王喆）",
            "上个月的账单多扣了我两百元",
            ["发票-王喆.pdf", "截图.jpg"],
        ),
        ("outlook_big5_folded_subject.eml", "退款申請已經兩週未處理，請盡快回覆", "申請退款", []),
        ("thunderbird_iso2022jp.eml", "商品が届きません", "注文番号 12345 の商品", []),
        ("web_form_html_only.eml", "Contact form: parcel missing", "My parcel never arrived.", []),
        ("no_message_id.eml", "No id here", "Please call me back.", []),
        ("broken_date.eml", "Broken date", "The date header is nonsense.", []),
    ],
)
async def test_real_shaped_mail_through_the_listener_reads_as_the_customer_wrote_it(
    mailbox: Mailbox,
    client: httpx.AsyncClient,
    admin: Headers,
    connection: asyncpg.Connection,
    name: str,
    subject: str,
    says: str,
    files: list[str],
) -> None:
    """Each charset and shape, sent over SMTP as a mail server would, is one interaction whose
    message an agent reads in the customer's own script, attachments named as they were."""
    assert (await mailbox.send((CORPUS / name).read_bytes())).code == 250
    [stored] = await messages_of(connection)
    listed = await client.get(
        f"/v1/interactions/{stored['interaction_id']}/messages", headers=admin
    )
    [message] = listed.json()["items"]
    assert message["subject"] == subject
    assert says in message["text"]
    assert [f["filename"] for f in message["attachments"]] == files
    # Whatever the HTML held, no script, handler or style reaches the agent.
    for unsafe in ("<", "script", "alert", "document.cookie", "onclick", "color: red"):
        assert unsafe not in message["text"]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("exchange_out_of_office.eml", "auto_reply"),  # no Auto-Submitted: by its subject
        ("netease_auto_reply.eml", "auto_reply"),
        ("postfix_bounce.eml", "bounce"),
        ("mailman_list.eml", "list_mail"),
    ],
)
async def test_automatic_mail_through_the_listener_is_kept_and_makes_no_interaction(
    mailbox: Mailbox, connection: asyncpg.Connection, name: str, kind: str
) -> None:
    assert (await mailbox.send((CORPUS / name).read_bytes())).code == 250
    [stored] = await messages_of(connection)
    assert (stored["kind"], stored["interaction_id"]) == (kind, None)
    assert await connection.fetchval("SELECT count(*) FROM interactions") == 0


async def test_a_duplicate_delivery_is_stored_once(
    mailbox: Mailbox, connection: asyncpg.Connection
) -> None:
    message = mail(message_id="<once@customer.example>")
    first = await mailbox.send(message)
    again = await mailbox.send(message)

    assert first.code == again.code == 250
    assert "duplicate" in again.text
    assert "duplicate" not in first.text
    assert len(await messages_of(connection)) == 1
    assert len(await interactions_of(connection, "li.wei@customer.example")) == 1


async def test_a_message_with_no_message_id_is_taken_and_keyed_by_its_content(
    mailbox: Mailbox, connection: asyncpg.Connection
) -> None:
    message = mail(message_id=None)
    assert (await mailbox.send(message)).code == 250
    assert (await mailbox.send(message)).code == 250
    assert (await mailbox.send(mail("Something else", message_id=None))).code == 250

    stored = await messages_of(connection)
    assert [m["channel_message_id"] for m in stored] == [None, None]
    assert len(await interactions_of(connection, "li.wei@customer.example")) == 2


async def test_mail_for_an_address_not_configured_is_refused_at_rcpt(mailbox: Mailbox) -> None:
    refused = await mailbox.send(mail(to="sales@example.com"), to=["sales@example.com"])
    assert (refused.code, refused.stage) == (550, "RCPT"), refused
    plus = await mailbox.send(mail(), to=["support+anything@example.com"])
    assert plus.code == 250, plus


async def test_a_message_too_large_is_refused_with_552(
    mailbox: Mailbox, connection: asyncpg.Connection
) -> None:
    refused = await mailbox.send(mail("a line of text\n" * (MAX_BYTES // 10)))
    assert refused.code == 552, refused
    assert await messages_of(connection) == []


async def test_a_message_that_cannot_be_parsed_is_refused_with_554(
    mailbox: Mailbox, connection: asyncpg.Connection
) -> None:
    refused = await mailbox.send(b"this is not a message at all\r\n")
    assert refused.code == 554, refused
    assert await messages_of(connection) == []


@pytest.mark.parametrize(
    ("headers", "kind"),
    [
        ({"Auto_Submitted": "auto-replied"}, "auto_reply"),
        ({"List_Id": "<news.customer.example>", "Precedence": "list"}, "list_mail"),
    ],
)
async def test_auto_replies_and_list_mail_make_no_interaction(
    mailbox: Mailbox, connection: asyncpg.Connection, headers: dict[str, str], kind: str
) -> None:
    assert (await mailbox.send(mail("I am out of the office", **headers))).code == 250
    [message] = await messages_of(connection)
    assert (message["kind"], message["interaction_id"]) == (kind, None)
    assert await interactions_of(connection, "li.wei@customer.example") == []


async def test_mail_from_the_null_sender_is_automatic_though_its_headers_say_nothing(
    mailbox: Mailbox, connection: asyncpg.Connection
) -> None:
    """A server's notice with no Auto-Submitted and no report, sent with MAIL FROM:<> (as RFC
    3834 and 5321 ask of automatic mail): the envelope says what the headers do not."""
    notice = mail("Your message could not be delivered in time.", subject="Delay notice")

    def send_from_the_null_sender() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", mailbox.port, timeout=10) as smtp:
            smtp.ehlo()
            smtp.mail("")  # MAIL FROM:<>
            smtp.rcpt(SUPPORT)
            return smtp.data(notice.as_bytes())

    code, _ = await asyncio.to_thread(send_from_the_null_sender)

    assert code == 250
    [message] = await messages_of(connection)
    assert message["interaction_id"] is None
    assert message["kind"] in ("auto_reply", "bounce")
    assert await interactions_of(connection, "li.wei@customer.example") == []


async def test_a_permanent_bounce_makes_no_interaction_and_marks_the_address_failing(
    mailbox: Mailbox, connection: asyncpg.Connection, client: httpx.AsyncClient, admin: Headers
) -> None:
    assert (await mailbox.send(mail())).code == 250  # li.wei is a customer now
    bounce = (
        b"From: Mail Delivery System <MAILER-DAEMON@customer.example>\r\n"
        b"To: support@example.com\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        b"Message-ID: <bounce-1@customer.example>\r\nAuto-Submitted: auto-replied\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.customer.example\r\n\r\n"
        b"Final-Recipient: rfc822; li.wei@customer.example\r\nAction: failed\r\n"
        b"Status: 5.1.1\r\n\r\n--B--\r\n"
    )
    delivered = await mailbox.send(bounce, sender="")
    assert delivered.code == 250, delivered

    kinds = [(m["kind"], m["interaction_id"]) for m in await messages_of(connection)]
    assert kinds[1] == ("bounce", None)
    assert len(await interactions_of(connection, "li.wei@customer.example")) == 1
    [interaction] = await interactions_of(connection, "li.wei@customer.example")
    profile = await client.get(f"/v1/customers/{interaction['customer_id']}", headers=admin)
    [address] = profile.json()["contact_points"]
    assert address["value"] == "li.wei@customer.example"
    assert address["failing_since"] is not None


async def test_the_webhook_and_smtp_give_the_same_result(
    mailbox: Mailbox,
    client: httpx.AsyncClient,
    admin: Headers,
    connection: asyncpg.Connection,
) -> None:
    key = await client.post("/v1/gateway-keys", json={"name": "mail"}, headers=admin)
    assert key.status_code == 201, key.text
    gateway = {"Authorization": f"Bearer {key.json()['key']}", "Content-Type": "message/rfc822"}
    raw = mail(message_id="<both@customer.example>").as_bytes()

    posted = await client.post("/v1/email/inbound", content=raw, headers=gateway)
    assert posted.status_code == 200, posted.text
    taken = posted.json()
    assert (taken["kind"], taken["opened"], taken["duplicate"]) == ("new_thread", True, False)
    delivered = await mailbox.send(raw)
    assert delivered.code == 250, delivered
    assert taken["message_id"] in delivered.text
    assert "duplicate" in delivered.text
    [interaction] = await interactions_of(connection, "li.wei@customer.example")
    assert str(interaction["id"]) == taken["interaction_id"]

    # And the other way round, with a reply: SMTP first, then the webhook says the same.
    reply = mail("More", In_Reply_To="<both@customer.example>").as_bytes()
    assert (await mailbox.send(reply)).code == 250
    again = await client.post("/v1/email/inbound", content=reply, headers=gateway)
    assert again.status_code == 200, again.text
    answer = again.json()
    assert (answer["duplicate"], answer["kind"]) == (True, "reply")
    assert answer["interaction_id"] == str(interaction["id"])

    too_large = await client.post(
        "/v1/email/inbound", content=b"x" * (MAX_BYTES + 1), headers=gateway
    )
    assert too_large.status_code == 413, too_large.text
    garbage = await client.post(
        "/v1/email/inbound", content=b"this is not a message at all\r\n", headers=gateway
    )
    assert garbage.status_code == 422, garbage.text
    nobody = await client.post("/v1/email/inbound", content=raw)
    assert nobody.status_code == 401, nobody.text
    assert len(await messages_of(connection)) == 2


async def test_the_demo_takes_mail_for_support_at_example_com_into_its_general_queue(
    app: FastAPI, settings: Settings, connection: asyncpg.Connection
) -> None:
    async with unit_of_work(app.state.sessions) as session:
        await load_demo(session, settings)
    general = await connection.fetchval("SELECT id FROM queues WHERE name = 'general'")
    mailbox = Mailbox(port=app.state.smtp_listener.port, queue_id=general)
    _, _, _, _, _, _, email = CUSTOMERS[0]

    delivered = await mailbox.send(mail(sender=email))

    assert delivered.code == 250, delivered
    [interaction] = await interactions_of(connection, email)
    assert interaction["queue_id"] == general


async def test_a_sender_without_a_name_is_taken_and_one_without_an_address_refused(
    mailbox: Mailbox, connection: asyncpg.Connection
) -> None:
    nameless = await mailbox.send(mail(sender='"   " <li.wei@customer.example>'))
    assert nameless.code == 250, nameless
    [interaction] = await interactions_of(connection, "li.wei@customer.example")
    name = await connection.fetchval(
        "SELECT name FROM customers WHERE id = $1", interaction["customer_id"]
    )
    assert "li.wei@customer.example" in name

    no_sender = mail()
    del no_sender["From"]
    refused = await mailbox.send(no_sender)
    assert refused.code == 554, refused
    assert len(await messages_of(connection)) == 1


async def test_a_second_listener_shares_the_port_as_another_worker_would(
    app: FastAPI, mailbox: Mailbox, connection: asyncpg.Connection
) -> None:
    second = SmtpListener(app.state.mail_in, host="127.0.0.1", port=mailbox.port)
    await second.start()  # SO_REUSEPORT: no "address already in use"
    try:
        assert second.port == mailbox.port
        for number in range(4):
            assert (await mailbox.send(mail(f"Message {number}"))).code == 250
    finally:
        await second.stop()
    assert len(await messages_of(connection)) == 4


class _DefaultPortTaken(Settings):
    """Development's default port, played by one a test holds."""

    taken: int = 0

    @property
    def smtp_listener_port(self) -> int | None:
        return self.taken


async def test_a_port_taken_stops_the_service_only_when_it_was_asked_for(
    settings: Settings, database_url: str
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        asked = settings.model_copy(update={"smtp_port": port})
        app = create_app(asked, database_url)
        with pytest.raises(OSError, match="in use"):
            async with app.router.lifespan_context(app):
                pass
        defaulted = _DefaultPortTaken(**{**settings.model_dump(), "smtp_port": None, "taken": port})
        app = create_app(defaulted, database_url)
        async with app.router.lifespan_context(app):
            assert app.state.smtp_listener is None
