"""The benchmark from start to end: one function per phase, results to JSON and a table."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict
from types import FrameType
from typing import Any

import asyncpg
import httpx

from bench import (
    baseline,
    chat,
    complaints,
    fanout,
    ledger,
    policy,
    report,
    setup,
    violations,
    voice,
)
from bench.agents import Fleet
from bench.config import Options, parse
from bench.environment import CpuMeter, Database, Server, machine
from bench.http import Pool
from bench.load import Poster
from bench.setup import ADMIN, PASSWORD, Center, build, open_line
from bench.stats import central_rate, summary_ms
from bench.voice import CallsApi, Line, TwilioAccount

# The share of customers with an open complaint (bench/complaints.py).
COMPLAINT_SHARE = 0.2


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


class LoopLag:
    """How late this process's event loop wakes up: a busy client inflates what it measures."""

    def __init__(self, every: float = 0.05) -> None:
        self.every = every
        self.samples: list[tuple[float, float]] = []  # (perf_counter, lag seconds)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.every)
            now = time.perf_counter()
            self.samples.append((now, max(0.0, now - before - self.every)))

    def between(self, start: float, end: float) -> dict[str, float | int | None]:
        return summary_ms([lag for at, lag in self.samples if start <= at <= end])

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


async def progress(fleet: Fleet, poster: Poster, lag: LoopLag, every: float = 5.0) -> None:
    """A line every few seconds, so a stall shows while it happens."""
    while True:
        await asyncio.sleep(every)
        answered = sum(1 for s in poster.sent.values() if s.status is not None)
        recent = [x for at, x in lag.samples if at > time.perf_counter() - every]
        worst = max(recent, default=0.0) * 1000
        log(
            f"  posted {len(poster.sent)} (answered {answered}), offers {len(fleet.offer_ids)}, "
            f"completed {fleet.completions}, desk errors {len(fleet.errors)}, "
            f"disconnects {fleet.disconnects}, client lag max {worst:.0f} ms"
        )


def number(value: float, digits: int = 1) -> float | None:
    """A float for the JSON: None instead of NaN or infinity."""
    return None if math.isnan(value) or math.isinf(value) else round(value, digits)


def cpu_ms_per(usage: dict[str, float], seconds: float, count: int) -> float | None:
    """Server CPU milliseconds per item over an interval, from its CPU share."""
    if count == 0:
        return None
    return round(usage["server"] / 100 * seconds * 1000 / count, 2)


async def wait_until(condition: Callable[[], bool], within: float, every: float = 0.05) -> bool:
    deadline = time.perf_counter() + within
    while not condition():
        if time.perf_counter() > deadline:
            return False
        await asyncio.sleep(every)
    return True


async def postgres_version(dsn: str) -> str:
    connection = await asyncpg.connect(dsn)
    try:
        version: str = await connection.fetchval("SHOW server_version")
        return version
    finally:
        await connection.close()


async def latency_breakdown(
    dsn: str, refs: Sequence[str], poster: Poster, fleet: Fleet
) -> dict[str, Any]:
    """Where the steady phase's ingest-to-offer time went, from the server's own timestamps.

    ingest: the POST was due -> the interaction row's created_at (HTTP, auth, insert);
    matcher: created_at -> its first offer's created_at (waiting for a matcher pass);
    delivery: the offer's created_at -> the frame at the desk (pass commit, NOTIFY, event hub,
    screen pop, websocket). Same machine, same clock.
    """
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            """
            SELECT i.external_ref,
                   extract(epoch FROM i.created_at) AS created,
                   (SELECT extract(epoch FROM min(o.created_at)) FROM offers o
                     WHERE o.interaction_id = i.id) AS offered
              FROM interactions i WHERE i.external_ref = ANY($1::text[])
            """,
            list(refs),
        )
    finally:
        await connection.close()
    ingest: list[float] = []
    matcher: list[float] = []
    delivery: list[float] = []
    for row in rows:
        ref = row["external_ref"]
        seen = fleet.offers.get(ref)
        if row["offered"] is None or seen is None:
            continue
        created, offered = float(row["created"]), float(row["offered"])
        ingest.append(max(0.0, created - poster.sent[ref].sent_wall))
        matcher.append(max(0.0, offered - created))
        delivery.append(max(0.0, seen.received_wall - offered))
    return {
        "ingest_ms": summary_ms(ingest),
        "matcher_wait_ms": summary_ms(matcher),
        "delivery_ms": summary_ms(delivery),
    }


