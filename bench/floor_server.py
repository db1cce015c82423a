"""The transport floor's server: the product's wire work per interaction and nothing else.

It speaks just enough of the real API for the benchmark's own clients (bench.http, bench.agents):
`POST /v1/interactions` (validated by a pydantic model, answered with the interaction) and the
desk websocket (hello, set_state, accept, complete, heartbeat). Each interaction costs the frames
the real server sends for it (offer with a ten-entry screen pop, ack and assignment and state on
accept, ack and interaction update and state on completion), on the same stack (uvicorn,
FastAPI, pydantic, json). Routing is a deque of free desk slots in memory: no database, no
policy, no events, no replicas. No real server built on this stack can route faster on the
same machine than this one does, so its rate at saturation is the ceiling for `routed_per_s`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field

TOKEN_PREFIX = "floor-agent-"  # noqa: S105 - the desks' tokens are this and a number
ADMIN_TOKEN = "floor-admin"  # noqa: S105 - a throwaway server on loopback
SLOTS_PER_DESK = 3  # as a chat agent's capacity in the real benchmark
HISTORY = 10  # the real screen pop's last interactions


class NewInteraction(BaseModel):
    channel: str = Field(pattern="^(voice|email|chat|callback)$")
    queue: str = Field(min_length=1, max_length=100)
    customer_id: uuid.UUID
    external_ref: str = Field(min_length=1, max_length=200)
    priority: int = Field(default=0, ge=0, le=100)
    subject: str = Field(default="", max_length=500)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _interaction(new: NewInteraction, interaction_id: str, state: str) -> dict[str, Any]:
    now = _now()
    return {
        "id": interaction_id,
        "channel": new.channel,
        "external_ref": new.external_ref,
        "queue": new.queue,
        "customer_id": str(new.customer_id),
        "priority": new.priority,
        "needs": [{"skill": new.queue, "level": 1}],
        "subject": new.subject,
        "summary": "",
        "state": state,
        "agent_id": None,
        "waiting_since": now,
        "created_at": now,
        "offered_at": None,
        "assigned_at": None,
        "wrap_up_at": None,
        "ended_at": None,
        "disposition": None,
        "notes": "",
        "transferred_from": None,
    }


@dataclass
class Desk:
    socket: WebSocket
    agent_id: str
    holding: dict[str, dict[str, Any]] = field(default_factory=dict)  # by offer id

    async def send(self, frame: dict[str, Any]) -> None:
        await self.socket.send_text(json.dumps(frame))


@dataclass
class Floor:
    """Free desk slots, waiting interactions, and each customer's last interactions."""

    free: deque[Desk] = field(default_factory=deque)
    waiting: deque[dict[str, Any]] = field(default_factory=deque)
    history: dict[str, deque[dict[str, Any]]] = field(default_factory=dict)
    next_event: int = 0

    def event_id(self) -> int:
        self.next_event += 1
        return self.next_event

    async def arrive(self, interaction: dict[str, Any]) -> None:
        while self.free:
            desk = self.free.popleft()
            if desk.socket.client_state.name == "CONNECTED":
                await self.offer(desk, interaction)
                return
        self.waiting.append(interaction)

    async def offer(self, desk: Desk, interaction: dict[str, Any]) -> None:
        offer_id = str(uuid.uuid4())
        desk.holding[offer_id] = interaction
        customer = interaction["customer_id"]
        pop = {
            "interaction": interaction,
            "customer": {
                "id": customer,
                "name": "Floor customer",
                "tier": "gold",
                "lifecycle_stage": "exploration",
                "value": "0.00",
                "language": None,
                "notes": "",
                "contact_points": [{"kind": "chat", "value": f"visitor-{customer}"}],
            },
            "history": list(self.history.get(customer, ())),
            "open_complaints": [],
            "routing": {"matched_skills": interaction["needs"], "reason": "floor"},
        }
        await desk.send(
            {
                "type": "offer",
                "event_id": self.event_id(),
                "offer_id": offer_id,
                "interaction_id": interaction["id"],
                "channel": interaction["channel"],
                "deadline": _now(),
                "screen_pop": pop,
            }
        )

    async def free_slot(self, desk: Desk) -> None:
        if self.waiting:
            await self.offer(desk, self.waiting.popleft())
        else:
            self.free.append(desk)

    def remember(self, interaction: dict[str, Any], agent_id: str) -> None:
        past = self.history.setdefault(interaction["customer_id"], deque(maxlen=HISTORY))
        past.appendleft(
            {
                "id": interaction["id"],
                "channel": interaction["channel"],
                "created_at": interaction["created_at"],
                "state": "completed",
                "subject": interaction["subject"],
                "disposition": "done",
                "agent": agent_id,
            }
        )


