"""interactions: `converted`, the end of a waiting call the caller turned into a callback

A caller who presses the callback key while holding ends the call in a state of its own
(neither answered nor abandoned, as the figures count it); the `callback` interaction that
replaces it keeps its place in line (app/routing/line.py, docs/routing.md). The state column's
CHECK constraint lists the states, so it is rebuilt with the new one.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 16:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = "ck_interactions_interaction_state"
STATES = (
    "queued",
    "offered",
    "assigned",
    "wrap_up",
    "completed",
    "abandoned",
    "transferred_out",
    "expired",
)


def _only(states: Sequence[str]) -> None:
    op.drop_constraint(op.f(CONSTRAINT), "interactions", type_="check")
    listed = ", ".join(f"'{state}'" for state in states)
    op.create_check_constraint(op.f(CONSTRAINT), "interactions", f"state IN ({listed})")


def upgrade() -> None:
    _only((*STATES, "converted"))


def downgrade() -> None:
    # A converted call is a call that ended without an answer: abandoned is the nearest state
    # the older schema knows.
    op.execute("UPDATE interactions SET state = 'abandoned' WHERE state = 'converted'")
    _only(STATES)