async def analyze(dsn: str) -> None:
    """Give the planner statistics for the tables set-up has just filled through the API, as a
    database in service has them: until autovacuum's next round (a minute or more) it has none,
    and the matcher's agent read was planned as nested loops (3.7 ms in PostgreSQL instead of
    0.8 ms). Only these: the tables the run fills would be described as nearly empty."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "ANALYZE users, agents, skills, agent_skills, queues, queue_skills, customers,"
            " contact_points"
        )
    finally:
        await connection.close()


async def snapshot(dsn: str) -> dict[str, Any]:
    """The database as the run ends, before the server stops: who is in which state, and what
    the server's connections are doing (a stuck run shows here)."""
    connection = await asyncpg.connect(dsn)
    try:
        agents = await connection.fetch(
            "SELECT state, coalesce(state_reason, '') AS reason, count(*) AS n FROM agents "
            "GROUP BY 1, 2 ORDER BY 3 DESC"
        )
        activity = await connection.fetch(
            "SELECT state, coalesce(wait_event_type, '') AS wait, count(*) AS n, "
            "max(extract(epoch FROM now() - xact_start)) AS oldest_xact_s "
            "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "GROUP BY 1, 2 ORDER BY 3 DESC"
        )
        waiting = await connection.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted")
        stuck = await connection.fetch(
            "SELECT pid, state, coalesce(wait_event_type, '') AS wait, "
            "round(extract(epoch FROM now() - xact_start)::numeric, 1)::float AS xact_s, "
            "pg_blocking_pids(pid) AS blocked_by, left(query, 160) AS query "
            "FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state <> 'idle' ORDER BY xact_start LIMIT 8"
        )
    finally:
        await connection.close()
    return {
        "agents": [f"{r['state']} ({r['reason'] or '-'}): {r['n']}" for r in agents],
        "connections": [
            {
                "state": r["state"],
                "wait": r["wait"],
                "n": r["n"],
                "oldest_xact_s": None if r["oldest_xact_s"] is None else float(r["oldest_xact_s"]),
            }
            for r in activity
        ],
        "locks_waiting": int(waiting),
        "oldest_transactions": [
            {
                "pid": r["pid"],
                "state": r["state"],
                "wait": r["wait"],
                "xact_s": r["xact_s"],
                "blocked_by": list(r["blocked_by"]),
                "query": r["query"],
            }
            for r in stuck
        ],
    }


async def burst_offers_db(dsn: str) -> float:
    """Offers per second written by the server during the burst (central 80%), from the table."""
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT extract(epoch FROM o.created_at) AS at FROM offers o "
            "JOIN interactions i ON i.id = o.interaction_id "
            "WHERE i.external_ref LIKE 'bench-burst-%'"
        )
    finally:
        await connection.close()
    return central_rate([float(row["at"]) for row in rows])


async def lifecycle_baseline(options: Options, database: Database) -> dict[str, Any]:
    """The bare loop through route, accept and complete, with the CPU it took: the most
    interactions a second PostgreSQL carries here when nothing but their rows is written."""
    meter = CpuMeter(None, database.postmaster_pid)
    before = meter.snapshot()
    life = await baseline.run_lifecycle(
        database.baseline_dsn,
        agents=options.agents,
        connections=options.baseline_connections,
        seconds=options.baseline_seconds,
    )
    log(f"lifecycle baseline: {life.routed_per_s:.0f} interactions/s, p50 {life.p50_ms:.2f} ms")
    usage = meter.usage(before, meter.snapshot())
    return {**asdict(life), "cpu_percent": usage if database.embedded else None}


