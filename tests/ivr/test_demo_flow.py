"""The demo's default flow: loaded with the demo, published, the default, and the file the
tests and docs/ivr.md use."""

from __future__ import annotations

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
