"""A supervisor sends agents away or logs them out, and sends a notice to a queue's desks:
each over HTTP against a live server, the agents on real desk sockets."""

from __future__ import annotations

import asyncio
import threading

from app.core.socket_session import CloseCode
from app.desk.connection import LOGGED_OUT
from tests.core.test_socket_session import read_until_closed
from tests.desk.conftest import Center
from tests.supervisor.conftest import Supervisor, agent_id


async def test_forcing_an_agent_away_withdraws_its_offer_and_is_audited(
    center: Center, sue: Supervisor
) -> None:
    mei = await center.agent("mei", billing=4)
    mei_id = await agent_id(center, mei)
    desk = await center.available(mei)
    call = await center.call()
    offer = await desk.next("offer")

    forced = await sue.post(f"/agents/{mei_id}/state", state="away", reason="team meeting")

    assert forced.status_code == 200, forced.text
    assert (forced.json()["state"], forced.json()["state_reason"]) == ("away", "team meeting")
    withdrawn = await desk.next("offer_withdrawn")
    assert withdrawn["offer_id"] == offer["offer_id"]
    state = await desk.next("state")
    assert (state["state"], state["reason"]) == ("away", "team meeting")
    assert (await sue.interaction(call["id"]))["state"] == "queued"  # back in line
    [event] = [
        e for e in await sue.events("agent.state_changed", mei_id) if e["payload"].get("forced")
    ]
    assert event["actor"] == sue.actor
    assert event["payload"] == {
        "from": "available",  # a pending offer leaves the state as it was
        "to": "away",
        "reason": "team meeting",
        "forced": True,
    }


async def test_an_agent_forced_away_is_offered_nothing(center: Center, sue: Supervisor) -> None:
    mei = await center.agent("mei", billing=5)
    mei_id = await agent_id(center, mei)
    mei_desk = await center.available(mei)
    forced = await sue.post(f"/agents/{mei_id}/state", state="away", reason="coaching")
    assert forced.status_code == 200, forced.text

    call = await center.call()
    # Bo, at work only after the call came, gets it: it was waiting, Mei's for the taking were
    # she in routing. His offer shows routing has weighed the call since.
    bo = await center.agent("bo", billing=2)
    bo_desk = await center.available(bo)
    offer = await bo_desk.next("offer")
    assert offer["interaction_id"] == call["id"]
    offered_to = [
        e["payload"]["agent_id"] for e in await sue.events("interaction.offered", call["id"])
    ]
    assert offered_to == [await agent_id(center, bo)]
    while (state := await mei_desk.next("state"))["state"] != "away":
        pass  # her own `available` first
    assert state["reason"] == "coaching"


async def test_a_forced_logout_closes_the_desk_and_takes_the_agent_out_of_routing(
    center: Center, sue: Supervisor, desks_left: threading.Event
) -> None:
    mei = await center.agent("mei", billing=4)
    mei_id = await agent_id(center, mei)
    desk = await center.available(mei)

    out = await sue.post(f"/agents/{mei_id}/state", state="offline", reason="shift over")
    assert out.status_code == 200, out.text
    _, closed = await read_until_closed(desk.socket)
    assert (closed.code, closed.reason) == (CloseCode.LOGGED_OUT, LOGGED_OUT.reason)
    assert await asyncio.to_thread(desks_left.wait, 10), "the desk never left"
    me = (await center.http.get("/v1/agents/me", headers=mei)).json()
    assert (me["state"], me["state_reason"]) == ("offline", "shift over")  # not "desk closed"

    call = await center.call()
    offered = await sue.post(
        f"/interactions/{call['id']}/move", to_agent_id=mei_id, reason="she knows him"
    )
    assert offered.status_code == 409, offered.text
    assert "the agent is offline" in offered.json()["detail"]
    again = await sue.post(f"/agents/{mei_id}/state", state="offline", reason="shift over")
    assert again.status_code == 409, again.text
    assert again.json()["detail"] == "the agent is offline already, for the same reason"


async def test_forcing_a_state_is_refused_clearly(center: Center, sue: Supervisor) -> None:
    mei_id = await agent_id(center, await center.agent("mei", billing=4))
    unknown = await sue.post(
        "/agents/00000000-0000-0000-0000-000000000001/state", state="away", reason="x"
    )
    assert unknown.status_code == 404, unknown.text
    assert "no agent with id" in unknown.json()["detail"]
    available = await sue.post(f"/agents/{mei_id}/state", state="available", reason="go")
    assert available.status_code == 422, available.text
    blank = await sue.post(f"/agents/{mei_id}/state", state="away", reason="  ")
    assert blank.status_code == 422, blank.text
    assert blank.json()["fields"][0]["field"] == "reason"


async def test_a_notice_reaches_the_desks_of_the_queues_agents_only(
    center: Center, sue: Supervisor
) -> None:
    billing = (await center.http.get("/v1/queues", headers=center.admin)).json()
    billing_id = next(q["id"] for q in billing["items"] if q["name"] == "billing")
    vip_id = await sue.queue("vip-line", vip=1)
    mei_desk = await center.desk(await center.agent("mei", billing=2))
    cai_desk = await center.desk(await center.agent("cai", vip=3))  # not billing's

    sent = await sue.post(
        f"/queues/{billing_id}/notices", text="System slow: use the backup form", reason="outage"
    )

    assert sent.status_code == 201, sent.text
    assert sent.json()["agents"] == 1
    notice = await mei_desk.next("notice")
    assert notice == {
        "type": "notice",
        "event_id": sent.json()["event_id"],
        "queue_id": billing_id,
        "text": "System slow: use the backup form",
        "from": "sue",
    }
    # Cai's first notice is the one to the queue it serves: the billing one never reached it.
    to_vip = await sue.post(f"/queues/{vip_id}/notices", text="VIP surge", reason="campaign")
    assert to_vip.status_code == 201, to_vip.text
    assert (await cai_desk.next("notice"))["text"] == "VIP surge"
    assert [f["text"] for f in cai_desk.frames if f["type"] == "notice"] == ["VIP surge"]
    [event] = await sue.events("queue.notice", billing_id)
    assert event["actor"] == sue.actor
    assert event["payload"]["reason"] == "outage"
    assert event["payload"]["text"] == "System slow: use the backup form"


async def test_a_notice_to_an_unknown_queue_is_a_404(sue: Supervisor) -> None:
    sent = await sue.post(
        "/queues/00000000-0000-0000-0000-000000000001/notices", text="hi", reason="x"
    )
    assert sent.status_code == 404, sent.text
