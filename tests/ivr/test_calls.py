"""Whole calls, end to end: Twilio's signed webhooks in, TwiML out, the agent's desk socket,
the Calls API stand-in for the bridge, and what the calls leave in the database."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app.auth.models import Role
from app.core.settings import Settings
from app.ivr.actions import Hold
from app.ivr.calls import Switchboard
from app.ivr.flow import demo_flow
from tests.desk.conftest import Desk
from tests.ivr.line import PUBLIC_BASE_URL, TwilioCaller, dial_in, spoken
from tests.ivr.twilio_standin import ACCOUNT_SID, AUTH_TOKEN, TwilioStandIn
from tests.support import LiveServer, create_user_directly, login

PASSWORD = "correct horse battery"
PLATINUM_NUMBER = "+8613900139000"
ACCOUNT_NUMBER = "12345674"  # passes the demo flow's Luhn check


@pytest.fixture
def twilio() -> Iterator[TwilioStandIn]:
    with TwilioStandIn.running() as standin:
        yield standin


@pytest.fixture
def settings(twilio: TwilioStandIn) -> Settings:
    return Settings(
        environment="test",
        load_demo=False,
        default_phone_region="CN",
        password_hashing="fast",
        public_base_url=PUBLIC_BASE_URL,
        twilio_auth_token=AUTH_TOKEN,
        twilio_account_sid=ACCOUNT_SID,
        twilio_api_url=twilio.base_url,
    )


class Line:
    """The contact center on a live server: its admin, its flow, queues and agents."""

    def __init__(self, http: httpx.AsyncClient, admin: dict[str, str], ws_url: str) -> None:
        self.http, self.admin, self.ws_url = http, admin, ws_url

    def caller(self, number: str = "+8613800138000") -> TwilioCaller:
        return TwilioCaller(self.http, "CA" + uuid.uuid4().hex, caller=number)

    async def agent(self, username: str, *, endpoint: str | None, **skills: int) -> dict[str, str]:
        body = {
            "username": username,
            "display_name": username.title(),
            "password": PASSWORD,
            "voice_endpoint": endpoint,
            "skills": [{"skill": s, "level": level} for s, level in skills.items()],
        }
        response = await self.http.post("/v1/agents", json=body, headers=self.admin)
        assert response.status_code == 201, response.text
        return await login(self.http, username, PASSWORD)

    async def desk(self, headers: dict[str, str]) -> Desk:
        import websockets

        response = await self.http.post("/v1/desk/tickets", headers=headers)
        ticket = response.json()["ticket"]
        desk = Desk(await websockets.connect(f"{self.ws_url}/v1/desk/ws?ticket={ticket}"))
        await desk.send(type="hello")
        await desk.next("ready")
        await desk.send(type="set_state", state="available")
        await desk.next("ack")
        return desk

    async def interaction(self, interaction_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/v1/interactions/{interaction_id}", headers=self.admin)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    async def interactions(self, **query: str) -> list[dict[str, Any]]:
        response = await self.http.get("/v1/interactions", params=query, headers=self.admin)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items


@pytest.fixture
async def line(app: FastAPI, live_server: LiveServer) -> AsyncIterator[Line]:
    await create_user_directly(app, "boss", Role.admin, PASSWORD)
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=15) as http:
        admin = await login(http, "boss", PASSWORD)
        await http.post("/v1/skills", json={"name": "vip"}, headers=admin)
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%a").lower()
        for queue in (
            {"name": "general", "offer_timeout_seconds": 10, "wrap_up_seconds": 30},
            {
                "name": "vip",
                "required_skills": [{"skill": "vip", "level": 1}],
                "wrap_up_seconds": 30,
            },
            {  # open tomorrow only: closed for the whole of today
                "name": "billing",
                "business_hours": {
                    "timezone": "UTC",
                    "weekly": {tomorrow: [{"opens": "09:00", "closes": "17:00"}]},
                },
            },
        ):
            response = await http.post("/v1/queues", json=queue, headers=admin)
            assert response.status_code == 201, response.text
        flow = {
            "name": "Main line",
            "document": demo_flow().model_dump(mode="json", exclude_none=True),
            "publish": True,
            "is_default": True,
        }
        response = await http.post("/v1/ivr/flows", json=flow, headers=admin)
        assert response.status_code == 201, response.text
        for customer in (
            {"name": "Plato Tinum", "tier": "platinum", "phones": [PLATINUM_NUMBER]},
            {"name": "Acco Holder", "tier": "iron", "account_numbers": [ACCOUNT_NUMBER]},
        ):
            response = await http.post("/v1/customers", json=customer, headers=admin)
            assert response.status_code == 201, response.text
        yield Line(http, admin, live_server.base_url.replace("http://", "ws://"))


async def call_row(connection: asyncpg.Connection, call_sid: str) -> asyncpg.Record:
    row = await connection.fetchrow("SELECT * FROM calls WHERE call_ref = $1", call_sid)
    assert row is not None
    return row


async def test_a_known_platinum_caller_skips_the_menu_and_is_bridged_to_the_agent(
    line: Line, twilio: TwilioStandIn, connection: asyncpg.Connection
) -> None:
    desk = await line.desk(await line.agent("vera", endpoint="client:vera", vip=3))
    caller = line.caller(PLATINUM_NUMBER)

    first = await caller.ring()

    assert "Gather" not in first  # no menu: straight to the VIP queue
    assert any("right away" in text for text in spoken(first))
    assert "<Redirect" in first
    assert "/v1/voice/twilio/hold?" in first
    offer = await desk.next("offer")
    pop = offer["screen_pop"]
    assert pop["customer"]["tier"] == "platinum"
    assert pop["interaction"]["channel"] == "voice"
    assert pop["ivr"]["path"] == ["welcome", "by_tier", "to_vip"]

    await desk.send(type="accept", offer_id=offer["offer_id"])
    bridge = (await twilio.received(1))[0]

    assert bridge.call_sid == caller.call_sid
    assert bridge.authenticated
    dial = dial_in(bridge.form["Twiml"])
    assert next(iter(dial)).text == "vera"  # the agent's softphone: <Client>vera</Client>
    assert (await caller.agent_picks_up(dial)).status_code == 204
    assert (await call_row(connection, caller.call_sid))["phase"] == "talking"

    goodbye = await caller.dial_ends(dial, "completed")

    assert "<Hangup" in goodbye
    record = await call_row(connection, caller.call_sid)
    assert (record["phase"], record["outcome"]) == ("ended", "answered")
    interaction = await line.interaction(str(record["interaction_id"]))
    assert interaction["state"] == "wrap_up"  # the agent wraps the call up
    assert (await caller.hang_up()).status_code == 204  # the status callback changes nothing
    assert (await line.interaction(str(record["interaction_id"])))["state"] == "wrap_up"


async def test_a_call_accepted_before_its_incoming_webhook_has_answered_is_still_bridged(
    line: Line, twilio: TwilioStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Intake commits the call's interaction, and may offer it, before the webhook that queued
    it commits the call: an agent quick to accept is heard by the bridge while there is no call
    to connect yet. The call is connected once the webhook has committed it, not left holding
    until the wait loop's next round (seen at 50 calls/s in `make bench`)."""
    desk = await line.desk(await line.agent("vera", endpoint="client:vera", vip=3))
    caller = line.caller(PLATINUM_NUMBER)
    bridge_tried = threading.Event()
    bridge, holding = Switchboard.bridge, Switchboard._holding

    async def bridge_noted(self: Switchboard, *args: Any) -> bool:
        try:
            return await bridge(self, *args)
        finally:
            bridge_tried.set()

    async def holding_once_the_bridge_tried(self: Switchboard, *args: Any) -> Hold:
        # The webhook, its call not committed yet, goes on once the acceptance was heard (the
        # server runs in a thread of its own: a thread's event, waited for off its loop).
        assert await asyncio.to_thread(bridge_tried.wait, 10)
        return await holding(self, *args)

    monkeypatch.setattr(Switchboard, "bridge", bridge_noted)
    monkeypatch.setattr(Switchboard, "_holding", holding_once_the_bridge_tried)
    ringing = asyncio.create_task(caller.ring())
    offer = await desk.next("offer")
    await desk.send(type="accept", offer_id=offer["offer_id"])

    held = await ringing

    assert "/v1/voice/twilio/hold?" in held
    bridged = (await twilio.received(1, within=5))[0]
    assert bridged.call_sid == caller.call_sid
    assert next(iter(dial_in(bridged.form["Twiml"]))).text == "vera"


