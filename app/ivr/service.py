"""IVR flows: refusing bad ones with their problems. Services flush but never commit."""

from __future__ import annotations

from app.core.errors import AppError
from app.ivr.flow import Flow
from app.ivr.validate import problems


class InvalidFlow(AppError):
    """A flow whose nodes do not fit together: `fields` names each node at fault."""

    status_code = 422
    code = "invalid_flow"


def ensure_valid(flow: Flow, *, field: str = "document") -> None:
    """Refuse `flow` (a 422) with every problem, each field under `field` (`document.start`,
    `document.nodes.menu.options.2`)."""
    found = problems(flow)
    if found:
        fields = [{"field": f"{field}.{p.field}", "problem": p.problem} for p in found]
        detail = "; ".join(f"{f['field']}: {f['problem']}" for f in fields)
        raise InvalidFlow(f"the flow is not valid: {detail}", fields=fields)