async def bench(options: Options, database: Database, server: Server) -> dict[str, Any]:
    results: dict[str, Any] = {"parameters": options.public()}
    version = await postgres_version(database.dsn)
    results["machine"] = machine(version)
    log(f"PostgreSQL {version} ({'embedded' if database.embedded else 'DATABASE_URL'})")

    log(f"baseline: bare asyncpg, {options.baseline_connections} connections")
    floor = await baseline.run(
        database.baseline_dsn,
        agents=options.agents,
        connections=options.baseline_connections,
        seconds=options.baseline_seconds,
    )
    results["baseline"] = asdict(floor)
    log(f"baseline: {floor.routed_per_s:.0f} items/s, p50 {floor.p50_ms:.2f} ms")
    results["lifecycle_baseline"] = await lifecycle_baseline(options, database)
    passes = policy.time_passes()
    results["full_floor_pass"] = passes
    log(
        f"matcher pass over {passes['waiting']:,} waiting x {passes['agents']} agents: "
        f"p50 {passes['p50_ms']} ms, max {passes['max_ms']} ms"
    )

    # Twilio's Calls API stands in on a loopback port, and the server is told to use it.
    calls_api = CallsApi(TwilioAccount())
    await calls_api.start()
    server.extra_env = calls_api.account.server_env(calls_api.base_url)
    server.start()
    await server.wait_healthy()
    await asyncio.to_thread(server.create_admin, ADMIN, PASSWORD)
    log(f"server up on port {server.port} (log {server.log_path})")

    limits = httpx.Limits(
        max_connections=options.http_connections,
        max_keepalive_connections=options.http_connections,
    )
    async with httpx.AsyncClient(
        base_url=server.base_url, limits=limits, timeout=60.0, trust_env=False
    ) as client:
        started = time.perf_counter()
        center = await build(
            client, agents=options.agents, customers=options.customers, seed=options.seed
        )
        log(
            f"set up {len(center.agents)} agents, {len(center.customers)} customers, "
            f"{len(center.queues)} queues in {time.perf_counter() - started:.1f} s"
        )
        results["complaints"] = await complaints.open_complaints(
            client, center, share=COMPLAINT_SHARE, seed=options.seed
        )
        log(f"complaints: {results['complaints']}")
        fleet = Fleet(
            server.ws_url, options.handle, compression=options.ws_compression, seed=options.seed
        )
        http = Pool("127.0.0.1", server.port, options.http_connections)
        http.start()
        poster = Poster(http, center, seed=options.seed)
        lag = LoopLag()
        lag.start()
        reporter = asyncio.get_running_loop().create_task(progress(fleet, poster, lag))
        line: Line | None = None
        try:
            await run_phases(options, database, server, fleet, poster, lag, results)
            if options.fanout_seconds > 0:
                await fanout_phase(
                    options, database, server, client, center, fleet, poster, lag, results
                )
                await settle(fleet, poster, within=10)
            if options.voice_seconds > 0:
                line = await voice_phase(
                    options, database, server, client, center, fleet, calls_api, lag, results
                )
            if options.chat_seconds > 0:
                await chat_phase(options, database, server, client, center, fleet, lag, results)
            results["end_snapshot"] = await snapshot(database.dsn)
            if results["complaints"]["opened"]:
                owned = await complaints.owner_first_offers(database.dsn)
                results["complaints"]["offers_to_the_owner"] = owned
        finally:
            reporter.cancel()
            lag.stop()
            await fleet.close()
            await poster.settle(within=10)
            await http.close()
            await calls_api.close()

    await asyncio.to_thread(server.stop)
    log("server stopped; checking the rules in the database")
    accepted = [ref for ref, sent in poster.sent.items() if sent.status in (200, 201)]
    if line is not None:  # a call the webhook answered is queued at once: it must be there
        accepted += [sid for sid, call in line.calls.items() if call.status == 200]
    checked = await violations.check(database.dsn, accepted, fleet.offer_ids)
    results["violations"] = checked.public()
    results["ledger"] = await ledger.fold_the_run(database.dsn)
    log(f"ledger: {results['ledger']}")
    results["desks"] = {
        "frames": dict(fleet.frames),
        "errors": len(fleet.errors),
        "error_sample": fleet.errors[:5],
        "disconnects": fleet.disconnects,
        "errors_by_code": dict(Counter(str(e.get("error")) for e in fleet.errors)),
        "close_codes": dict(fleet.close_codes),
        "sent_away_by_server": dict(fleet.sent_away),
        "reoffers": fleet.reoffers,
        "left_holding": fleet.owed,
    }
    results["ingest_failures"] = dict(poster.failures)
    results["setup_unauthorized_retries"] = setup.retried_unauthorized
    logged = server.errors_logged()
    results["server_log_error_lines"] = len(logged)
    results["server_log_errors"] = logged[:20]
    results["targets"] = report.targets(results)
    load1, load5, load15 = os.getloadavg()
    results["machine"]["load_average_at_end"] = [round(load1, 2), round(load5, 2), round(load15, 2)]
    return results


