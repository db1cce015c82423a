"""The targets the figures are held to, and the table printed at the end."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

P99_LIMIT_MS = 50.0
FANOUT_P99_LIMIT_MS = 1000.0  # a change on the supervisors' screens within a second
ROUTED_SHARE = 0.30


def _met(value: float | None, limit: float) -> bool:
    return value is not None and not math.isnan(value) and value <= limit


def targets(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """DESIGN's targets at the steady rate: p50 within 2x the baseline p50 + 2 ms, p99 under
    50 ms; and at saturation at least 30% of the baseline's rate."""
    base = results["baseline"]
    itr = results["ingest_to_offer_ms"]
    p50_limit = round(2 * base["p50_ms"] + 2, 2)
    routed_floor = round(ROUTED_SHARE * base["routed_per_s"], 1)
    routed = results["routed_per_s"]
    found = {
        "p50_ms": {"value": itr["p50"], "limit": p50_limit, "met": _met(itr["p50"], p50_limit)},
        "p99_ms": {
            "value": itr["p99"],
            "limit": P99_LIMIT_MS,
            "met": _met(itr["p99"], P99_LIMIT_MS - 1e-9),
        },
        "routed_per_s": {
            "value": routed,
            "limit": routed_floor,
            "met": routed is not None and routed >= routed_floor,
        },
    }
    if "fanout_lag_ms" in results:  # the supervisors' frames: p99 under a second
        p99 = results["fanout_lag_ms"]["p99"]
        found["fanout_p99_ms"] = {
            "value": p99,
            "limit": FANOUT_P99_LIMIT_MS,
            "met": _met(p99, FANOUT_P99_LIMIT_MS),
        }
    if "full_floor_pass" in results:  # the policy's pass over a deep line, no database
        passes = results["full_floor_pass"]
        found["full_floor_pass_ms"] = {
            "value": passes["p50_ms"],
            "limit": passes["limit_ms"],
            "met": _met(passes["p50_ms"], passes["limit_ms"]),
        }
    return found


def violated(results: dict[str, Any]) -> bool:
    found = results["violations"]
    broken = found["double_offers"] or found["over_capacity"] or found["lost"]
    return bool(
        broken
        or ("voice" in results and voice_problems(results["voice"]))
        or ("chat" in results and chat_problems(results["chat"]))
    )


def voice_problems(voice: dict[str, Any]) -> dict[str, int]:
    """What went wrong with the voice phase's calls, by kind (empty: nothing): a webhook not
    answered 2xx, TwiML the line could not follow, an accepted call bridged never or twice, a
    bridge the Twilio stand-in refused, a call still under way long after the phase."""
    accepted = voice["server"]["calls_accepted"]
    found = {
        "webhooks not 2xx": voice["webhook_failures"],
        "line failures": sum(voice["line_failures"].values()) - voice["webhook_failures"],
        "accepted calls never bridged": max(0, accepted - voice["calls_bridged"]),
        "bridges of calls never accepted": max(0, voice["calls_bridged"] - accepted),
        "calls bridged twice": voice["calls_bridged_twice"],
        "bridges refused": sum(voice["bridge_refusals"].values()),
        "calls cut off": voice["cut_off"],
    }
    return {kind: n for kind, n in found.items() if n}


def chat_problems(chat: dict[str, Any]) -> dict[str, int]:
    """What went wrong with the chat phase's chats, by kind (empty: nothing): a customer line
    the server said it stored that is not in its chat's messages, an agent's answer that never
    reached the customer (or could not be sent), a chat that did not run its course, one still
    open at the end."""
    server = chat["server"]
    found = {
        "lines stored but not kept": server["lines_not_kept"],
        "answers never received": server["answers_not_received"],
        "answers not sent": server["answers_unsent"],
        "chats lost": chat["lost"],
        "chats cut off": chat["cut_off"],
        "chats left open": server["left_open"],
    }
    return {kind: n for kind, n in found.items() if n}


