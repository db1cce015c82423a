"""The dry run: what a caller would hear and where the call ends, as a function and over HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.core.errors import InvalidField
from app.customers.models import Tier
from app.ivr.dry_run import Heard, dry_run
from app.ivr.engine import CallFacts, DigitsEntered, HoursNow, NoInput, RecordingDone
from tests.ivr.calls import DEMO_FLOW

CALLER = "+8613800138000"


def said(heard: list[Heard]) -> list[str]:
    return [h.say or h.play or "" for h in heard]


def test_an_account_caller_hears_the_welcome_the_menu_and_is_enqueued() -> None:
    transcript = dry_run(
        DEMO_FLOW, [DigitsEntered(digits="2"), DigitsEntered(digits="12345674")], CallFacts()
    )
    assert said(transcript.heard) == [
        "Welcome to Example Telecom.",
        "欢迎致电 Example 电信。",
        "For billing, press 1. For your account, press 2. To be called back, press 3. "
        "For our opening hours, press 4. To make a complaint, press 5.",
        "中文服务请按 9。",
        "Please enter your eight-digit account number, then press hash.",
        "Thank you. An agent will be with you shortly.",
    ]
    assert [s.through for s in transcript.steps] == [
        ["welcome", "by_tier", "main_menu"],
        ["account_number"],
        ["to_accounts"],
    ]
    assert [s.waiting_at for s in transcript.steps] == ["main_menu", "account_number", None]
    assert transcript.outcome is not None
    assert transcript.outcome.type == "enqueue"
    assert transcript.outcome.learned.account_verified is True
    assert transcript.waiting_at is None
    assert transcript.unused_inputs == 0


def test_a_platinum_caller_skips_the_menu() -> None:
    transcript = dry_run(DEMO_FLOW, [], CallFacts(tier=Tier.platinum))
    assert transcript.path == ["welcome", "by_tier", "to_vip"]
    assert transcript.outcome is not None
    assert transcript.outcome.type == "enqueue"


def test_after_hours_billing_takes_a_voicemail() -> None:
    url = "https://recordings.example/RE1.mp3"
    transcript = dry_run(
        DEMO_FLOW,
        [DigitsEntered(digits="1"), RecordingDone(url=url)],
        CallFacts(hours={"billing": HoursNow.closed}),
    )
    assert transcript.path[-2:] == ["billing_hours", "after_hours"]
    assert transcript.outcome is not None
    assert transcript.outcome.type == "voicemail"
    assert said(transcript.heard)[-1] == "Thank you. Goodbye."


def test_inputs_that_run_out_leave_the_call_waiting_and_extra_ones_are_counted() -> None:
    waiting = dry_run(DEMO_FLOW, [NoInput()], CallFacts())
    assert waiting.outcome is None
    assert waiting.waiting_at == "main_menu"
    extra = dry_run(
        DEMO_FLOW,
        [DigitsEntered(digits="3"), DigitsEntered(digits="1"), NoInput()],
        CallFacts(calling_number=CALLER),
    )
    assert extra.outcome is not None
    assert extra.outcome.type == "callback"
    assert extra.unused_inputs == 1


def test_an_input_the_call_is_not_waiting_for_is_named() -> None:
    with pytest.raises(InvalidField) as caught:
        dry_run(DEMO_FLOW, [NoInput(), RecordingDone(url="https://r.example/1")], CallFacts())
    assert caught.value.fields == [
        {
            "field": "inputs[1]",
            "problem": "the call waits at 'main_menu'; a 'recording' event is out of turn",
        }
    ]


# over HTTP

DEMO_DOCUMENT: dict[str, Any] = DEMO_FLOW.model_dump(mode="json", exclude_defaults=True)


async def test_an_admin_dry_runs_a_document(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = {
        "document": DEMO_DOCUMENT,
        "inputs": ["9", {"type": "no_input"}, "2"],
        "facts": {"language": "en-US"},
    }
    response = await client.post("/v1/ivr/dry-run", json=body, headers=admin)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["path"] == [
        "welcome",
        "by_tier",
        "main_menu",
        "chinese",
        "main_menu",
        "account_number",
    ]
    assert answer["waiting_at"] == "account_number"
    assert answer["outcome"] is None
    sorry = answer["steps"][2]["heard"][0]  # after choosing Chinese, in Chinese only
    assert sorry["say"].startswith("对不起")
    assert sorry["language"] == "zh-CN"


async def test_a_bad_flow_is_refused_naming_its_nodes(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    document = {
        "start": "menu",
        "nodes": {
            "menu": {
                "type": "menu",
                "prompts": [{"text": "Press 1."}],
                "options": {"1": "gone"},
                "on_invalid": "menu",
            },
            "orphan": {"type": "hangup"},
        },
    }
    response = await client.post("/v1/ivr/dry-run", json={"document": document}, headers=admin)
    assert response.status_code == 422, response.text
    answer = response.json()
    assert answer["error"] == "invalid_flow"
    assert [f["field"] for f in answer["fields"]] == [
        "document.nodes.menu.options.1",
        "document.nodes.menu",
        "document.nodes.orphan",
    ]


async def test_a_shapeless_document_is_refused_naming_the_field(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    document = {
        "start": "q",
        "nodes": {"q": {"type": "enqueue", "queue": "general", "priority": 5000}},
    }
    response = await client.post("/v1/ivr/dry-run", json={"document": document}, headers=admin)
    assert response.status_code == 422
    assert response.json()["fields"][0]["field"] == "document.nodes.q.enqueue.priority"
