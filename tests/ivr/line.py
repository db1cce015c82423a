"""A phone line for the tests: Twilio's side of a call, driven the way Twilio drives it.

`TwilioCaller` posts the webhooks Twilio would post, signed as Twilio signs them, and follows
the TwiML it is answered with: the `action` of a `<Gather>`, `<Record>` or `<Dial>`, the
`<Redirect>` of the wait loop, the `statusCallback` of the agent's leg. The test says what the
person on the phone does (press keys, stay silent, hang up) and what the agent's phone does.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from tests.ivr.twilio_standin import ACCOUNT_SID, call_form, post_signed

PUBLIC_BASE_URL = "https://cc.example.com"  # what Twilio requests; the proxy forwards it


def parsed(twiml: str) -> ET.Element:
    return ET.fromstring(twiml)  # noqa: S314 -- our own TwiML, in a test


def spoken(twiml: str) -> list[str]:
    """Every text said in a TwiML document, in order, nested ones included."""
    return [say.text or "" for say in parsed(twiml).iter("Say")]


@dataclass
class TwilioCaller:
    """One call as Twilio would drive it: every answer kept in `answers`."""

    http: httpx.AsyncClient
    call_sid: str
    caller: str = "+8613800138000"
    dialled: str = "+864000000000"
    answers: list[str] = field(default_factory=list)

    @property
    def twiml(self) -> ET.Element:
        return parsed(self.answers[-1])

    async def post(self, url: str, **fields: str) -> httpx.Response:
        """A signed webhook to `url` (a public URL our TwiML handed out, or a path)."""
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        form = call_form(self.call_sid, From=self.caller, To=self.dialled, **fields)
        return await post_signed(self.http, path, form, public_base_url=PUBLIC_BASE_URL)

    async def _follow(self, url: str, **fields: str) -> str:
        response = await self.post(url, **fields)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/xml")
        self.answers.append(response.text)
        return response.text

    async def ring(self) -> str:
        return await self._follow("/v1/voice/twilio/incoming", CallStatus="ringing")

    async def press(self, digits: str) -> str:
        """Keys at the `<Gather>` the last answer holds (the IVR's, or the wait loop's)."""
        gather = self._one("Gather")
        return await self._follow(gather.attrib["action"], Digits=digits, CallStatus="in-progress")

    async def stay_silent(self) -> str:
        """The `<Gather>` times out: Twilio posts it with no digits (actionOnEmptyResult)."""
        return await self.press("")

    async def hold_on(self) -> str:
        """The wait loop's `<Redirect>` comes due."""
        redirect = self._one("Redirect")
        return await self._follow(redirect.text or "", CallStatus="in-progress")

    async def leave_message(self, recording_url: str) -> str:
        record = self._one("Record")
        return await self._follow(
            record.attrib["action"],
            RecordingUrl=recording_url,
            RecordingSid="RE" + "0" * 32,
            RecordingDuration="12",
            Digits="#",
            CallStatus="in-progress",
        )

    async def agent_picks_up(self, dial: ET.Element) -> httpx.Response:
        """The agent's leg answers: the statusCallback of the `<Dial>`'s noun."""
        noun = next(iter(dial))
        return await self.post(
            noun.attrib["statusCallback"],
            CallSid="CA" + "a" * 32,
            ParentCallSid=self.call_sid,
            CallStatus="in-progress",
            Direction="outbound-dial",
        )

    async def dial_ends(self, dial: ET.Element, status: str) -> str:
        """The `<Dial>` ends (`completed` after a talk; `busy`, `no-answer`, `failed`)."""
        return await self._follow(
            dial.attrib["action"], DialCallStatus=status, CallStatus="in-progress"
        )

    async def hang_up(self, status: str = "completed") -> httpx.Response:
        """The call ends: the number's status callback."""
        return await self.post("/v1/voice/twilio/status", CallStatus=status, CallDuration="30")

    def _one(self, tag: str) -> ET.Element:
        found = next(self.twiml.iter(tag), None)
        assert found is not None, f"no <{tag}> in {self.answers[-1]}"
        return found


def dial_in(twiml: str) -> ET.Element:
    """The `<Dial>` of a redirect's TwiML (the Calls API's `Twiml` field)."""
    dial = next(parsed(twiml).iter("Dial"), None)
    assert dial is not None, twiml
    return dial


__all__ = ["ACCOUNT_SID", "PUBLIC_BASE_URL", "TwilioCaller", "dial_in", "spoken"]