async def run_phases(
    options: Options,
    database: Database,
    server: Server,
    fleet: Fleet,
    poster: Poster,
    lag: LoopLag,
    results: dict[str, Any],
) -> None:
    assert server.process is not None
    meter = CpuMeter(server.process.pid, database.postmaster_pid)

    started = time.perf_counter()
    await fleet.connect_all(poster.center.agents)
    refused = await fleet.set_state("available")
    log(
        f"{len(fleet.desks)} desks connected and available in "
        f"{time.perf_counter() - started:.1f} s ({refused} could not go available)"
    )
    await analyze(database.dsn)
    idle_before = meter.snapshot()
    await asyncio.sleep(3)
    results["idle_cpu_percent"] = meter.usage(idle_before, meter.snapshot())

    # The ramp runs first: a steady rate the server cannot sustain leaves a backlog that would
    # swamp a ramp after it, while a ramp stopped at saturation leaves little behind.
    log(f"ramp: from {options.ramp_start:g}/s, doubling every {options.ramp_step:g} s")
    results["ramp"] = await ramp_phase(options, meter, fleet, poster, lag)
    ramp_refs = [ref for ref, sent in poster.sent.items() if sent.phase.startswith("ramp")]
    drained = await wait_until(lambda: all(r in fleet.offers for r in ramp_refs), within=40)
    await settle(fleet, poster, within=10)
    log("ramp backlog drained" if drained else "ramp backlog NOT drained within 40 s")
    results["ramp"]["backlog_drained"] = drained

    fleet.handle_mean = options.handle
    results["steady"] = await steady_phase(options, database, meter, fleet, poster, lag)
    itr = results["steady"]["ingest_to_offer_ms"]
    results["ingest_to_offer_ms"] = {key: itr[key] for key in ("p50", "p95", "p99", "max")}
    await settle(fleet, poster, within=10)
    if options.burst > 0:
        results["burst"] = await burst_phase(options, database, meter, fleet, poster, lag)
        await settle(fleet, poster, within=20)
    # Offers per second at saturation: the best ramp step, or the steady phase when that one
    # could not keep up either (its deeper backlog lets each matcher pass offer more).
    steady = results["steady"]
    candidates = [("ramp", results["ramp"]["routed_per_s"])]
    if steady["offers_per_s"] < 0.9 * steady["sent_per_s"]:
        candidates.append(("steady", steady["offers_per_s"]))
    if "burst" in results and results["burst"]["routed_per_s"] is not None:
        candidates.append(("burst", results["burst"]["routed_per_s"]))
    source, routed = max(candidates, key=lambda c: c[1])
    results["routed_per_s"] = routed
    results["routed_per_s_from"] = source


async def steady_phase(
    options: Options,
    database: Database,
    meter: CpuMeter,
    fleet: Fleet,
    poster: Poster,
    lag: LoopLag,
) -> dict[str, Any]:
    """Poisson arrivals at `rate`; agents handle for `handle` s on average."""
    log(f"warm-up: {options.warmup:g} s at {options.rate:g}/s")
    await poster.poisson(options.rate, options.warmup, "warmup")
    log(f"steady: {options.steady:g} s at {options.rate:g}/s, mean handle {options.handle:g} s")
    before, start = meter.snapshot(), time.perf_counter()
    fired = await poster.poisson(options.rate, options.steady, "steady")
    after, end = meter.snapshot(), time.perf_counter()
    refs = [ref for ref, sent in poster.sent.items() if sent.phase == "steady"]
    await wait_until(lambda: all(ref in fleet.offers for ref in refs), within=15)
    latencies = [
        fleet.offers[ref].received - poster.sent[ref].sent for ref in refs if ref in fleet.offers
    ]
    answered = [s.answered - s.sent for ref in refs if (s := poster.sent[ref]).answered is not None]
    offered_in_window = sum(1 for t in fleet.offer_times if start <= t <= end)
    usage = meter.usage(before, after)
    itr = summary_ms(latencies, never=fired - len(latencies))
    log(
        f"steady: ingest-to-offer p50 {itr['p50']} ms, p95 {itr['p95']} ms, p99 {itr['p99']} ms "
        f"({len(latencies)}/{fired} offered)"
    )
    return {
        "seconds": round(end - start, 2),
        "sent": fired,
        "offered": len(latencies),
        "not_offered": fired - len(latencies),
        "sent_per_s": round(fired / (end - start), 1),
        "offers_per_s": round(offered_in_window / (end - start), 1),
        "ingest_to_offer_ms": itr,
        "post_answered_ms": summary_ms(answered),
        "breakdown": await latency_breakdown(database.dsn, refs, poster, fleet),
        "cpu_percent": usage,
        "server_cpu_ms_per_offer": cpu_ms_per(usage, end - start, offered_in_window),
        "client_loop_lag_ms": lag.between(start, end),
    }


