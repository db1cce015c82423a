"""events: no NOTIFY from sessions whose hub announces their events itself

The NOTIFY the events trigger sends at commit takes PostgreSQL's one global lock on the
notification queue from just before the commit until the commit record is flushed, so every
transaction that wrote an event waited for the flush of the one before it: no group commit, and
one slow flush held up every writer. A session that sets `cc.notify` to `off` (the hot paths of
the app, whose hub hands their events over itself and announces them to the other replicas
with one NOTIFY per batch, outside any writing transaction) now commits without it. Every
other session (the admin API, psql, another program) still notifies per event.

The current trigger is in app/core/events_notify.sql (app/core/definitions.py), reapplied after
every upgrade: this is its history, not the rule.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 08:05:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DROP TRIGGER events_notify ON events")
    op.execute(
        "CREATE TRIGGER events_notify AFTER INSERT ON events FOR EACH ROW"
        " WHEN (current_setting('cc.notify', true) IS DISTINCT FROM 'off')"
        " EXECUTE FUNCTION notify_event()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER events_notify ON events")
    op.execute(
        "CREATE TRIGGER events_notify AFTER INSERT ON events "
        "FOR EACH ROW EXECUTE FUNCTION notify_event()"
    )
