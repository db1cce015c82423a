"""`POST /v1/workforce/staffing`: the agents a forecast needs, for supervisors and admins.

The same plan as `contactcenter staffing` (staffing.py), with the same keys. Arithmetic only: no
database is read. The search runs off the event loop, in a worker thread: at its bounds it takes
a few tenths of a second, which the loop's other requests should not wait for.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from app.auth.dependencies import Staff
from app.core.errors import InvalidField
from app.workforce import staffing
from app.workforce.erlang import MOST_AGENTS, Demand, TooManyAgents

router = APIRouter(prefix="/v1/workforce", tags=["workforce"])


class StaffingIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"calls": 100, "interval_s": 1800, "aht_s": 180, "target_s": 20, "sl": 0.8}
            ]
        }
    )

    calls: float = Field(
        ge=staffing.LEAST_CALLS,
        le=staffing.MOST_CALLS,
        allow_inf_nan=False,
        description="Calls in the interval",
    )
    interval_s: float = Field(
        default=1800,
        ge=staffing.SHORTEST_INTERVAL_S,
        le=staffing.LONGEST_INTERVAL_S,
        allow_inf_nan=False,
        description="The interval's length in seconds",
    )
    aht_s: float = Field(
        ge=staffing.SHORTEST_AHT_S,
        le=staffing.LONGEST_AHT_S,
        allow_inf_nan=False,
        description="Average handle time in seconds (talk and wrap-up)",
    )
    target_s: float = Field(
        ge=0,
        le=staffing.LONGEST_TARGET_S,
        allow_inf_nan=False,
        description="The service level's answer time in seconds",
    )
    sl: float = Field(
        gt=0, lt=1, allow_inf_nan=False, description="The share to answer within target_s"
    )
    patience_s: float | None = Field(
        default=None,
        ge=staffing.SHORTEST_PATIENCE_S,
        le=staffing.LONGEST_PATIENCE_S,
        allow_inf_nan=False,
        description="The callers' mean patience in seconds: Erlang A; without it, Erlang C",
    )
    max_abandon: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        allow_inf_nan=False,
        description="With patience_s: the most callers who may hang up (0-1)",
    )


class FiguresOut(BaseModel):
    agents: int
    service_level: float = Field(description="Answered within target_s / all callers")
    asa_s: float | None = Field(
        description="Mean wait of the answered; null when the line grows without end"
    )
    occupancy: float
    abandon_rate: float | None = Field(description="Null under Erlang C: it has no hanging up")
    wait_probability: float


class StaffingOut(FiguresOut):
    model: str = Field(description="`erlang_c`, or `erlang_a` with patience_s")
    load_erlangs: float = Field(description="The offered load: calls per second x AHT")
    around: list[FiguresOut] = Field(description="A few counts below and above, ascending")


@router.post("/staffing", summary="The agents a forecast of calls needs (Erlang C or A)")
async def plan_staffing(_: Staff, body: StaffingIn) -> StaffingOut:
    if body.max_abandon is not None and body.patience_s is None:
        raise InvalidField("max_abandon", "needs patience_s (Erlang A)")
    demand = Demand(body.calls, body.interval_s, body.aht_s, body.target_s, body.patience_s)
    try:
        plan = await run_in_threadpool(
            staffing.plan_staffing, demand, body.sl, max_abandon=body.max_abandon
        )
    except TooManyAgents:
        raise InvalidField(
            "calls", f"more than {MOST_AGENTS:,} agents would be needed for this load"
        ) from None
    return StaffingOut.model_validate(staffing.plan_json(plan))