async def ramp_phase(
    options: Options,
    meter: CpuMeter,
    fleet: Fleet,
    poster: Poster,
    lag: LoopLag,
) -> dict[str, Any]:
    """The rate doubles every step, handle times short, until offers stop keeping up: the most
    first offers per second seen in a step is what the routing path sustains at saturation."""
    fleet.handle_mean = options.ramp_handle
    steps: list[dict[str, Any]] = []
    rate = options.ramp_start
    behind = 0
    best_so_far = 0.0
    while rate <= options.ramp_max and behind < 2:
        phase = f"ramp{rate:g}"
        before, start = meter.snapshot(), time.perf_counter()
        fired = await poster.poisson(rate, options.ramp_step, phase)
        after, end = meter.snapshot(), time.perf_counter()
        offered = sum(1 for t in fleet.offer_times if start <= t <= end)
        usage = meter.usage(before, after)
        step = {
            "rate": rate,
            "phase": phase,
            "sent_per_s": round(fired / (end - start), 1),
            "offers_per_s": round(offered / (end - start), 1),
            "cpu_percent": usage,
            "server_cpu_ms_per_offer": cpu_ms_per(usage, end - start, offered),
            "client_loop_lag_ms": lag.between(start, end),
        }
        steps.append(step)
        log(f"  ramp {rate:g}/s: sent {step['sent_per_s']}/s, offered {step['offers_per_s']}/s")
        behind = behind + 1 if offered < 0.7 * fired else 0
        offers_per_s = offered / (end - start)
        if behind and offers_per_s < 1.1 * best_so_far:
            break  # behind, and twice the rate brought no more offers: saturated
        best_so_far = max(best_so_far, offers_per_s)
        rate *= 2
    await wait_until(lambda: fleet.owed == 0, within=10)
    for step in steps:
        refs = [ref for ref, sent in poster.sent.items() if sent.phase == step["phase"]]
        seen = [fleet.offers[r].received - poster.sent[r].sent for r in refs if r in fleet.offers]
        step["ingest_to_offer_ms"] = summary_ms(seen, never=len(refs) - len(seen))
    best = max(steps, key=lambda s: s["offers_per_s"])
    log(f"ramp: at most {best['offers_per_s']} offers/s (in the {best['rate']:g}/s step)")
    return {
        "routed_per_s": best["offers_per_s"],
        "at_rate": best["rate"],
        "saturated": behind > 0,
        "steps": steps,
    }