async def test_an_unknown_caller_keys_an_account_number_and_the_agent_sees_what_they_keyed(
    line: Line, twilio: TwilioStandIn, connection: asyncpg.Connection
) -> None:
    desk = await line.desk(await line.agent("gao", endpoint="sip:gao@pbx.example.com"))
    caller = line.caller("+8613700137000")

    menu = await caller.ring()
    assert any("press 2" in text for text in spoken(menu))
    await caller.press("2")
    held = await caller.press(ACCOUNT_NUMBER)

    assert any("An agent will be with you" in text for text in spoken(held))
    offer = await desk.next("offer")
    pop = offer["screen_pop"]
    assert pop["customer"]["name"] == "Acco Holder"  # known by the account number keyed
    assert pop["ivr"]["keys"] == ["2"]
    assert pop["ivr"]["collected"] == {"account_number": ACCOUNT_NUMBER}
    assert pop["ivr"]["account_verified"] is True
    assert pop["ivr"]["path"][-2:] == ["account_number", "to_accounts"]

    await desk.send(type="accept", offer_id=offer["offer_id"])
    dial = dial_in((await twilio.received(1))[0].form["Twiml"])
    assert dial[0].tag == "Sip"
    assert dial[0].text == "sip:gao@pbx.example.com"
    await caller.agent_picks_up(dial)
    response = await caller.hang_up()  # the caller hangs up during the talk

    assert response.status_code == 204
    record = await call_row(connection, caller.call_sid)
    assert (record["outcome"], record["end_cause"]) == ("answered", "completed")
    assert (await line.interaction(str(record["interaction_id"])))["state"] == "wrap_up"


