"""Open complaints for a share of the bench's customers, each owned by a bench agent, and every
queue set to offer a complaint's owner first (docs/complaints.md): so the screen pop of every
offer reads real complaints (a customer with some, a customer with none) and routing's
owner-first rule runs, at once and in passes, through the main phases. A build without
complaints (an older commit in a comparison) gets none, and the results say so.
"""

from __future__ import annotations

import random
from typing import Any

import asyncpg
import httpx

from bench.setup import Center, call

SEVERITY = "minor"  # the longest deadlines: no warning or escalation within a run


async def open_complaints(
    client: httpx.AsyncClient, center: Center, *, share: float, seed: int
) -> dict[str, Any]:
    admin = center.admin_headers
    probe = await client.get("/v1/complaints", headers=admin)
    if probe.status_code == 404:
        return {"opened": 0, "note": "this build has no complaints"}
    agents = await _agent_ids(client, admin)
    rng = random.Random(seed)
    chosen = rng.sample(list(center.customers), k=round(share * len(center.customers)))
    for index, customer_id in enumerate(chosen):
        body = {
            "customer_id": customer_id,
            "owner_agent_id": rng.choice(agents),
            "summary": f"Bench complaint {index}",
            "original_message": "The bill is wrong.",
            "remedy_sought": "A corrected bill",
            "severity": SEVERITY,
        }
        await call(client, "POST", "/v1/complaints", 201, json=body, headers=admin)
    queues = (await call(client, "GET", "/v1/queues?limit=200", 200, headers=admin))["items"]
    for queue in queues:
        change = {"complaint_owner_first": True}
        await call(client, "PATCH", f"/v1/queues/{queue['id']}", 200, json=change, headers=admin)
    return {"opened": len(chosen), "owner_first_queues": len(queues)}


async def _agent_ids(client: httpx.AsyncClient, admin: dict[str, str]) -> list[str]:
    found: list[str] = []
    while True:
        page = await call(
            client, "GET", f"/v1/agents?limit=200&offset={len(found)}", 200, headers=admin
        )
        found += [agent["id"] for agent in page["items"]]
        if len(found) >= page["total"] or not page["items"]:
            return found


async def owner_first_offers(dsn: str) -> int:
    """How many offers went to a complaint's owner by that rule."""
    connection = await asyncpg.connect(dsn)
    try:
        count: int = await connection.fetchval(
            "SELECT count(*) FROM offers WHERE reason LIKE 'complaint owner:%'"
        )
        return count
    finally:
        await connection.close()