def create_app() -> FastAPI:
    app = FastAPI(title="transport floor")
    floor = Floor()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/interactions")
    async def post_interaction(request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {ADMIN_TOKEN}":
            return Response(status_code=401)
        new = NewInteraction.model_validate_json(await request.body())
        interaction = _interaction(new, str(uuid.uuid4()), "queued")
        await floor.arrive(interaction)
        return Response(json.dumps(interaction), status_code=201, media_type="application/json")

    @app.websocket("/v1/desk/ws")
    async def desk_socket(websocket: WebSocket, token: str) -> None:
        if not token.startswith(TOKEN_PREFIX):
            await websocket.close(code=1008)
            return
        await websocket.accept()
        desk = Desk(websocket, token.removeprefix(TOKEN_PREFIX))
        try:
            while True:
                await _on_message(floor, desk, json.loads(await websocket.receive_text()))
        except WebSocketDisconnect:
            pass

    return app


async def _on_message(floor: Floor, desk: Desk, message: dict[str, Any]) -> None:
    kind = message.get("type")
    if kind == "hello":
        await desk.send({"type": "ready", "last_event_id": floor.next_event})
    elif kind == "set_state":
        await desk.send({"type": "ack", "of": "set_state", "detail": message})
        await desk.send({"type": "state", "event_id": floor.event_id(), "state": message["state"]})
        if message["state"] == "available":
            for _ in range(SLOTS_PER_DESK):
                await floor.free_slot(desk)
    elif kind == "accept":
        interaction = desk.holding[str(message["offer_id"])]
        interaction["state"] = "assigned"
        interaction["agent_id"] = desk.agent_id
        await desk.send({"type": "ack", "of": "accept", "detail": {"state": "assigned"}})
        event_id = floor.event_id()
        await desk.send({"type": "assignment", "event_id": event_id, "interaction": interaction})
        await desk.send({"type": "state", "event_id": floor.event_id(), "state": "busy"})
    elif kind == "complete":
        await _complete(floor, desk, str(message["interaction_id"]))


async def _complete(floor: Floor, desk: Desk, interaction_id: str) -> None:
    offer_id = next(o for o, i in desk.holding.items() if i["id"] == interaction_id)
    interaction = desk.holding.pop(offer_id)
    floor.remember(interaction, desk.agent_id)
    await desk.send({"type": "ack", "of": "complete", "detail": {"interaction_id": interaction_id}})
    update = {"from": "assigned", "agent_id": desk.agent_id, "disposition": "done"}
    await desk.send(
        {
            "type": "interaction_update",
            "event_id": floor.event_id(),
            "interaction_id": interaction_id,
            "state": "completed",
            "detail": update,
        }
    )
    await desk.send({"type": "state", "event_id": floor.event_id(), "state": "available"})
    await floor.free_slot(desk)


def main(argv: Sequence[str] | None = None) -> None:
    import uvicorn

    from app.core.collector import tune_for_serving

    parser = argparse.ArgumentParser(prog="python -m bench.floor_server")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    app = create_app()
    tune_for_serving()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_config=None)


if __name__ == "__main__":
    main()