async def test_a_caller_who_hangs_up_while_waiting_is_abandoned_with_the_time_waited(
    line: Line, connection: asyncpg.Connection
) -> None:
    caller = line.caller("+8613600136000")
    await caller.ring()
    held = await caller.press("2")
    held = await caller.press("0000")  # not an account number: the flow gives up to general
    held = await caller.press("0000")
    held = await caller.press("0000")
    assert "/v1/voice/twilio/hold?" in held
    record = await call_row(connection, caller.call_sid)
    interaction_id = str(record["interaction_id"])

    assert (await caller.hang_up("completed")).status_code == 204

    interaction = await line.interaction(interaction_id)
    assert interaction["state"] == "abandoned"
    assert interaction["ivr"]["account_verified"] is False
    events = await connection.fetch(
        "SELECT payload FROM events WHERE subject_id = $1 AND kind = 'interaction.abandoned'",
        interaction_id,
    )
    assert len(events) == 1
    assert "waited_seconds" in events[0]["payload"]
    record = await call_row(connection, caller.call_sid)
    assert (record["phase"], record["outcome"]) == ("ended", "abandoned")


async def test_a_caller_takes_a_callback_while_holding_and_keeps_their_place(
    line: Line, connection: asyncpg.Connection
) -> None:
    early = line.caller("+8613500135000")
    await early.ring()
    await early.press("3")  # the menu's callback offer ...
    await early.press("9")  # ... declined: to the general queue, whose wait offers it again
    late = line.caller("+8613400134000")
    await late.ring()
    await late.press("3")
    await late.press("9")
    early_record = await call_row(connection, early.call_sid)
    waited_since = (await line.interaction(str(early_record["interaction_id"])))["waiting_since"]

    told = await early.press("*")  # the wait loop's callback key

    assert any("call you back" in text for text in spoken(told))
    assert "<Hangup" in told
    early_record = await call_row(connection, early.call_sid)
    assert early_record["outcome"] == "callback"
    assert (await line.interaction(str(early_record["interaction_id"])))["state"] == "converted"
    callbacks = await line.interactions(channel="callback")
    assert len(callbacks) == 1
    assert callbacks[0]["waiting_since"] == waited_since  # its place in line, kept
    assert callbacks[0]["external_ref"] == f"callback:twilio:{early.call_sid}"


async def test_an_after_hours_caller_leaves_a_voicemail_that_waits_for_the_opening(
    line: Line, connection: asyncpg.Connection
) -> None:
    caller = line.caller("+8613300133000")
    await caller.ring()
    asked = await caller.press("1")  # billing, closed today
    assert "<Record" in asked

    goodbye = await caller.leave_message("https://api.twilio.com/recordings/RE1")

    assert "<Hangup" in goodbye
    callbacks = await line.interactions(channel="callback")
    assert len(callbacks) == 1
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date()
    opening = datetime.combine(tomorrow, time(9), tzinfo=UTC)
    assert datetime.fromisoformat(callbacks[0]["not_before"]) == opening
    assert "https://api.twilio.com/recordings/RE1" in callbacks[0]["summary"]
    assert (await call_row(connection, caller.call_sid))["outcome"] == "voicemail"


