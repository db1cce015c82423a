"""A caller who chooses the demo menu's complaints option (5): the call is queued and raises a
complaint at step 1, once however often the gateway delivers it; the agent who takes the call
sees it and, by working on it, becomes its owner."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.ivr.test_calls import Line, line, settings, twilio  # noqa: F401

pytestmark = pytest.mark.asyncio


async def test_the_complaints_option_raises_one_complaint_the_agent_takes(line: Line) -> None:  # noqa: F811
    made = await line.http.post("/v1/gateway-keys", json={"name": "pbx"}, headers=line.admin)
    key = {"Authorization": f"Bearer {made.json()['key']}"}
    agent = await line.agent("rosa", endpoint="client:rosa")
    desk = await line.desk(agent)

    async def post(**event: Any) -> dict[str, Any]:
        answer = await line.http.post(
            "/v1/voice/events", json={"call_id": "pbx-7", **event}, headers=key
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    await post(event="started", to="+864000000000", **{"from": "+8613700137000"})
    await post(event="digits", digits="5", event_id="d-1")
    await post(event="digits", digits="5", event_id="d-1")  # the gateway retries
    complaints = await listed(line.http, line.admin)
    assert [(c["step"], c["channel"], c["owner_agent_id"]) for c in complaints] == [
        ("intake", "voice", None)
    ]
    offer = await desk.next("offer")
    await desk.send(type="accept", offer_id=offer["offer_id"])
    await desk.next("ack")

    path = f"/v1/complaints/{complaints[0]['reference']}"
    seen = await line.http.get(path, headers=agent)
    assert seen.status_code == 200, seen.text  # about the call it holds
    words = {"original_message": "The router you sent me is broken and support hung up."}
    assert (await line.http.patch(path, json=words, headers=agent)).status_code == 200
    completed = await line.http.post(
        f"{path}/actions/complete_intake",
        json={"remedy_sought": "A new router this week"},
        headers=agent,
    )
    assert completed.status_code == 200, completed.text
    me = (await line.http.get("/v1/agents/me", headers=agent)).json()
    assert (completed.json()["step"], completed.json()["owner_agent_id"]) == ("accept", me["id"])
    timeline = (await line.http.get(f"{path}/timeline", headers=line.admin)).json()["items"]
    assert [e["kind"] for e in timeline][:3] == [
        "complaint.raised",
        "complaint.assigned",
        "complaint.recorded",
    ]
    assert timeline[0]["actor"].startswith("customer:")


async def listed(http: httpx.AsyncClient, admin: dict[str, str]) -> list[dict[str, Any]]:
    response = await http.get("/v1/complaints", headers=admin)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items
