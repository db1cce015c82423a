"""An agent's voice endpoint: where the agent's leg of a call rings when a gateway bridges a
caller to the agent. Read by its shape, once, here: the agents API checks it when it is saved,
and the voice gateways (app/ivr/twiml.py) render it. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

# The longest endpoint any shape allows (`sip:` and 251 characters): agents.voice_endpoint's
# width.
LONGEST = 255


class EndpointKind(StrEnum):
    client = "client"
    sip = "sip"
    number = "number"


@dataclass(frozen=True)
class VoiceEndpoint:
    """Where an agent's leg rings: a softphone (`<Client>`), a SIP URI (`<Sip>`), a number."""

    kind: EndpointKind
    address: str


# Twilio's client identities are letters, digits and underscores, at most 121 of them.
_CLIENT = re.compile(r"client:([A-Za-z0-9_]{1,121})")
_SIP = re.compile(r"sip:[^\s<>\"']{1,251}")
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


def voice_endpoint(endpoint: str) -> VoiceEndpoint:
    """An agent's voice endpoint read by its shape: `client:name`, `sip:user@host`, or an
    E.164 number (`+8613800138000`). Anything else is a ValueError that says what is taken."""
    if found := _CLIENT.fullmatch(endpoint):
        return VoiceEndpoint(EndpointKind.client, found.group(1))
    if _SIP.fullmatch(endpoint):
        return VoiceEndpoint(EndpointKind.sip, endpoint)
    if _E164.fullmatch(endpoint):
        return VoiceEndpoint(EndpointKind.number, endpoint)
    raise ValueError(
        f"{endpoint!r} is no voice endpoint: write client:<name> (letters, digits, _),"
        " sip:<user>@<host>, or an E.164 number such as +8613800138000"
    )
