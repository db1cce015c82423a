"""The benchmark's options: command-line flags, each with a BENCH_* environment default."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True, slots=True)
class Options:
    agents: int = 500
    customers: int = 200
    rate: float = 50.0  # interactions per second in the steady phase (Poisson)
    warmup: float = 5.0  # seconds at `rate` before the steady phase, not measured
    steady: float = 60.0  # seconds of the measured steady phase
    handle: float = 2.0  # mean handle time (exponential) in the steady phase, seconds
    ramp_start: float = 5.0  # first rate of the ramp to saturation, doubled every step
    ramp_max: float = 2560.0  # the ramp stops after this rate, or when saturated
    ramp_step: float = 4.0  # seconds per ramp step
    ramp_handle: float = 0.2  # mean handle time during the ramp (and the burst), seconds
    burst: int = 0  # also queue this many at once while agents are away (0: no burst)
    burst_seconds: float = 30.0  # stop queueing the burst after this long
    burst_timeout: float = 60.0  # give up draining the burst after this long
    voice_rate: float = 50.0  # calls per second arriving through Twilio's webhook (Poisson)
    voice_seconds: float = 20.0  # seconds of the measured voice phase, after `warmup` (0: none)
    voice_handle: float = 2.0  # mean talk time of a call (exponential), seconds
    chat_rate: float = 10.0  # new chats per second at the chat widget (Poisson)
    chat_seconds: float = 20.0  # seconds of the measured chat phase, after `warmup` (0: none)
    chat_lines: int = 3  # lines each customer exchanges with the agent after the first
    supervisors: int = 50  # supervisor sockets watching in the fan-out phase
    fanout_seconds: float = 20.0  # seconds of the measured fan-out phase at `rate` (0: none)
    baseline_seconds: float = 5.0
    baseline_connections: int = 8
    http_connections: int = 32  # keep-alive pool of the interaction poster
    workers: int = 1  # server processes (`serve --workers`), each a replica on one port
    ws_compression: bool = False  # permessage-deflate on the agents' sockets
    seed: int = 7
    quick: bool = False
    output: Path = RESULTS / "latest.json"

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data["output"] = str(self.output)
        return data


QUICK: dict[str, Any] = {
    "agents": 100,
    "steady": 15.0,
    "warmup": 3.0,
    "ramp_step": 3.0,
    "voice_seconds": 10.0,
    # 100 agents would all be talking at 50 calls/s of 2 s: half as long keeps half of them free.
    "voice_handle": 1.0,
    "chat_seconds": 10.0,
    "fanout_seconds": 10.0,
}


def _env(name: str, default: Any) -> Any:
    raw = os.environ.get(f"BENCH_{name.upper()}")
    if raw is None:
        return default
    if isinstance(default, bool):
        return raw.lower() in {"1", "true", "yes", "on"}
    if isinstance(default, Path):
        return Path(raw)
    return type(default)(raw)


def parse(argv: Sequence[str] | None = None) -> Options:
    defaults = Options()
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Routing benchmark: starts PostgreSQL and the server, connects N agent "
        "sockets, sends a Poisson stream of interactions, then a burst, then the same stream "
        "watched by supervisors' live sockets, then calls through Twilio's webhook, then chats "
        "at a website's widget, and checks the rules. "
        "Every option also reads BENCH_<NAME> from the environment (e.g. BENCH_AGENTS=200).",
    )
    parser.add_argument("--quick", action="store_true", default=_env("quick", False))
    helps = {
        "agents": "agent sockets (default 500; --quick 100)",
        "customers": "customers created, spread over the four tiers",
        "rate": "interactions per second in the steady phase",
        "warmup": "seconds at --rate before measuring",
        "steady": "seconds of the measured steady phase (default 60; --quick 15)",
        "handle": "mean handle time in the steady phase, seconds (exponential)",
        "ramp_start": "first rate of the ramp to saturation (doubles every step)",
        "ramp_max": "highest rate of the ramp",
        "ramp_step": "seconds per ramp step (default 4; --quick 3)",
        "ramp_handle": "mean handle time during the ramp and the burst, seconds",
        "burst": "also queue this many at once while agents are away, then drain (default 0)",
        "burst_seconds": "stop queueing the burst after this many seconds",
        "burst_timeout": "seconds to wait for the burst to drain",
        "voice_rate": "calls per second through the signed Twilio webhook in the voice phase",
        "voice_seconds": "seconds of the measured voice phase (default 20; --quick 10; 0: none)",
        "voice_handle": "mean talk time of a call, seconds (default 2; --quick 1)",
        "chat_rate": "new chats per second at the chat widget in the chat phase (Poisson)",
        "chat_seconds": "seconds of the measured chat phase (default 20; --quick 10; 0: none)",
        "chat_lines": "lines each customer and agent exchange after the first (default 3)",
        "supervisors": "supervisor sockets watching the floor in the fan-out phase (default 50)",
        "fanout_seconds": "seconds of the fan-out phase at --rate (default 20; --quick 10)",
        "baseline_seconds": "seconds of the bare asyncpg baseline",
        "baseline_connections": "connections of the bare asyncpg baseline",
        "http_connections": "keep-alive connections posting interactions",
        "workers": "server processes sharing the port (serve --workers)",
        "seed": "random seed (agents' skills, the stream)",
        "output": "where the JSON results go",
    }
    for name, text in helps.items():
        default = getattr(defaults, name)
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=type(default),
            default=None,
            help=f"{text} [BENCH_{name.upper()}]",
        )
    parser.add_argument(
        "--ws-compression",
        action="store_true",
        default=_env("ws_compression", False),
        help="offer permessage-deflate on agent sockets, as browsers do [BENCH_WS_COMPRESSION]",
    )
    args = parser.parse_args(argv)
    options = replace(defaults, quick=args.quick, ws_compression=args.ws_compression)
    if args.quick:
        options = replace(options, **QUICK)
    values: dict[str, Any] = {}
    for name in helps:
        given = getattr(args, name)
        values[name] = given if given is not None else _env(name, getattr(options, name))
    return replace(options, **values)