def _cpu(usage: dict[str, float]) -> str:
    return (
        f"server {usage['server']:.0f}%, postgres {usage['postgres']:.0f}%, "
        f"bench {usage['bench']:.0f}%, other {usage['other']:.0f}% "
        f"(machine {usage['machine_busy']:.0f}%)"
    )


def table(results: dict[str, Any]) -> str:
    machine = results["machine"]
    params = results["parameters"]
    steady = results["steady"]
    ramp = results["ramp"]
    best = next(step for step in ramp["steps"] if step["rate"] == ramp["at_rate"])
    base = results["baseline"]
    found = results["violations"]
    goals = results["targets"]
    itr = results["ingest_to_offer_ms"]
    parts = steady["breakdown"]
    desks = results["desks"]

    def goal(name: str, unit: str) -> str:
        entry = goals[name]
        sign = ">=" if name == "routed_per_s" else "<="
        verdict = "met" if entry["met"] else "NOT MET"
        return f"target {sign} {entry['limit']}{unit}: {verdict}"

    never = steady["ingest_to_offer_ms"].get("never", 0)
    rows = [
        (
            "machine",
            f"{machine['nproc']} CPUs ({machine['cpu_model']}), "
            f"Python {machine['python']}, PostgreSQL {machine['postgresql']}",
        ),
        (
            "load average",
            f"{machine['load_average_at_start']} at start, "
            f"{machine.get('load_average_at_end')} at end",
        ),
        (
            "CPU used by others",
            f"{results['idle_cpu_percent']['other']:.0f}% before the load (200% = both cores)",
        ),
        (
            "parameters",
            f"{params['agents']} agents, {params['rate']:g}/s for "
            f"{params['steady']:g} s (handle {params['handle']:g} s); ramp from "
            f"{params['ramp_start']:g}/s (handle {params['ramp_handle']:g} s); "
            f"{params.get('workers', 1)} server worker(s)",
        ),
        ("", ""),
        ("ingest_to_offer p50", f"{itr['p50']} ms   {goal('p50_ms', ' ms')}"),
        ("ingest_to_offer p95", f"{itr['p95']} ms"),
        ("ingest_to_offer p99", f"{itr['p99']} ms   {goal('p99_ms', ' ms')}"),
        ("  never offered", f"{never} of {steady['sent']} (None above = not all offered)"),
        ("  ingest part", _parts(parts["ingest_ms"])),
        ("  matcher part", _parts(parts["matcher_wait_ms"])),
        ("  delivery part", _parts(parts["delivery_ms"])),
        ("steady throughput", f"sent {steady['sent_per_s']}/s, offered {steady['offers_per_s']}/s"),
        ("POST answered", _parts(steady["post_answered_ms"])),
        ("idle CPU (desks only)", _cpu(results["idle_cpu_percent"])),
        ("steady CPU", _cpu(steady["cpu_percent"])),
        ("server CPU per offer", f"{steady['server_cpu_ms_per_offer']} ms in the steady phase"),
        ("client loop lag", f"p99 {steady['client_loop_lag_ms']['p99']} ms"),
        ("", ""),
        (
            "routed_per_s",
            f"{results['routed_per_s']}/s (in the {results['routed_per_s_from']} phase)   "
            f"{goal('routed_per_s', '/s')}",
        ),
        *(
            (
                f"  ramp {step['rate']:g}/s",
                f"sent {step['sent_per_s']}/s, offered {step['offers_per_s']}/s, "
                f"p50 {step['ingest_to_offer_ms']['p50']} ms, "
                f"p99 {step['ingest_to_offer_ms']['p99']} ms",
            )
            for step in ramp["steps"]
        ),
        ("saturation CPU", _cpu(best["cpu_percent"])),
        *(
            [
                (
                    "burst",
                    f"{results['burst']['routed_per_s']} offers/s draining "
                    f"{results['burst']['accepted_by_api']} queued",
                )
            ]
            if "burst" in results
            else []
        ),
        *(_fanout_rows(results, goal) if "fanout" in results else []),
        *(_voice_rows(results) if "voice" in results else []),
        *(_chat_rows(results) if "chat" in results else []),
        ("", ""),
        (
            "baseline",
            f"{base['routed_per_s']} items/s, p50 {base['p50_ms']} ms, "
            f"p99 {base['p99_ms']} ms ({base['connections']} connections, "
            f"{base['no_agent']} without agent)",
        ),
        *(_lifecycle_rows(results) if "lifecycle_baseline" in results else []),
        *(_pass_rows(results, goal) if "full_floor_pass" in results else []),
        ("", ""),
        ("double_offers", str(found["double_offers"])),
        ("over_capacity", str(found["over_capacity"])),
        ("lost", str(found["lost"])),
        *(
            [("voice problems", str(voice_problems(results["voice"]) or 0))]
            if "voice" in results
            else []
        ),
        *(
            [("chat problems", str(chat_problems(results["chat"]) or 0))]
            if "chat" in results
            else []
        ),
        ("unfinished at end", str(found["details"].get("unfinished"))),
        ("desk errors", f"{desks['errors']} {desks['errors_by_code']}"),
        ("desk disconnects", f"{desks['disconnects']} {desks['close_codes']}"),
        ("sent away by server", str(desks["sent_away_by_server"] or 0)),
        ("ingest failures", str(results["ingest_failures"] or 0)),
        ("server log errors", f"{results['server_log_error_lines']} lines mentioning an error"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name.ljust(width)}  {value}" if name else "" for name, value in rows]
    return "\n".join(["", "Routing benchmark", "=" * 17, *lines, ""])


def _fanout_rows(results: dict[str, Any], goal: Callable[[str, str], str]) -> list[tuple[str, str]]:
    """The fan-out phase: supervisors' live sockets while the floor works."""
    fan = results["fanout"]
    lag = fan["lag_ms"]
    return [
        ("", ""),
        (
            "fan-out",
            f"{fan['supervisors']} supervisor sockets, {fan['desks']} desks, "
            f"{fan['sent_per_s']}/s for {fan['seconds']} s",
        ),
        ("change_to_frame p50", f"{lag['p50']} ms"),
        ("change_to_frame p99", f"{lag['p99']} ms   {goal('fanout_p99_ms', ' ms')}"),
        ("  frames per supervisor", f"{fan['frames_per_supervisor_per_s']} a second"),
        ("  one queue's frames", f"at most {fan['most_queue_frames_in_a_second']} in a second"),
        ("  closed by the server", str(fan["closed_by_server"] or 0)),
        ("fan-out CPU", _cpu(fan["cpu_percent"])),
    ]


def _voice_rows(results: dict[str, Any]) -> list[tuple[str, str]]:
    """The voice phase: calls through Twilio's signed webhook, bridged to the desks."""
    voice = results["voice"]
    params = results["parameters"]
    hook, offer = voice["webhook_answered_ms"], voice["call_to_offer_ms"]
    steps = voice["webhooks_ms"]
    others = ", ".join(
        f"{step} {steps[step]['p50']}/{steps[step]['p99']}"
        for step in ("hold", "answered", "dial", "status")
        if step in steps
    )
    return [
        ("", ""),
        (
            "voice calls",
            f"{voice['calls']} in {voice['seconds']} s ({voice['sent_per_s']}/s) through the "
            f"signed Twilio webhook, talk {params['voice_handle']:g} s",
        ),
        ("voice webhook p50", f"{hook['p50']} ms   (POST /v1/voice/twilio/incoming answered)"),
        ("voice webhook p99", f"{hook['p99']} ms"),
        ("call_to_offer p50", f"{offer['p50']} ms"),
        ("call_to_offer p99", f"{offer['p99']} ms"),
        ("  never offered", f"{offer.get('never', 0)} of {voice['calls']}"),
        ("  other webhooks", f"p50/p99 ms: {others}"),
        ("  accept to bridge", _parts(voice["accept_to_bridge_ms"])),
        (
            "  bridges",
            f"{voice['bridges_received']} received by the Twilio stand-in "
            f"({voice['calls_bridged']} calls) for {voice['server']['calls_accepted']} calls "
            f"accepted; outbox {voice['server']['outbox_to_twilio']}",
        ),
        (
            "  webhooks",
            f"{voice['webhooks_posted']} posted, {voice['webhook_failures']} not 2xx "
            f"{voice['webhook_answers']}",
        ),
        ("  calls at end", str(voice["server"]["calls"])),
        ("voice CPU", _cpu(voice["cpu_percent"])),
        ("server CPU per call", f"{voice['server_cpu_ms_per_call']} ms in the voice phase"),
    ]


def _chat_rows(results: dict[str, Any]) -> list[tuple[str, str]]:
    """The chat phase: customers' sockets at the widget, answered from the desks."""
    chat = results["chat"]
    params = results["parameters"]
    server = chat["server"]
    offer = chat["first_line_to_offer_ms"]
    return [
        ("", ""),
        (
            "chats",
            f"{chat['chats']} in {chat['seconds']} s ({chat['sent_per_s']}/s) at the widget's "
            f"socket, {params['chat_lines']} lines each way after the first",
        ),
        ("first_line_to_offer p50", f"{offer['p50']} ms   (the first line sent, to its offer)"),
        ("first_line_to_offer p99", f"{offer['p99']} ms"),
        ("  never offered", f"{offer.get('never', 0)} of {chat['chats']}"),
        ("  line to desk", _parts(chat["line_to_desk_ms"])),
        ("  reply to customer", _parts(chat["reply_to_customer_ms"])),
        ("  read receipt", _parts(chat["receipt_ms"])),
        ("  line stored", _parts(chat["line_stored_ms"])),
        ("  welcome", _parts(chat["welcome_ms"])),
        (
            "  chats",
            f"{chat['opened']} opened, {chat['finished']} finished, {chat['lost']} lost "
            f"{chat['outcomes']}; at end {server['chats_by_state']}",
        ),
        (
            "  lines",
            f"{server['lines_stored']} customer lines stored, {server['answers_sent']} answers "
            f"sent ({server['agent_lines_kept']} kept); customer errors "
            f"{chat['customer_errors']} {chat['customer_errors_by_code']}",
        ),
        ("chat CPU", _cpu(chat["cpu_percent"])),
        ("server CPU per chat", f"{chat['server_cpu_ms_per_chat']} ms in the chat phase"),
    ]


def _parts(summary: dict[str, Any]) -> str:
    return f"p50 {summary['p50']} ms, p95 {summary['p95']} ms, p99 {summary['p99']} ms"


def _lifecycle_rows(results: dict[str, Any]) -> list[tuple[str, str]]:
    """The lifecycle floor, and how much of it the server reaches at saturation."""
    life = results["lifecycle_baseline"]
    routed = results["routed_per_s"]
    share = (
        f"{100 * routed / life['routed_per_s']:.0f}%" if routed and life["routed_per_s"] else "-"
    )
    cpu = life.get("cpu_percent")
    return [
        (
            "lifecycle baseline",
            f"{life['routed_per_s']} interactions/s, p50 {life['p50_ms']} ms "
            f"(route, accept, complete; routed_per_s is {share} of it)",
        ),
        *([("  its CPU", _cpu(cpu))] if cpu else []),
    ]


def _pass_rows(results: dict[str, Any], goal: Callable[[str, str], str]) -> list[tuple[str, str]]:
    """The policy's pass over a full floor (bench/policy.py): its CPU alone."""
    passes = results["full_floor_pass"]
    return [
        (
            "matcher pass, full floor",
            f"{passes['waiting']:,} waiting x {passes['agents']} agents, {passes['matches']} "
            f"matches: p50 {passes['p50_ms']} ms, max {passes['max_ms']} ms   "
            f"{goal('full_floor_pass_ms', ' ms')}",
        )
    ]
