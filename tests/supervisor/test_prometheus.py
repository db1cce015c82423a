"""/metrics as Prometheus scrapes it: a real server, real HTTP, a real desk socket, and a real
`contactcenter serve --workers 2` whose workers' counts add up in one scrape."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from fastapi import FastAPI
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from app.auth.dependencies import METRICS_CLOSED
from app.core.settings import Settings
from app.supervisor import metrics_files
from tests.cli.test_cli import Service
from tests.support import create_skills, free_port, served_in_loop

TOKEN = "scrape-me-0123456789abcdef"
SCRAPER = {"Authorization": f"Bearer {TOKEN}"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def settings() -> Settings:
    return Settings(
        environment="test",
        load_demo=False,
        default_phone_region="CN",
        password_hashing="fast",
        metrics_token=TOKEN,
    )


def samples_of(text: str) -> Samples:
    """Every sample of a scrape, by name and labels; the text must parse as Prometheus's."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, frozenset(sample.labels.items())] = sample.value
    return found


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
async def server(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app served on a loopback port (one replica: its matcher leads), and a client of it."""
    async with (
        served_in_loop(app) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as http,
    ):
        yield http


async def scrape(http: httpx.AsyncClient) -> tuple[str, Samples]:
    response = await http.get("/metrics", headers=SCRAPER)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text, samples_of(response.text)


async def until_scraped(
    http: httpx.AsyncClient, holds: Callable[[Samples], bool], what: str
) -> Samples:
    """Scrapes until `holds` (the server moved on: a socket's close is seen after its end)."""
    deadline = time.monotonic() + 10
    while True:
        _, samples = await scrape(http)
        if holds(samples):
            return samples
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def make_agent(http: httpx.AsyncClient, admin: dict[str, str], name: str) -> dict[str, str]:
    body = {
        "username": name,
        "display_name": name.title(),
        "password": "correct horse battery",
        "skills": [{"skill": "billing", "level": 1}],
    }
    made = await http.post("/v1/agents", json=body, headers=admin)
    assert made.status_code == 201, made.text
    login = await http.post(
        "/v1/auth/login", json={"username": name, "password": "correct horse battery"}
    )
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def open_desk(http: httpx.AsyncClient, agent: dict[str, str]) -> Any:
    ticket = await http.post("/v1/desk/tickets", headers=agent)
    assert ticket.status_code == 201, ticket.text
    url = str(http.base_url).replace("http://", "ws://").rstrip("/")
    desk = await websockets.connect(f"{url}/v1/desk/ws?ticket={ticket.json()['ticket']}")
    await desk.send(json.dumps({"type": "hello", "last_event_id": None}))
    await next_frame(desk, "ready")
    return desk


async def next_frame(desk: Any, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            frame: dict[str, Any] = json.loads(await desk.recv())
            if frame["type"] == kind:
                return frame


async def test_a_scrape_shows_the_waiting_work_the_offers_and_route_templates_never_ids(
    server: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    http = server
    await create_skills(http, admin, "billing")
    queue = {"name": "billing", "required_skills": [{"skill": "billing", "level": 1}]}
    made = await http.post("/v1/queues", json=queue, headers=admin)
    assert made.status_code == 201, made.text
    queue_id = made.json()["id"]
    _, before = await scrape(http)
    ids = []
    for number in ("+86 138 0013 8000", "+86 138 0013 8001"):
        body = {
            "channel": "voice",
            "queue": "billing",
            "contact": {"kind": "phone", "value": number},
        }
        raised = await http.post("/v1/interactions", json=body, headers=admin)
        assert raised.status_code == 201, raised.text
        ids.append(raised.json()["id"])
        read = await http.get(f"/v1/interactions/{ids[-1]}", headers=admin)
        assert read.status_code == 200, read.text

    text, samples = await scrape(http)
    labels = {"queue_id": queue_id, "queue": "billing"}
    assert value(samples, "cc_queue_waiting", **labels, channel="voice") == 2
    assert value(samples, "cc_queue_waiting", **labels, channel="email") == 0
    assert value(samples, "cc_queue_longest_wait_seconds", **labels) > 0
    assert value(samples, "cc_floor_read_ok") == 1
    assert not any(interaction_id in text for interaction_id in ids), "a raw id in a label"
    route = {"method": "GET", "route": "/v1/interactions/{interaction_id}"}
    assert value(samples, "cc_http_request_seconds_count", **route) == (
        value(before, "cc_http_request_seconds_count", **route) + 2
    )

    # An agent comes: the matcher offers it one of the two (capacity one call).
    agent = await make_agent(http, admin, "mei")
    desk = await open_desk(http, agent)
    try:
        await desk.send(json.dumps({"type": "set_state", "state": "available"}))
        offer = await next_frame(desk, "offer")
        _, offered = await scrape(http)
        made_voice = value(offered, "cc_offers_made_total", channel="voice")
        assert made_voice == value(before, "cc_offers_made_total", channel="voice") + 1
        # Still waiting: the customer on offer has not been answered.
        assert value(offered, "cc_queue_waiting", **labels, channel="voice") == 2
        assert value(offered, "cc_agents", state="available") == 1

        rejected = value(before, "cc_offers_missed_total", outcome="rejected")
        reject = {"type": "reject", "offer_id": offer["offer_id"], "reason": "wrong line"}
        await desk.send(json.dumps(reject))
        await next_frame(desk, "ack")
        _, after = await scrape(http)
        assert value(after, "cc_offers_missed_total", outcome="rejected") == rejected + 1
    finally:
        await desk.close()


async def test_an_offer_let_time_out_counts_as_missed(
    app: FastAPI, server: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    http = server
    await create_skills(http, admin, "billing")
    queue = {"name": "billing", "required_skills": [{"skill": "billing", "level": 1}]}
    assert (await http.post("/v1/queues", json=queue, headers=admin)).status_code == 201
    desk = await open_desk(http, await make_agent(http, admin, "ana"))
    try:
        await desk.send(json.dumps({"type": "set_state", "state": "available"}))
        await next_frame(desk, "ack")
        _, before = await scrape(http)
        body = {"channel": "chat", "queue": "billing", "contact": {"kind": "chat", "value": "v1"}}
        assert (await http.post("/v1/interactions", json=body, headers=admin)).status_code == 201
        offer = await next_frame(desk, "offer")
        # Its deadline brought forward rather than waited for: the next tick times it out.
        async with app.state.pg.acquire() as connection:
            await connection.execute(
                "UPDATE offers SET deadline = now() WHERE id = $1::text::uuid", offer["offer_id"]
            )
        withdrawn = await next_frame(desk, "offer_withdrawn")
        assert withdrawn["reason"] == "offer timed out"
        _, after = await scrape(http)
        timed_out = {"outcome": "timed_out"}
        assert value(after, "cc_offers_missed_total", **timed_out) == (
            value(before, "cc_offers_missed_total", **timed_out) + 1
        )
        rejected = {"outcome": "rejected"}
        assert value(after, "cc_offers_missed_total", **rejected) == value(
            before, "cc_offers_missed_total", **rejected
        )
        assert value(after, "cc_offers_made_total", channel="chat") == (
            value(before, "cc_offers_made_total", channel="chat") + 1
        )
    finally:
        await desk.close()


async def test_the_desk_gauge_goes_up_with_a_desk_and_down_when_it_closes(
    server: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    http = server
    await create_skills(http, admin, "billing")
    agent = await make_agent(http, admin, "tom")
    _, before = await scrape(http)
    open_before = value(before, "cc_websockets_open", kind="desk")
    desk = await open_desk(http, agent)
    _, with_desk = await scrape(http)
    assert value(with_desk, "cc_websockets_open", kind="desk") == open_before + 1
    assert value(with_desk, "cc_websockets_open", kind="supervisor") == value(
        before, "cc_websockets_open", kind="supervisor"
    )
    await desk.close()
    await until_scraped(
        http,
        lambda now: value(now, "cc_websockets_open", kind="desk") == open_before,
        "the desk's close never took the gauge down",
    )


async def test_a_customers_chat_counts_as_a_chat_socket_while_it_is_open(
    server: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    http = server
    queue = await http.post("/v1/queues", json={"name": "webchat"}, headers=admin)
    assert queue.status_code == 201, queue.text
    origin = "https://shop.example.com"
    body = {"name": "shop", "queue_id": queue.json()["id"], "allowed_origins": [origin]}
    site = await http.post("/v1/chat/sites", json=body, headers=admin)
    assert site.status_code == 201, site.text
    _, before = await scrape(http)
    open_before = value(before, "cc_websockets_open", kind="chat")
    url = str(http.base_url).replace("http://", "ws://").rstrip("/")
    chat = await websockets.connect(
        f"{url}/v1/chat/ws?site={site.json()['id']}", origin=websockets.Origin(origin)
    )
    await until_scraped(
        http,
        lambda now: value(now, "cc_websockets_open", kind="chat") == open_before + 1,
        "an open chat never counted",
    )
    await chat.close()
    await until_scraped(
        http,
        lambda now: value(now, "cc_websockets_open", kind="chat") == open_before,
        "the chat's close never took the gauge down",
    )


async def test_requests_no_route_serves_and_odd_methods_make_no_series_of_their_own(
    server: httpx.AsyncClient,
) -> None:
    http = server
    _, before = await scrape(http)
    for path in ("/no/such/thing/123", "/v1/nothing-here"):
        assert (await http.get(path)).status_code == 404
    assert (await http.request("PROPFIND", "/health")).status_code == 405
    text, samples = await scrape(http)
    unmatched = {"method": "GET", "route": "unmatched"}
    assert value(samples, "cc_http_request_seconds_count", **unmatched) == (
        value(before, "cc_http_request_seconds_count", **unmatched) + 2
    )
    assert value(samples, "cc_http_request_seconds_count", method="other", route="/health") >= 1
    assert "/no/such/thing" not in text
    assert "BREW" not in text


async def test_only_the_metrics_token_reads_the_metrics_and_no_log_line_shows_it(
    server: httpx.AsyncClient, admin: dict[str, str], log_lines: io.StringIO
) -> None:
    http = server
    wrong = "scrape-me-0123456789abcdeX"
    for headers in ({}, admin, {"Authorization": f"Bearer {wrong}"}):
        refused = await http.get("/metrics", headers=headers)
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"] == "not_authenticated"
        assert TOKEN not in refused.text
    await scrape(http)
    logged = log_lines.getvalue()
    assert "/metrics" in logged  # the scrapes were logged (uvicorn's access lines)
    assert TOKEN[:12] not in logged


async def test_without_a_token_set_metrics_are_closed_to_everyone(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"metrics_token": None})
    for headers in ({}, SCRAPER, {"Authorization": "Bearer "}):
        refused = await client.get("/metrics", headers=headers)
        assert refused.status_code == 401, refused.text
        assert refused.json()["detail"] == METRICS_CLOSED


def test_a_short_token_is_refused_without_being_repeated() -> None:
    from pydantic import ValidationError

    from app.core.settings import explain

    with pytest.raises(ValidationError) as refused:
        Settings(metrics_token="short-secret")
    said = explain(refused.value)
    assert "CC_METRICS_TOKEN" in said
    assert "short-secret" not in said


# --- several workers ----------------------------------------------------------------------------

MULTI_ROUTE = {"method": "GET", "route": "/v1/auth/me"}


def _per_worker(folder: Path) -> dict[int, float]:
    """The requests to /v1/auth/me each worker counted, read from its own file."""
    counted: dict[int, float] = {}
    for path in folder.glob("histogram_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        values = MmapedDict.read_all_values_from_file(str(path))  # type: ignore[no-untyped-call]
        for key, number, *_ in values:
            # A worker keeps each bucket's own count (the scrape adds them up into _count).
            _, sample, labels, _ = json.loads(key)
            labels.pop("le", None)
            if sample == "cc_http_request_seconds_bucket" and labels == MULTI_ROUTE:
                counted[pid] = counted.get(pid, 0.0) + number
    return counted


async def test_two_workers_count_into_one_scrape(database_url: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    stale = data_dir / metrics_files.FOLDER / "counter_999999.db"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"left by a run before")
    service = Service(
        data_dir,
        free_port(),
        tmp_path / "workers.log",
        workers=2,
        settings={
            "DATABASE_URL": database_url,
            "CC_METRICS_TOKEN": TOKEN,
            "CC_ENVIRONMENT": "test",  # no SMTP listener
            "CC_LOAD_DEMO": "false",
        },
    )
    try:
        await asyncio.to_thread(service.wait_healthy)
        assert not stale.exists(), "the folder is emptied at each start"
        folder = data_dir / metrics_files.FOLDER
        sent = 0
        # Each request on a connection of its own, so either worker may take it; until both
        # have (the kernel picks; it takes a handful).
        while len(_per_worker(folder)) < 2:
            assert sent < 400, f"one worker took every request: {_per_worker(folder)}"
            async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as http:
                assert (await http.get("/v1/auth/me")).status_code == 401
            sent += 1
        async with httpx.AsyncClient(base_url=service.base_url, timeout=10) as http:
            scraped = await http.get("/metrics", headers=SCRAPER)
        assert scraped.status_code == 200, scraped.text
        samples = samples_of(scraped.text)
        assert value(samples, "cc_http_request_seconds_count", **MULTI_ROUTE) == sent
        assert sum(_per_worker(folder).values()) == sent
        # The floor is read once, by the worker that served the scrape.
        lines = scraped.text.splitlines()
        assert lines.count('cc_agents{state="available"} 0.0') == 1, scraped.text
        assert lines.count("cc_floor_read_ok 1.0") == 1
        assert value(samples, "cc_websockets_open", kind="desk") == 0
    finally:
        code = service.stop(signal.SIGTERM)
    assert code in (0, 128 + signal.SIGTERM), service.log_path.read_text()


def test_one_worker_keeps_its_metrics_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(metrics_files.MULTIPROC_DIR, str(tmp_path))  # left by someone: not ours
    assert metrics_files.prepare(tmp_path, 1) is None
    assert metrics_files.MULTIPROC_DIR not in os.environ


def test_a_dead_workers_open_sockets_are_forgotten(tmp_path: Path) -> None:
    alive, dead = os.getpid(), _a_finished_pid()
    for pid in (alive, dead):
        (tmp_path / f"gauge_livesum_{pid}.db").write_bytes(b"")
    (tmp_path / f"counter_{dead}.db").write_bytes(b"")
    metrics_files.forget_dead_workers(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"gauge_livesum_{alive}.db", f"counter_{dead}.db"]
    )


def _a_finished_pid() -> int:
    finished = subprocess.Popen(["true"])
    finished.wait()
    return finished.pid
