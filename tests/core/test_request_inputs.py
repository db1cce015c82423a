"""Every value a client sends is one PostgreSQL can hold, or a 422 says why (app.core.inputs).

Walks every route's parameters and body models, the intake's body and the desk's messages, so
a field added tomorrow cannot forget the guard: a string ends with `REFUSES_NUL` and has a
limit, an integer has both bounds within a bigint.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from app.channels.chat.protocol import CustomerMessage
from app.core.inputs import BIGINT_MAX, REFUSES_NUL
from app.core.settings import Settings
from app.desk.protocol import AgentMessage
from app.interactions.schemas import InteractionCreate
from app.main import create_app
from app.tickets.answer_page import AnswerForm
from tests.core.request_inputs import (
    Input,
    body_models,
    fields_of,
    inputs_of,
    models_in,
    references,
    route_inputs,
)

# Read by the endpoint itself, not by FastAPI (docs/architecture.md, "Two ways to the database").
READ_BY_HAND = {
    "InteractionCreate": "POST /v1/interactions body",
    "AnswerForm": "POST /complaints/answer/{token} form",
}

# Strings with no length limit, and why none is needed.
NO_LIMIT_NEEDED = {
    "WEBSOCKET /v1/desk/ws query.ticket": "a secret, digested before any query: no column holds it",
    "WEBSOCKET /v1/desk/ws query.token": "a secret, digested before any query: no column holds it",
}


@pytest.fixture(scope="module")
def app() -> FastAPI:
    """The app as built, never started: its routes are all this needs."""
    settings = Settings(environment="test", load_demo=False)
    return create_app(settings, "postgresql+asyncpg://nobody@localhost/none")


@pytest.fixture(scope="module")
def inputs(app: FastAPI) -> list[Input]:
    found = list(route_inputs(app))
    found += fields_of(InteractionCreate, READ_BY_HAND["InteractionCreate"])
    found += fields_of(AnswerForm, READ_BY_HAND["AnswerForm"])
    found += inputs_of(AgentMessage, "desk message")
    found += inputs_of(CustomerMessage, "chat message")
    return found


def test_the_walk_finds_the_inputs_it_should(inputs: list[Input]) -> None:
    where = {i.where for i in inputs}
    assert "POST /v1/auth/login body.body.username" in where
    assert "GET /v1/customers query.offset" in where
    assert "POST /v1/customers body.body.phones[]" in where
    assert "PUT /v1/queues/{queue_id} body.body.business_hours.timezone" not in where  # no PUT
    assert "PATCH /v1/queues/{queue_id} body.body.business_hours.timezone" in where
    assert "POST /v1/interactions body.contact.value" in where
    assert "desk message.disposition" in where


def test_every_type_is_one_the_walk_knows(inputs: list[Input]) -> None:
    unknown = sorted(f"{i.where}: {i.type}" for i in inputs if i.type not in (str, int))
    assert not unknown, "teach tests/core/request_inputs.py these types:\n" + "\n".join(unknown)


async def test_every_body_is_walked(app: FastAPI) -> None:
    """Every body the OpenAPI document names is one the walk went through."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        spec = (await client.get("/openapi.json")).json()
    # A model's name in the document, less what OpenAPI adds to tell apart two of one name
    # (`app__ivr__call_events__RecordingDone`) or a model's input from its output (`-Input`).
    documented = {
        reference.rsplit("/", 1)[-1].rsplit("__", 1)[-1].removesuffix("-Input")
        for operations in spec["paths"].values()
        for operation in operations.values()
        if "requestBody" in operation
        for reference in references(operation["requestBody"])
    }
    assert documented, "no body found: the walk of the document is broken"
    assert documented <= body_models(app) | models_in(InteractionCreate)


def test_every_string_refuses_nul_after_its_limits(inputs: list[Input]) -> None:
    """The guard last: before the limits, pydantic would check them after it, with vaguer
    messages ("at most 35 items after validation")."""
    unguarded = [
        i.where
        for i in inputs
        if i.type is str
        and (i.constraints[-1:] != (REFUSES_NUL,) or i.constraints.count(REFUSES_NUL) > 1)
    ]
    assert not unguarded, "end these strings' Annotated with REFUSES_NUL:\n" + "\n".join(unguarded)


def test_every_string_has_a_limit(inputs: list[Input]) -> None:
    unlimited = [
        i.where
        for i in inputs
        if i.type is str and i.max_length() is None and i.where not in NO_LIMIT_NEEDED
    ]
    assert not unlimited, "give these strings a max_length:\n" + "\n".join(unlimited)


def test_every_integer_fits_a_bigint(inputs: list[Input]) -> None:
    unbounded = []
    for i in (i for i in inputs if i.type is int):
        low, high = i.bounds()
        if low is None or high is None or low < -BIGINT_MAX - 1 or high > BIGINT_MAX:
            unbounded.append(f"{i.where}: from {low} to {high}")
    assert not unbounded, "bound these integers (ge=, le=):\n" + "\n".join(unbounded)
