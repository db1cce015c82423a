"""The contact center the benchmark drives, built through the HTTP API like any client would."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

SKILLS = ("billing", "sales", "support", "technical", "retention")
TIERS = ("platinum", "gold", "iron", "lead")
# The customer pyramid: few platinum and gold, many iron and lead.
TIER_SHARES = (0.05, 0.15, 0.5, 0.3)
PASSWORD = "bench-password-1"  # noqa: S105 - a throwaway server, deleted after the run
ADMIN = "boss"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AgentLogin:
    username: str
    token: str
    skills: dict[str, int]


@dataclass(frozen=True, slots=True)
class Center:
    admin_headers: dict[str, str]
    queues: tuple[str, ...]
    customers: tuple[str, ...]  # customer ids
    agents: tuple[AgentLogin, ...]
    phones: tuple[str, ...] = ()  # the customers' phone numbers (half have one), E.164


# Before the session committed ahead of the response (commit 7b61cee), a token used the moment
# it was issued could be refused. Setup retries such refusals briefly and counts them in the
# results (`setup_unauthorized_retries`): anything above 0 means the race is back.
retried_unauthorized = 0


async def call(
    client: httpx.AsyncClient, method: str, path: str, *expected: int, **kwargs: Any
) -> dict[str, Any]:
    global retried_unauthorized
    for attempt in range(20):
        response = await client.request(method, path, **kwargs)
        if response.status_code != 401 or 401 in expected or attempt == 19:
            return _check(response, *expected)
        retried_unauthorized += 1
        await asyncio.sleep(0.05)
    raise AssertionError("unreachable")


def _check(response: httpx.Response, *expected: int) -> dict[str, Any]:
    if response.status_code not in expected:
        request = response.request
        raise RuntimeError(
            f"{request.method} {request.url.path} answered {response.status_code}: "
            f"{response.text[:500]}"
        )
    body: dict[str, Any] = response.json()
    return body


async def _gather_limited(jobs: list[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    gate = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await job()

    return list(await asyncio.gather(*(one(job) for job in jobs)))


async def login(client: httpx.AsyncClient, username: str) -> str:
    body = await call(
        client, "POST", "/v1/auth/login", 200, json={"username": username, "password": PASSWORD}
    )
    token: str = body["access_token"]
    return token


def agent_skills(index: int, rng: random.Random) -> dict[str, int]:
    """Two skills per agent, every skill held by as many agents, levels 1-5 at random."""
    first = SKILLS[index % len(SKILLS)]
    second = SKILLS[(index + 1 + (index // len(SKILLS)) % (len(SKILLS) - 1)) % len(SKILLS)]
    return {first: rng.randint(1, 5), second: rng.randint(1, 5)}


async def build(
    client: httpx.AsyncClient, *, agents: int, customers: int, seed: int, parallel: int = 16
) -> Center:
    rng = random.Random(seed)
    admin = {"Authorization": f"Bearer {await login(client, ADMIN)}"}

    for skill in SKILLS:
        await call(client, "POST", "/v1/skills", 201, json={"name": skill}, headers=admin)
    for skill in SKILLS:
        queue = {
            "name": skill,
            "offer_timeout_seconds": 30,
            "wrap_up_seconds": 0,
            "required_skills": [{"skill": skill, "level": 1}],
        }
        await call(client, "POST", "/v1/queues", 201, json=queue, headers=admin)

    def customer_job(index: int, tier: str) -> Callable[[], Awaitable[str]]:
        body: dict[str, Any] = {"name": f"Bench customer {index}", "tier": tier}
        if index % 2:
            body["phones"] = [customer_phone(index)]
        else:
            body["chat_ids"] = [f"bench-visitor-{index}"]

        async def job() -> str:
            created = await call(client, "POST", "/v1/customers", 201, json=body, headers=admin)
            return str(created["id"])

        return job

    tiers = rng.choices(TIERS, weights=TIER_SHARES, k=customers)
    customer_ids = await _gather_limited(
        [customer_job(i, tier) for i, tier in enumerate(tiers)], parallel
    )

    def agent_job(index: int) -> Callable[[], Awaitable[AgentLogin]]:
        username = f"agent{index:04d}"
        skills = agent_skills(index, rng)
        body = {
            "username": username,
            "display_name": f"Agent {index}",
            "password": PASSWORD,
            "capacity": {"voice": 1, "chat": 3, "email": 2},
            "voice_endpoint": f"client:{username}",  # the softphone a call is bridged to
            "skills": [{"skill": s, "level": level} for s, level in skills.items()],
        }

        async def job() -> AgentLogin:
            await call(client, "POST", "/v1/agents", 201, json=body, headers=admin)
            return AgentLogin(username, await login(client, username), skills)

        return job

    logins = await _gather_limited([agent_job(i) for i in range(agents)], parallel)
    phones = tuple(customer_phone(i).replace(" ", "") for i in range(customers) if i % 2)
    return Center(admin, SKILLS, tuple(customer_ids), tuple(logins), phones)


def customer_phone(index: int) -> str:
    """A customer's mobile number, written as people write it."""
    return f"+86 139 {index // 10_000:04d} {index % 10_000:04d}"


# The voice phase's line: one queue every agent may take calls from, and a default flow that
# queues a call at once (platinum and gold callers ahead), so that the phase measures the
# webhook and routing, not menus. Made just before the phase, after the others have run.
CALLS_QUEUE = "calls"
LINE_FLOW: dict[str, Any] = {
    "start": "by_tier",
    "nodes": {
        "by_tier": {
            "type": "branch_tier",
            "tiers": {"platinum": "ahead", "gold": "ahead"},
            "default": "in_turn",
        },
        "ahead": {"type": "enqueue", "queue": CALLS_QUEUE, "priority": 10},
        "in_turn": {"type": "enqueue", "queue": CALLS_QUEUE},
    },
}


async def open_line(client: httpx.AsyncClient, center: Center) -> None:
    """The calls queue (a wrap-up time, as a voice queue has: the desks end it at once) and
    the default flow, published."""
    admin = center.admin_headers
    queue = {
        "name": CALLS_QUEUE,
        "offer_timeout_seconds": 30,
        "wrap_up_seconds": 30,
        "required_skills": [],
    }
    await call(client, "POST", "/v1/queues", 201, json=queue, headers=admin)
    flow = {"name": "Bench line", "document": LINE_FLOW, "publish": True, "is_default": True}
    await call(client, "POST", "/v1/ivr/flows", 201, json=flow, headers=admin)
