"""The rules that run inside PostgreSQL: one current definition each, reapplied at every upgrade.

A rule that must run inside the database to stay atomic (a PL/pgSQL function, a trigger) lives
in a `.sql` file next to the Python that calls it, and nowhere else a reader has to look. The
versioned migrations keep their history (the rule as each revision first wrote it); these files
say what the rule is now. `migrate.upgrade` runs every file below, in this order, in the
upgrade's own transaction, after the versioned migrations, whenever the database ends at head:
also when it was at head already, so an edited file reaches an existing database with the next
`contactcenter db upgrade` (which every `serve` runs). A downgrade never runs them. These are
the repeatable migrations of other tools, run on every upgrade rather than when a checksum
changes, so a rule changed by hand in the database is put back too.

How to write a file:
- Whole statements, each one idempotent: `CREATE OR REPLACE FUNCTION`, `CREATE OR REPLACE
  VIEW` (which the planner inlines: cheaper than a function on a hot path), `CREATE OR REPLACE
  TRIGGER` (PostgreSQL 14+). Running a file twice changes nothing the first run did not.
- Against the head schema: the files run after the last migration, so a migration must not
  count on the current version of a function it calls.
- A new rule needs no migration: add it to a file (a new file to DEFINITIONS). A trigger goes
  with its table; one whose WHEN reads a column a migration added must be dropped (IF EXISTS)
  by that migration's downgrade before the column. A function no migration made outlives a
  downgrade to base, harmlessly: the next upgrade replaces it; but one that depends on a table
  (returns its row type; a view that reads it) would keep the table from being dropped, so a
  migration drops it on the way down (migration 0011 drops today's).
- Changing a function's arguments or its result type: `CREATE OR REPLACE` replaces a body, not a
  signature (other arguments make a second function beside the old one; another result is
  refused). Write a versioned migration that drops the function (`DROP FUNCTION IF EXISTS
  name(old arguments) CASCADE`, which takes its triggers along) on the way up and the new one on
  the way down; the reapply then creates the file's version, and after a downgrade the older
  release's own `db upgrade` creates its own. Say which migration it was in a comment above the
  function in the file. Removing a rule is the same drop, and the file loses it.
- Every reapply replaces the triggers, which takes SHARE ROW EXCLUSIVE on their tables until the
  upgrade commits: a start waits for the writes in flight to those tables and holds new ones for
  that moment. The files run in the order the hot paths lock tables (agents, then events).
"""

from __future__ import annotations

from importlib.resources import files

import asyncpg

# Paths inside the `app` package, applied in this order. Installed as package data (*.sql).
DEFINITIONS: tuple[str, ...] = (
    "auth/caller.sql",  # auth_caller: who a hot-path request's secret belongs to
    "queues/settings_version.sql",  # the view queues_settings_version: when to re-read queues
    "interactions/arrival.sql",  # interactions_arrive: a new interaction and its first event
    "routing/decisions.sql",  # routing_refresh_agent, routing_accept, routing_complete
    "routing/agent_version.sql",  # agents_move_routing_version, trigger agents_routing_version
    "core/events_notify.sql",  # notify_event, trigger events_notify
)


def read(definition: str) -> str:
    """The text of one definition file, as installed."""
    return files("app").joinpath(definition).read_text(encoding="utf-8")


async def apply(connection: asyncpg.Connection) -> None:
    """Run every definition file on `connection`, inside the transaction it is in.

    Each file goes in one simple-protocol call (several statements, `$$` bodies and all), so
    nothing here splits SQL. Outside a transaction a failing file would leave the ones before it
    applied: refuse that."""
    if not connection.is_in_transaction():
        raise RuntimeError("the definitions are applied inside the upgrade's transaction")
    for definition in DEFINITIONS:
        await connection.execute(read(definition))
