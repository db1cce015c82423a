"""The IVR engine's actions rendered as TwiML (app/ivr/twiml.py), as docs/telephony.md shows.

The XML is parsed and compared element by element (tags, attributes, text), never as strings:
attribute order and whitespace mean nothing to Twilio.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import TypeAdapter

from app.agents.voice import EndpointKind, voice_endpoint
from app.ivr.actions import (
    Action,
    Connect,
    Gather,
    Hangup,
    Hold,
    Language,
    Play,
    Record,
    Say,
    Transfer,
)
from app.ivr.twiml import Callback, CallbackUrls, callback_url, render_twiml

DOCS = Path(__file__).resolve().parents[2] / "docs" / "telephony.md"
BASE = "https://cc.example.com"
CALL = uuid.UUID("5b8e0f9a-4a7e-4c47-9a53-4f1c2d9e7b10")
URLS = CallbackUrls(BASE, CALL, turn=4)
ACTIONS = TypeAdapter(list[Action])

Tree = tuple[str, dict[str, str], str, list[Any]]


def tree(element: ET.Element) -> Tree:
    """An element as (tag, attributes, text, children), whitespace between elements dropped."""
    return (
        element.tag,
        dict(element.attrib),
        (element.text or "").strip(),
        [tree(child) for child in element],
    )


def rendered(*actions: Action, urls: CallbackUrls = URLS) -> ET.Element:
    return ET.fromstring(render_twiml(list(actions), urls))  # noqa: S314 -- our own output


def _docs_examples() -> list[tuple[str, str]]:
    text = DOCS.read_text()
    found = re.findall(
        r"<!-- twiml example -->\n```json\n(.*?)```\n```xml\n(.*?)```", text, flags=re.DOTALL
    )
    assert len(found) == text.count("<!-- twiml example -->"), "an example lost its blocks"
    return found


@pytest.mark.parametrize(("actions", "twiml"), _docs_examples())
def test_every_example_in_the_docs_is_what_is_rendered(actions: str, twiml: str) -> None:
    expected = ET.fromstring(twiml)  # noqa: S314 -- our own docs

    assert tree(rendered(*ACTIONS.validate_json(actions))) == tree(expected)


def test_the_docs_show_every_action() -> None:
    shown = {
        action.type for actions, _ in _docs_examples() for action in ACTIONS.validate_json(actions)
    }
    every = {"say", "play", "gather", "record", "hold", "connect", "transfer", "hangup"}

    assert shown == every


def test_say_speaks_each_language_in_its_voice() -> None:
    response = rendered(
        Say(text="Hello"),
        Say(text="您好", language=Language.zh_cn),
        Say(text="Hi", voice="Polly.Matthew-Neural"),
    )

    english, mandarin, own = response
    assert (english.tag, english.text) == ("Say", "Hello")
    assert english.attrib == {"language": "en-US", "voice": "Polly.Joanna-Neural"}
    assert mandarin.attrib == {"language": "cmn-CN", "voice": "Polly.Zhiyu-Neural"}
    assert own.attrib == {"language": "en-US", "voice": "Polly.Matthew-Neural"}


def test_text_is_escaped_not_markup() -> None:
    [say] = rendered(Say(text='Press <1> & "2"'))

    assert say.text == 'Press <1> & "2"'
    assert list(say) == []


def test_gather_nests_its_prompts_and_posts_to_the_gather_url() -> None:
    [gather] = rendered(
        Gather(
            prompts=[Say(text="Press 1"), Play(url="https://cc.example.com/p.mp3")],
            num_digits=1,
            finish_on_key="#",
            timeout_seconds=7,
        )
    )

    assert gather.tag == "Gather"
    assert gather.attrib == {
        "action": callback_url(BASE, Callback.gather, CALL, turn=4),
        "actionOnEmptyResult": "true",
        "finishOnKey": "#",
        "input": "dtmf",
        "method": "POST",
        "numDigits": "1",
        "timeout": "7",
    }
    assert [(child.tag, child.text) for child in gather] == [
        ("Say", "Press 1"),
        ("Play", "https://cc.example.com/p.mp3"),
    ]


def test_a_gather_without_a_finishing_key_or_a_count_says_so() -> None:
    [gather] = rendered(Gather())

    assert gather.attrib["finishOnKey"] == ""  # Twilio's own default would be "#"
    assert "numDigits" not in gather.attrib


def test_record_says_its_prompts_first_and_comes_back_when_nothing_was_recorded() -> None:
    say, record, redirect = rendered(
        Record(prompts=[Say(text="After the tone")], max_seconds=60, finish_on_key="*")
    )

    url = callback_url(BASE, Callback.record, CALL, turn=4)
    assert (say.tag, say.text) == ("Say", "After the tone")
    assert record.tag == "Record"
    assert record.attrib == {
        "action": url,
        "method": "POST",
        "maxLength": "60",
        "finishOnKey": "*",
        "playBeep": "true",
    }
    assert (redirect.tag, redirect.text, redirect.attrib) == ("Redirect", url, {"method": "POST"})


def test_hold_plays_pauses_and_comes_back() -> None:
    play, pause, redirect = rendered(
        Hold(prompts=[Play(url="https://cc.example.com/music.mp3")], recheck_seconds=15)
    )

    assert play.tag == "Play"
    assert (pause.tag, pause.attrib) == ("Pause", {"length": "15"})
    assert redirect.tag == "Redirect"
    assert redirect.text == callback_url(BASE, Callback.hold, CALL, turn=4)


def test_hold_that_listens_for_a_key_posts_it_to_the_hold_url() -> None:
    gather, redirect = rendered(
        Hold(prompts=[Say(text="Press 1 for a callback")], recheck_seconds=25, listen_for="1")
    )

    hold_url = callback_url(BASE, Callback.hold, CALL, turn=4)
    assert gather.tag == "Gather"
    assert gather.attrib["action"] == hold_url
    assert gather.attrib["numDigits"] == "1"
    assert gather.attrib["timeout"] == "25"
    assert "actionOnEmptyResult" not in gather.attrib  # silence falls through to the redirect
    assert [child.text for child in gather] == ["Press 1 for a callback"]
    assert (redirect.tag, redirect.text) == ("Redirect", hold_url)


@pytest.mark.parametrize(
    ("endpoint", "noun", "address"),
    [
        ("client:mei_lin", "Client", "mei_lin"),
        ("sip:mei@pbx.example.com;transport=tls", "Sip", "sip:mei@pbx.example.com;transport=tls"),
        ("+8613800138000", "Number", "+8613800138000"),
    ],
)
def test_connect_dials_the_endpoint_by_its_shape(endpoint: str, noun: str, address: str) -> None:
    [dial] = rendered(Connect(endpoint=endpoint, timeout_seconds=25))

    assert dial.tag == "Dial"
    assert dial.attrib == {
        "action": callback_url(BASE, Callback.dial, CALL, turn=4),
        "method": "POST",
        "timeout": "25",
    }
    [rung] = dial
    assert (rung.tag, rung.text) == (noun, address)
    assert rung.attrib == {
        "statusCallback": callback_url(BASE, Callback.answered, CALL, turn=4),
        "statusCallbackEvent": "answered",
        "statusCallbackMethod": "POST",
    }


@pytest.mark.parametrize(
    "endpoint",
    [
        "mei",
        "client:",
        "client:mei lin",
        "client:mei<x>",
        "sip:",
        "8613800138000",
        "+0123",
        "tel:+1",
    ],
)
def test_an_endpoint_of_no_known_shape_is_refused_with_the_shapes_taken(endpoint: str) -> None:
    with pytest.raises(ValueError, match="client:<name>"):
        voice_endpoint(endpoint)
    with pytest.raises(ValueError, match="no voice endpoint"):
        render_twiml([Connect(endpoint=endpoint)], URLS)


def test_voice_endpoint_reads_each_shape() -> None:
    assert voice_endpoint("client:mei").kind is EndpointKind.client
    assert voice_endpoint("sip:1001@10.0.0.5:5060").kind is EndpointKind.sip
    assert voice_endpoint("+14155550100").kind is EndpointKind.number


def test_transfer_dials_the_number_with_no_way_back() -> None:
    [dial] = rendered(Transfer(number="+861087654321"))

    assert tree(dial) == ("Dial", {}, "", [("Number", {}, "+861087654321", [])])
    with pytest.raises(ValueError, match=r"E\.164"):
        render_twiml([Transfer(number="client:mei")], URLS)


def test_hangup_and_an_empty_turn() -> None:
    assert tree(rendered(Hangup())) == ("Response", {}, "", [("Hangup", {}, "", [])])
    assert tree(rendered()) == ("Response", {}, "", [])


def test_the_callback_urls_name_the_step_and_the_call() -> None:
    url = callback_url("https://cc.example.com/voice/", Callback.dial, CALL, turn=12)
    parts = urlsplit(url)

    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "cc.example.com",
        "/voice/v1/voice/twilio/dial",
    )
    assert parse_qs(parts.query) == {"call": [str(CALL)], "turn": ["12"]}
    assert callback_url(BASE, Callback.gather, "a b&c") == (
        f"{BASE}/v1/voice/twilio/gather?call=a+b%26c"
    )
    assert {c.value for c in Callback} == {"gather", "record", "hold", "dial", "answered"}


def test_the_docs_examples_use_one_call() -> None:
    """The docs' URLs are the ones this test renders with (a guard on the guard above)."""
    urls = {u for _, twiml in _docs_examples() for u in re.findall(r"https://[^\s<\"]+", twiml)}
    calls = {parse_qs(urlsplit(u.replace("&amp;", "&")).query).get("call", [None])[0] for u in urls}

    assert calls - {None} == {str(CALL)}