async def test_an_agent_whose_phone_does_not_answer_loses_the_call_back_to_the_queue(
    line: Line, twilio: TwilioStandIn, connection: asyncpg.Connection
) -> None:
    desk = await line.desk(await line.agent("vera", endpoint="client:vera", vip=3))
    caller = line.caller(PLATINUM_NUMBER)
    await caller.ring()
    offer = await desk.next("offer")
    await desk.send(type="accept", offer_id=offer["offer_id"])
    dial = dial_in((await twilio.received(1))[0].form["Twiml"])

    again = await caller.dial_ends(dial, "no-answer")

    assert any("could not be reached" in text for text in spoken(again))
    assert "/v1/voice/twilio/hold?" in again
    record = await call_row(connection, caller.call_sid)
    assert record["phase"] == "queued"
    assert record["agent_id"] is None
    interaction = await line.interaction(str(record["interaction_id"]))
    assert interaction["state"] in ("queued", "offered")
    assert interaction["waiting_since"] == offer["screen_pop"]["interaction"]["waiting_since"]


async def test_a_retried_webhook_is_answered_as_before_and_applied_once(
    line: Line, connection: asyncpg.Connection
) -> None:
    caller = line.caller("+8613200132000")
    first = await caller.ring()
    again = await caller.ring()
    assert again == first
    menu = caller.answers[-1]
    gather_url = caller.twiml.find("Gather").attrib["action"]  # type: ignore[union-attr]

    chosen = await caller.press("2")
    caller.answers.append(menu)  # Twilio retries the same request: same URL, same keys
    retried = await caller._follow(gather_url, Digits="2", CallStatus="in-progress")

    assert retried == chosen
    record = await call_row(connection, caller.call_sid)
    assert record["engine_state"]["keys"] == ["2"]
    assert await connection.fetchval("SELECT count(*) FROM calls") == 1


async def test_bad_signatures_and_unknown_calls_are_refused_clearly(
    line: Line, connection: asyncpg.Connection
) -> None:
    caller = line.caller()
    form = {"CallSid": caller.call_sid, "AccountSid": ACCOUNT_SID, "CallStatus": "ringing"}

    unsigned = await line.http.post("/v1/voice/twilio/incoming", data=form)
    forged = await line.http.post(
        "/v1/voice/twilio/incoming", data=form, headers={"X-Twilio-Signature": "Zm9yZ2Vk"}
    )
    unknown = await caller.post(
        f"/v1/voice/twilio/gather?call={uuid.uuid4()}&turn=1", Digits="1", CallStatus="in-progress"
    )
    unknown_status = await caller.hang_up()

    assert (unsigned.status_code, forged.status_code) == (403, 403)
    assert unsigned.json()["error"] == "bad_signature"
    assert (unknown.status_code, unknown_status.status_code) == (404, 404)
    assert unknown.json()["error"] == "unknown_call"
    assert await connection.fetchval("SELECT count(*) FROM calls") == 0


async def test_a_whole_call_through_the_generic_json_events(
    line: Line, make_user: Any, connection: asyncpg.Connection
) -> None:
    response = await line.http.post("/v1/gateway-keys", json={"name": "pbx"}, headers=line.admin)
    assert response.status_code == 201, response.text
    key = {"Authorization": f"Bearer {response.json()['key']}"}
    desk = await line.desk(await line.agent("vera", endpoint="client:vera", vip=3))

    async def post(**event: Any) -> dict[str, Any]:
        answer = await line.http.post(
            "/v1/voice/events", json={"call_id": "pbx-42", **event}, headers=key
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    started = await post(event="started", to="+864000000000", **{"from": PLATINUM_NUMBER})
    assert [a["type"] for a in started["actions"]][-1] == "hold"
    assert started["actions"][-1]["recheck_seconds"] <= 5
    offer = await desk.next("offer")
    await desk.send(type="accept", offer_id=offer["offer_id"])
    await desk.next("ack")

    connect = await post(event="waiting", event_id="w-1")
    again = await post(event="waiting", event_id="w-1")

    assert connect["actions"] == [
        {"type": "connect", "endpoint": "client:vera", "timeout_seconds": 20}
    ]
    assert again == connect
    await post(event="answered", leg="agent", event_id="a-1")
    assert (await call_row(connection, "pbx-42"))["phase"] == "talking"
    await post(event="ended", leg="caller", cause="caller_hung_up", event_id="e-1")
    record = await call_row(connection, "pbx-42")
    assert (record["phase"], record["outcome"]) == ("ended", "answered")
    assert (await line.interaction(str(record["interaction_id"])))["state"] == "wrap_up"