async def burst_phase(
    options: Options,
    database: Database,
    meter: CpuMeter,
    fleet: Fleet,
    poster: Poster,
    lag: LoopLag,
) -> dict[str, Any]:
    """A burst queued while every agent is away, then all go available at once: the offers per
    second while the backlog drains."""
    log(f"burst: queueing up to {options.burst} interactions while agents are away")
    refused = await fleet.set_state("away")
    if refused:
        log(f"  {refused} desks could not go away")
    ingest_seconds = await poster.burst(
        options.burst, "burst", options.http_connections, options.burst_seconds
    )
    refs = [ref for ref, sent in poster.sent.items() if sent.phase == "burst"]
    accepted = sum(1 for ref in refs if poster.sent[ref].status in (200, 201))
    log(f"  queued {accepted} in {ingest_seconds:.1f} s ({accepted / ingest_seconds:.0f}/s)")
    fleet.handle_mean = options.ramp_handle
    before, start = meter.snapshot(), time.perf_counter()
    going = asyncio.get_running_loop().create_task(fleet.set_state("available"))
    drained = await wait_until(
        lambda: all(ref in fleet.offers for ref in refs), within=options.burst_timeout
    )
    after, end = meter.snapshot(), time.perf_counter()
    refused = await going
    if refused:
        log(f"  {refused} desks could not go available")
    burst_offered = sum(1 for ref in refs if ref in fleet.offers)
    # Every first offer in the window counts, also of interactions left from earlier phases.
    times = [t for t in fleet.offer_times if start <= t <= end]
    routed = central_rate(times)
    usage = meter.usage(before, after)
    log(f"burst: {routed:.0f} offers/s ({burst_offered}/{len(refs)} of the burst offered)")
    return {
        "burst": options.burst,
        "accepted_by_api": accepted,
        "ingest_per_s": round(accepted / ingest_seconds, 1),
        "drained": drained,
        "offered": burst_offered,
        "offers_in_window": len(times),
        "drain_seconds": round((max(times) if times else end) - start, 2),
        "routed_per_s": number(routed),
        "routed_per_s_server_clock": number(await burst_offers_db(database.dsn)),
        "cpu_percent": usage,
        "server_cpu_ms_per_offer": cpu_ms_per(usage, end - start, len(times)),
        "client_loop_lag_ms": lag.between(start, end),
    }


async def fanout_phase(
    options: Options,
    database: Database,
    server: Server,
    client: httpx.AsyncClient,
    center: Center,
    fleet: Fleet,
    poster: Poster,
    lag: LoopLag,
    results: dict[str, Any],
) -> None:
    """Supervisors watch while interactions flow at `rate` (bench/fanout.py): the lag from a
    new interaction's event to each supervisor's frame that shows it."""
    assert server.process is not None
    meter = CpuMeter(server.process.pid, database.postmaster_pid)
    headers = await fanout.add_supervisor(client, center)
    supervisors = fanout.Supervisors()
    opening = time.perf_counter()
    await supervisors.open(client, server.ws_url, headers, options.supervisors)
    log(
        f"fan-out: {options.supervisors} supervisor sockets open in "
        f"{time.perf_counter() - opening:.1f} s beside {len(fleet.desks)} desks; "
        f"{options.fanout_seconds:g} s at {options.rate:g}/s"
    )
    fleet.handle_mean = options.handle
    try:
        before, start, start_wall = meter.snapshot(), time.perf_counter(), time.time()
        fired = await poster.poisson(options.rate, options.fanout_seconds, "fanout")
        after, end, end_wall = meter.snapshot(), time.perf_counter(), time.time()
        await asyncio.sleep(2.0)  # the last changes' frames are on their way
    finally:
        await supervisors.close()
    watchers = supervisors.watchers
    found = await fanout.lags(database.dsn, watchers, start_wall, end_wall)
    found.update(fanout.frame_rates(watchers, start_wall, end_wall))
    closed = Counter(w.closed for w in watchers if w.closed and not w.closed.startswith("1000"))
    usage = meter.usage(before, after)
    results["fanout"] = {
        "supervisors": options.supervisors,
        "desks": len(fleet.desks),
        "seconds": round(end - start, 2),
        "sent": fired,
        "sent_per_s": round(fired / (end - start), 1),
        **found,
        "closed_by_server": dict(closed),
        "cpu_percent": usage,
        "client_loop_lag_ms": lag.between(start, end),
    }
    shown = found["lag_ms"]
    results["fanout_lag_ms"] = {key: shown[key] for key in ("p50", "p95", "p99", "max")}
    log(
        f"fan-out: change to supervisor frame p50 {shown['p50']} ms, p99 {shown['p99']} ms "
        f"({found['changes']} changes x {len(watchers)} supervisors); "
        f"{dict(closed) or 'no socket'} closed by the server"
    )


