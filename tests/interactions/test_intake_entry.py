"""The one way in (app.interactions.intake.Intake): what any channel adapter calls, with no HTTP
in between. `receive` writes, routes and publishes a new interaction; `add_event` records what
happens to an existing one."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI

from app.core.errors import IllegalTransition, InvalidField
from app.interactions.intake import Intake
from app.interactions.schemas import InteractionCreate
from app.interactions.service import InteractionNotFound

Headers = dict[str, str]
ADAPTER = "gateway:test-adapter"


async def _queue_and_customer(client: httpx.AsyncClient, admin: Headers) -> str:
    queue = await client.post("/v1/queues", json={"name": "Billing"}, headers=admin)
    assert queue.status_code == 201, queue.text
    customer = await client.post("/v1/customers", json={"name": "Ada"}, headers=admin)
    assert customer.status_code == 201, customer.text
    customer_id: str = customer.json()["id"]
    return customer_id


def _call(customer_id: str, reference: str) -> InteractionCreate:
    return InteractionCreate.model_validate(
        {
            "channel": "voice",
            "queue": "billing",
            "customer_id": customer_id,
            "external_ref": reference,
        }
    )


async def test_an_adapter_s_interaction_is_written_queued_and_published_once(
    app: FastAPI, client: httpx.AsyncClient, admin: Headers
) -> None:
    customer_id = await _queue_and_customer(client, admin)
    intake: Intake = app.state.intake
    heard = app.state.hub.subscribe(lambda event: event.subject_type == "interaction")

    received = await intake.receive(_call(customer_id, "call-1"), actor=ADAPTER)
    again = await intake.receive(_call(customer_id, "call-1"), actor=ADAPTER)

    assert received.created
    assert received.interaction.state == "queued"  # nobody is free to take it
    assert [event.kind for event in received.events] == ["interaction.queued"]
    assert heard.queue.get_nowait() == received.events[0]  # published before receive returned
    assert received.events[0].actor == ADAPTER
    assert not again.created  # a gateway's retry: the same interaction, nothing written
    assert again.interaction.id == received.interaction.id
    assert again.events == []
    found = await client.get(f"/v1/interactions/{received.interaction.id}", headers=admin)
    assert found.status_code == 200, found.text
    assert found.json()["external_ref"] == "call-1"


async def test_an_event_added_to_an_interaction_is_stored_published_and_idempotent(
    app: FastAPI, client: httpx.AsyncClient, admin: Headers
) -> None:
    customer_id = await _queue_and_customer(client, admin)
    intake: Intake = app.state.intake
    call = await intake.receive(_call(customer_id, "call-2"), actor=ADAPTER)
    heard = app.state.hub.subscribe(lambda event: event.kind == "interaction.progress")

    first, new = await intake.add_event(
        call.interaction.id,
        "interaction.progress",
        {"step": "menu"},
        actor=ADAPTER,
        reference="evt-1",
    )
    repeated, again = await intake.add_event(
        call.interaction.id,
        "interaction.progress",
        {"step": "menu"},
        actor=ADAPTER,
        reference="evt-1",
    )

    assert (new, again) == (True, False)
    assert repeated.id == first.id
    assert heard.queue.get_nowait() == first
    async with app.state.pg.acquire() as connection:
        stored = await connection.fetch(
            "SELECT payload FROM events WHERE kind = 'interaction.progress' AND subject_id = $1",
            str(call.interaction.id),
        )
    assert [row["payload"] for row in stored] == [{"step": "menu", "reference": "evt-1"}]


async def test_an_event_for_no_interaction_an_ended_one_or_of_an_unknown_kind_is_refused(
    app: FastAPI, client: httpx.AsyncClient, admin: Headers
) -> None:
    customer_id = await _queue_and_customer(client, admin)
    intake: Intake = app.state.intake
    call = await intake.receive(_call(customer_id, "call-3"), actor=ADAPTER)

    with pytest.raises(InteractionNotFound):
        await intake.add_event(uuid.uuid4(), "interaction.progress", {}, actor=ADAPTER)
    with pytest.raises(InvalidField, match=r"interaction\.message"):
        await intake.add_event(call.interaction.id, "interaction.offered", {}, actor=ADAPTER)
    async with app.state.pg.acquire() as connection:
        await connection.execute(
            "UPDATE interactions SET state = 'abandoned' WHERE id = $1", call.interaction.id
        )
    with pytest.raises(IllegalTransition, match="abandoned"):
        await intake.add_event(call.interaction.id, "interaction.message", {}, actor=ADAPTER)
