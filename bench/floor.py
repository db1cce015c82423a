"""The transport floor: how many interactions a second this machine can carry over HTTP intake
and websocket desks at all, with routing and the database taken out.

`python -m bench.floor` (`make bench-floor`) starts bench.floor_server, connects the benchmark's
own desks and poster to it, and runs the same ramp as `make bench`. Its best step is the most
offers a second any server on this stack could make here while the benchmark's clients share the
machine; the real server's `routed_per_s` is read against it (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from bench.agents import Fleet
from bench.config import RESULTS, Options
from bench.environment import CpuMeter, Server, machine
from bench.floor_server import ADMIN_TOKEN, TOKEN_PREFIX
from bench.http import Pool
from bench.load import Poster
from bench.run import LoopLag, log, ramp_phase, run_on_uvloop
from bench.setup import SKILLS, AgentLogin, Center

OUTPUT = RESULTS / "floor.json"


@dataclass
class FloorServer(Server):
    """bench.floor_server as a subprocess, started and stopped like the real server."""

    def command(self) -> list[str]:
        return [sys.executable, "-m", "bench.floor_server", "--port", str(self.port)]


def center(agents: int, customers: int, seed: int) -> Center:
    rng = random.Random(seed)
    return Center(
        admin_headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        queues=SKILLS,
        customers=tuple(str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(customers)),
        agents=tuple(AgentLogin(f"agent{i:04d}", f"{TOKEN_PREFIX}{i}", {}) for i in range(agents)),
    )


def per_offer_ms(percent: float, offers_per_s: float) -> float | None:
    """CPU milliseconds per offer from a share of one core (percent) and the offer rate."""
    return round(percent * 10 / offers_per_s, 3) if offers_per_s > 0 else None


async def measure(options: Options, server: FloorServer) -> dict[str, Any]:
    server.start()
    await server.wait_healthy()
    assert server.process is not None
    floor_center = center(options.agents, options.customers, options.seed)
    fleet = Fleet(server.ws_url, options.ramp_handle, seed=options.seed)
    http = Pool("127.0.0.1", server.port, options.http_connections)
    http.start()
    poster = Poster(http, floor_center, seed=options.seed)
    lag = LoopLag()
    lag.start()
    try:
        await fleet.connect_all(floor_center.agents)
        refused = await fleet.set_state("available")
        log(f"{len(fleet.desks)} desks connected ({refused} could not go available)")
        meter = CpuMeter(server.process.pid, None)
        ramp = await ramp_phase(options, meter, fleet, poster, lag)
    finally:
        lag.stop()
        await fleet.close()
        await poster.settle(within=10)
        await http.close()
    for step in ramp["steps"]:
        usage = step["cpu_percent"]
        step["bench_cpu_ms_per_offer"] = per_offer_ms(usage["bench"], step["offers_per_s"])
    return {
        "parameters": options.public(),
        "machine": machine("none"),
        "routed_per_s": ramp["routed_per_s"],
        "ramp": ramp,
        "desk_errors": len(fleet.errors),
        "ingest_failures": dict(poster.failures),
    }


def table(results: dict[str, Any]) -> str:
    lines = [
        "rate/s   sent/s  offered/s  server%  bench%  other%  server ms/offer  bench ms/offer",
    ]
    for step in results["ramp"]["steps"]:
        usage = step["cpu_percent"]
        lines.append(
            f"{step['rate']:>6g} {step['sent_per_s']:>8} {step['offers_per_s']:>10} "
            f"{usage['server']:>8} {usage['bench']:>7} {usage['other']:>7} "
            f"{step['server_cpu_ms_per_offer']!s:>16} {step['bench_cpu_ms_per_offer']!s:>15}"
        )
    lines.append(f"transport floor: {results['routed_per_s']} offers/s at most")
    return "\n".join(lines)


def parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.floor",
        description="The most offers a second HTTP intake and websocket desks carry on this "
        "machine, with no routing and no database (docs/benchmarks.md).",
    )
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--ramp-start", type=float, default=160.0)
    parser.add_argument("--ramp-max", type=float, default=5120.0)
    parser.add_argument("--ramp-step", type=float, default=4.0)
    parser.add_argument("--output", default=str(OUTPUT))
    args = parser.parse_args(argv)
    return replace(
        Options(),
        agents=args.agents,
        ramp_start=args.ramp_start,
        ramp_max=args.ramp_max,
        ramp_step=args.ramp_step,
        output=type(OUTPUT)(args.output),
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    server = FloorServer(database_url="")
    started = time.perf_counter()
    try:
        results = run_on_uvloop(measure(options, server))
    finally:
        server.stop()
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(table(results))
    log(f"results written to {options.output} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