async def voice_phase(
    options: Options,
    database: Database,
    server: Server,
    client: httpx.AsyncClient,
    center: Center,
    fleet: Fleet,
    calls_api: CallsApi,
    lag: LoopLag,
    results: dict[str, Any],
) -> Line:
    """Calls through Twilio's signed webhook at `voice_rate` (Poisson), each bridged to the
    agent who accepts it and talked for `voice_handle` s on average: how long the webhook takes
    to answer, and how long from a call's arrival to its offer at a desk. Last, so that its
    queue and flow exist for none of the phases before."""
    assert server.process is not None
    meter = CpuMeter(server.process.pid, database.postmaster_pid)
    await open_line(client, center)
    http = Pool("127.0.0.1", server.port, options.http_connections)
    http.start()
    line = Line(
        http, calls_api.account, fleet, center.phones, options.voice_handle, seed=options.seed
    )
    calls_api.listener = line.on_redirect
    reporter = asyncio.get_running_loop().create_task(voice_progress(line, calls_api))
    rate = options.voice_rate
    try:
        log(f"voice warm-up: {options.warmup:g} s at {rate:g} calls/s")
        await line.poisson(rate, options.warmup, "voice-warmup")
        log(
            f"voice: {options.voice_seconds:g} s at {rate:g} calls/s through the signed Twilio "
            f"webhook, mean talk {options.voice_handle:g} s"
        )
        before, start = meter.snapshot(), time.perf_counter()
        fired = await line.poisson(rate, options.voice_seconds, "voice")
        after, end = meter.snapshot(), time.perf_counter()
        cut_off = await line.settle(within=max(30.0, 10 * options.voice_handle))
        await wait_until(lambda: fleet.owed == 0, within=10)
        await asyncio.sleep(1.0)  # the last wrap-ups reach the server
    finally:
        reporter.cancel()
        await http.close()
    offered_in_window = sum(
        1
        for call in line.calls.values()
        if call.sid in fleet.offers and start <= fleet.offers[call.sid].received <= end
    )
    usage = meter.usage(before, after)
    found = voice.figures(line, calls_api, fleet, "voice", fired)
    found.update(
        seconds=round(end - start, 2),
        sent_per_s=round(fired / (end - start), 1),
        offers_per_s=round(offered_in_window / (end - start), 1),
        cut_off=cut_off,
        server=await voice.server_side(database.dsn),
        cpu_percent=usage,
        server_cpu_ms_per_call=cpu_ms_per(usage, end - start, fired),
        client_loop_lag_ms=lag.between(start, end),
    )
    results["voice"] = found
    hook, offer = found["webhook_answered_ms"], found["call_to_offer_ms"]
    results["voice_webhook_ms"] = {key: hook[key] for key in ("p50", "p95", "p99", "max")}
    results["voice_call_to_offer_ms"] = {key: offer[key] for key in ("p50", "p95", "p99", "max")}
    log(
        f"voice: webhook p50 {hook['p50']} ms, p99 {hook['p99']} ms; call-to-offer p50 "
        f"{offer['p50']} ms, p99 {offer['p99']} ms ({offer['n']}/{fired} offered); "
        f"{found['bridges_received']} bridges for {found['server']['calls_accepted']} accepted"
    )
    return line


async def voice_progress(line: Line, calls_api: CallsApi, every: float = 5.0) -> None:
    while True:
        await asyncio.sleep(every)
        answered = sum(1 for call in line.calls.values() if call.answered is not None)
        ended = sum(1 for call in line.calls.values() if call.ended)
        log(
            f"  calls {len(line.calls)} (answered {answered}), bridged "
            f"{len(calls_api.redirects)}, ended {ended}, under way {line.in_progress}, "
            f"line failures {sum(line.failures.values())}"
        )


