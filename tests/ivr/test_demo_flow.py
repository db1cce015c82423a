"""The demo's default flow: loaded with the demo, published, the default, and the file the
tests and docs/ivr.md use."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from app.core.db import unit_of_work
from app.core.settings import Settings
from app.customers.models import Tier
from app.demo import load_demo
from app.ivr import service
from app.ivr.dry_run import dry_run
from app.ivr.engine import CallFacts, DigitsEntered, HoursNow
from app.ivr.flow import demo_flow


async def test_the_demo_answers_every_number_with_its_flow(
    app: FastAPI, settings: Settings
) -> None:
    async with unit_of_work(app.state.sessions) as session:
        await load_demo(session, settings)
    call = await service.flow_for_call(app.state.pg, "+14155550132")
    assert call.version == 1
    assert call.flow == demo_flow()


async def test_supervisors_see_the_demo_flow(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, supervisor: dict[str, str]
) -> None:
    async with unit_of_work(app.state.sessions) as session:
        await load_demo(session, settings)
    [flow] = (await client.get("/v1/ivr/flows", headers=supervisor)).json()["items"]
    assert (flow["name"], flow["is_default"], flow["published_version"]) == ("Main line", True, 1)


def test_the_demo_flow_does_what_docs_ivr_md_says() -> None:
    flow = demo_flow()
    gold = dry_run(flow, [], CallFacts(tier=Tier.gold))
    assert gold.path == ["welcome", "by_tier", "to_vip"]
    billing = [DigitsEntered(digits="1")]
    closed = dry_run(flow, billing, CallFacts(hours={"billing": HoursNow.closed}))
    assert closed.waiting_at == "after_hours"
    assert set(flow.queues_named()) == {"vip", "billing", "general"}


async def test_the_readme_tours_call_reaches_a_queue_known_by_its_account_number(
    app: FastAPI, settings: Settings, client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    async with unit_of_work(app.state.sessions) as session:
        await load_demo(session, settings)

    async def call(**event: str) -> dict[str, Any]:
        response = await client.post(
            "/v1/voice/events", json={"call_id": "tour-1", **event}, headers=admin
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    started = await call(event="started", to="+86 400 000 0000", **{"from": "+86 137 0013 7000"})
    await call(event="digits", digits="2")
    queued = await call(event="digits", digits="12345674")

    assert [a["type"] for a in started["actions"]][-1] == "gather"
    assert [a["type"] for a in queued["actions"]] == ["say", "hold"]
    [interaction] = (await client.get("/v1/interactions", headers=admin)).json()["items"]
    customer = await client.get(f"/v1/customers/{interaction['customer_id']}", headers=admin)
    assert customer.json()["name"] == "Jonas Meyer"
    assert interaction["ivr"]["collected"] == {"account_number": "12345674"}
