"""What the backend tells a telephony gateway to do next on a call: the IVR engine's output.

A gateway carries the audio; the backend only decides. The flow engine (app/ivr/engine.py) turns
a call's state and an event into a list of these actions, and each wire format renders them: the
Twilio-compatible webhooks as TwiML (app/ivr/twilio.py), the generic JSON call-event API as the
JSON of these very models (their `type` tells them apart). They are the contract between the
engine and the wire formats, so they say what the caller experiences, not how a gateway does it.

Pure data: no I/O, no database.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class Language(StrEnum):
    """The languages prompts are spoken in; each gateway maps one to a voice of its own."""

    en_us = "en-US"
    zh_cn = "zh-CN"


class _Action(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Say(_Action):
    """Speak `text` (text to speech) in `language`; `voice` names a gateway's voice, if any."""

    type: Literal["say"] = "say"
    text: str = Field(min_length=1, max_length=2000)
    language: Language = Language.en_us
    voice: str | None = Field(default=None, max_length=64)


class Play(_Action):
    """Play a recorded prompt from `url` (a gateway fetches it)."""

    type: Literal["play"] = "play"
    url: str = Field(min_length=1, max_length=2000)


Prompt = Annotated[Say | Play, Field(discriminator="type")]


class Gather(_Action):
    """Play `prompts` while listening for keys; the digits (or none, after `timeout_seconds` of
    silence) come back as the call's next event. `num_digits`: stop after that many;
    `finish_on_key`: or at this key (not part of the digits)."""

    type: Literal["gather"] = "gather"
    prompts: list[Prompt] = Field(default_factory=list)
    num_digits: int | None = Field(default=None, ge=1, le=32)
    finish_on_key: str | None = Field(default=None, pattern=r"^[0-9*#]$")
    timeout_seconds: int = Field(default=5, ge=1, le=60)


class Record(_Action):
    """Record the caller (a voicemail) after `prompts`, for at most `max_seconds`; the
    recording's URL comes back as the call's next event."""

    type: Literal["record"] = "record"
    prompts: list[Prompt] = Field(default_factory=list)
    max_seconds: int = Field(default=120, ge=1, le=3600)
    finish_on_key: str | None = Field(default="#", pattern=r"^[0-9*#]$")


class Hold(_Action):
    """The caller waits in a queue: play `prompts` (position, estimated wait, the callback
    option), then ask again after `recheck_seconds`. The backend keeps the queue (a gateway's
    own queue would have an order of its own): Twilio renders this as Say/Play + Redirect."""

    type: Literal["hold"] = "hold"
    prompts: list[Prompt] = Field(default_factory=list)
    recheck_seconds: int = Field(default=30, ge=1, le=600)
    # A key the caller may press while holding (the callback option), if any.
    listen_for: str | None = Field(default=None, pattern=r"^[0-9*#]$")


class Connect(_Action):
    """Bridge the caller to an agent's voice endpoint (a softphone client name, a SIP URI or a
    number); whether the agent's leg answered comes back as the call's next event."""

    type: Literal["connect"] = "connect"
    endpoint: str = Field(min_length=1, max_length=255)
    timeout_seconds: int = Field(default=20, ge=5, le=120)


class Transfer(_Action):
    """Send the call to an outside number (E.164); the IVR's part ends."""

    type: Literal["transfer"] = "transfer"
    number: str = Field(min_length=2, max_length=32)


class Hangup(_Action):
    type: Literal["hangup"] = "hangup"


Action = Annotated[
    Say | Play | Gather | Record | Hold | Connect | Transfer | Hangup,
    Field(discriminator="type"),
]