async def chat_phase(
    options: Options,
    database: Database,
    server: Server,
    client: httpx.AsyncClient,
    center: Center,
    fleet: Fleet,
    lag: LoopLag,
    results: dict[str, Any],
) -> None:
    """Chats opened at a website's widget at `chat_rate` (Poisson), each a customer's socket
    exchanging `chat_lines` lines with the agent whose desk took it: how long a first line
    takes to be offered, and each line to reach the other side. Last, after the calls are
    over (an agent on a call takes no chat)."""
    assert server.process is not None
    meter = CpuMeter(server.process.pid, database.postmaster_pid)
    site = await chat.open_site(client, center)
    agents = chat.ChatAgents(options.chat_lines)
    fleet.chat_queue, fleet.chat_desk = chat.CHAT_QUEUE, agents
    widgets = chat.Widgets(server.ws_url, site, options.chat_lines, seed=options.seed)
    reporter = asyncio.get_running_loop().create_task(chat_progress(widgets, agents))
    rate = options.chat_rate
    try:
        log(f"chat warm-up: {options.warmup:g} s at {rate:g} chats/s")
        await widgets.poisson(rate, options.warmup, "chat-warmup")
        log(
            f"chat: {options.chat_seconds:g} s at {rate:g} chats/s through the widget's socket, "
            f"{options.chat_lines} lines each way after the first"
        )
        before, start = meter.snapshot(), time.perf_counter()
        fired = await widgets.poisson(rate, options.chat_seconds, "chat")
        after, end = meter.snapshot(), time.perf_counter()
        cut_off = await widgets.settle(within=2 * chat.STEP_TIMEOUT)
        await wait_until(lambda: fleet.owed == 0, within=10)
        await asyncio.sleep(1.0)  # the last completions reach the server
    finally:
        reporter.cancel()
    usage = meter.usage(before, after)
    found = chat.figures([v for v in widgets.visits if v.phase == "chat"], agents, fired)
    found.update(
        seconds=round(end - start, 2),
        sent_per_s=round(fired / (end - start), 1),
        cut_off=cut_off,
        customer_frames=dict(widgets.frames),
        customer_errors=len(widgets.errors),
        customer_errors_by_code=dict(Counter(str(e.get("error")) for e in widgets.errors)),
        customer_error_sample=widgets.errors[:5],
        server=await chat.server_side(database.dsn, site, widgets.visits, agents),
        cpu_percent=usage,
        server_cpu_ms_per_chat=cpu_ms_per(usage, end - start, fired),
        client_loop_lag_ms=lag.between(start, end),
    )
    results["chat"] = found
    for name in ("first_line_to_offer", "line_to_desk", "reply_to_customer", "receipt"):
        measured = found[f"{name}_ms"]
        results[f"chat_{name}_ms"] = {key: measured[key] for key in ("p50", "p95", "p99", "max")}
    offer, line = found["first_line_to_offer_ms"], found["line_to_desk_ms"]
    log(
        f"chat: first line to offer p50 {offer['p50']} ms, p99 {offer['p99']} ms; line to desk "
        f"p50 {line['p50']} ms, p99 {line['p99']} ms; {found['finished']}/{fired} finished, "
        f"{found['lost']} lost"
    )


async def chat_progress(widgets: chat.Widgets, agents: chat.ChatAgents, every: float = 5.0) -> None:
    while True:
        await asyncio.sleep(every)
        finished = sum(1 for v in widgets.visits if v.outcome == "finished")
        lost = sum(1 for v in widgets.visits if v.outcome.startswith("lost"))
        log(
            f"  chats {len(widgets.visits)} (offered {len(agents.offered)}), finished {finished}, "
            f"lost {lost}, under way {widgets.under_way}, answers {len(agents.replied)}"
        )


async def settle(fleet: Fleet, poster: Poster, within: float) -> None:
    """Let requests in flight finish and every accepted interaction be completed."""
    await poster.settle(within=within)
    await wait_until(lambda: fleet.owed == 0, within=within)
    await asyncio.sleep(1.0)  # the last completions reach the server


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_on_uvloop(coroutine: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    signal.signal(signal.SIGTERM, _terminate)
    # Ctrl-C stops the run cleanly, also when started from a shell that ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    database = Database()
    server: Server | None = None
    try:
        log("starting PostgreSQL")
        database.start()
        server = Server(database.url, workers=options.workers)
        results = run_on_uvloop(bench(options, database, server))
    except KeyboardInterrupt:
        log("interrupted; stopping the server and PostgreSQL")
        return 130
    except Exception as error:
        log(f"failed: {error!r}")
        if server is not None:
            print(server.log_tail(), file=sys.stderr)
        raise
    finally:
        if server is not None:
            with contextlib.suppress(Exception):
                server.stop()
        database.stop()
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(report.table(results))
    log(f"results written to {options.output}")
    return 1 if report.violated(results) else 0
