"""Each table belongs to one package; another package's SQL touches it only where declared.

A table's owner is the package of app/ that defines it (`__tablename__`, in its models.py or,
for `events`, core/events.py). A package's SQL is the text of its string literals (docstrings
aside) and of its .sql files; tests/core/sql_tables.py finds the tables that text reads or
writes. Every crossing (a package's SQL touching another's table) is declared in `CROSSINGS`,
with why, and the map must stay true both ways: a new crossing fails until it is declared, a
declared one that no longer exists fails until it is deleted, and so does one declared as
reading that writes, or declared as writing that only reads.

Not seen: SQL that reaches a package by a fragment pasted from another (it counts for the
package whose file holds the text), and the ORM's queries (`select(Agent)` names no table).
app/migrations is the schema's history (it creates every table) and is not read.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.core.sql_tables import Access, python_sql, tables_in

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"
NOT_READ = {"migrations"}


class Crossing(NamedTuple):
    access: Access  # "writes" allows reading too
    why: str


# (package, table): how the package's SQL touches a table another package owns, and why.
CROSSINGS: dict[tuple[str, str], Crossing] = {
    # desk: the agent's socket
    ("desk", "agents"): Crossing("writes", "the socket sets and clears the agent's connection_id"),
    ("desk", "customers"): Crossing("reads", "a replayed pop joins the customer for its profile"),
    ("desk", "queues"): Crossing("reads", "a replayed pop names the interaction's queue"),
    ("desk", "agent_presence"): Crossing("writes", "a desk that connects is present at once"),
    ("desk", "events"): Crossing("reads", "a reconnecting desk replays the events it missed"),
    ("desk", "interactions"): Crossing("reads", "a reconnecting desk lists the work it holds"),
    ("desk", "offers"): Crossing("reads", "a reconnecting desk lists its pending offers"),
    # channels: a chat's own reads beside the interaction it is
    ("channels", "interactions"): Crossing("reads", "a chat's state and agent; the sweep's"),
    ("channels", "interaction_messages"): Crossing(
        "reads", "a chat's transcript, a resend's first line, a visitor's lines per minute"
    ),
    ("channels", "agents"): Crossing("reads", "the name of the agent a chat's customer sees"),
    ("channels", "users"): Crossing("reads", "the name of the agent a chat's customer sees"),
    ("channels", "queues"): Crossing("reads", "whether a site's queue is open for chats now"),
    ("channels", "replicas"): Crossing("reads", "a customer whose replica lapsed is away"),
    # interactions: intake's look-up and insert, one round trip each
    ("interactions", "agents"): Crossing("reads", "history names the agent who handled it"),
    ("interactions", "contact_points"): Crossing("reads", "intake finds the caller's customer"),
    ("interactions", "customers"): Crossing("reads", "intake reads the customer and its tier"),
    ("interactions", "events"): Crossing("writes", "intake writes interaction.queued itself"),
    ("interactions", "queues"): Crossing("reads", "intake finds the queue by id or name"),
    ("interactions", "queue_skills"): Crossing("reads", "the queue's required skills are needs"),
    ("interactions", "skills"): Crossing("reads", "needs name skills, checked by name"),
    ("interactions", "users"): Crossing("reads", "history shows the agent's display name"),
    ("interactions", "complaints"): Crossing(
        "reads", "intake's look-up finds the owner of the customer's open complaint"
    ),
    ("interactions", "complaint_deadlines"): Crossing(
        "reads", "of several open complaints, the owner of the one due soonest"
    ),
    # tickets: a customer's open complaints, in the screen pop
    ("tickets", "agents"): Crossing("reads", "the pop names each open complaint's owner"),
    ("tickets", "users"): Crossing("reads", "the owner's display name"),
    # supervisor: the live ledger's seed (the log, each queue's settings, each agent now)
    ("supervisor", "events"): Crossing(
        "reads", "the live figures fold the log since the day began"
    ),
    ("supervisor", "queues"): Crossing(
        "reads", "each queue's zone, target and abandon rules; Prometheus's floor names them"
    ),
    ("supervisor", "agents"): Crossing(
        "reads", "each agent's state, for its occupancy; Prometheus's agents by state"
    ),
    ("supervisor", "interactions"): Crossing(
        "reads", "what each agent holds, for its occupancy; Prometheus's waiting work"
    ),
    # supervisor: Prometheus's scrape reads the floor (app/supervisor/floor_figures.py)
    ("supervisor", "offers"): Crossing(
        "reads", "work on offer waits too, found by its offer; what rings at a desk"
    ),
    ("supervisor", "users"): Crossing(
        "reads", "deactivated users' agents are not counted; an agent's name on the board"
    ),
    ("supervisor", "outbox_messages"): Crossing("reads", "the outbox's unsent messages"),
    # supervisor: the live board's reads of the floor now (app/supervisor/reads.py)
    ("supervisor", "customers"): Crossing("reads", "the roll-up files each wait under its tier"),
    ("supervisor", "complaints"): Crossing("reads", "escalated and overdue complaints"),
    ("supervisor", "complaint_deadlines"): Crossing("reads", "a complaint's late clocks"),
    # routing: the matcher's reads and writes, arrivals, accept/complete, the sweeper
    ("routing", "agents"): Crossing("writes", "offers move routing_version; states follow work"),
    ("routing", "agent_presence"): Crossing("writes", "heartbeats are flushed in batches"),
    ("routing", "agent_skills"): Crossing("reads", "the directory reads each agent's skills"),
    ("routing", "customers"): Crossing("reads", "the tier weighs in; the offer's write joins it"),
    ("routing", "events"): Crossing("writes", "offers and their events go in one statement"),
    ("routing", "interactions"): Crossing("writes", "passes claim work; accept/complete move it"),
    ("routing", "offers"): Crossing("writes", "routing writes offers and settles them"),
    ("routing", "queues"): Crossing("reads", "queue settings: weights, timeouts, wrap-up"),
    ("routing", "queue_skills"): Crossing(
        "reads", "the staffed agents of a queue hold its required skills (figures.py)"
    ),
    ("routing", "replicas"): Crossing(
        "writes", "offers only to desks under a live lease; lapsed ones are settled and pruned"
    ),
    ("routing", "skills"): Crossing("reads", "agents' skills are matched by name"),
    ("routing", "users"): Crossing("reads", "only an active user's agent is offered work"),
}


def _package(path: str) -> str:
    """The package of app/ a file belongs to: app/routing/matcher.py and app/main.py are in
    routing and main."""
    return Path(path).parts[1].removesuffix(".py")


def app_files() -> dict[str, str]:
    """Every .py and .sql file of app/ that is read, by path from the repository's root."""
    files = [*APP.rglob("*.py"), *APP.rglob("*.sql")]
    return {
        str(path.relative_to(ROOT)): path.read_text()
        for path in sorted(files)
        if _package(str(path.relative_to(ROOT))) not in NOT_READ
    }


def table_owners(files: Mapping[str, str]) -> dict[str, set[str]]:
    """Each table, with the packages whose Python defines it (one, unless something is off)."""
    owners: dict[str, set[str]] = {}
    for path, source in files.items():
        if path.endswith(".py"):
            for table in _tables_defined(source):
                owners.setdefault(table, set()).add(_package(path))
    return owners


def _tables_defined(source: str) -> set[str]:
    """`__tablename__ = "x"` in a class, and `Table("x", ...)`."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            if any(isinstance(t, ast.Name) and t.id == "__tablename__" for t in node.targets):
                found.add(str(node.value.value))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            function = node.func
            name = function.attr if isinstance(function, ast.Attribute) else None
            if name == "Table" or (isinstance(function, ast.Name) and function.id == "Table"):
                found.add(str(node.args[0].value))
    return found


@dataclass
class Touch:
    access: Access
    files: set[str]


def touches(files: Mapping[str, str]) -> dict[tuple[str, str], Touch]:
    """(package, table) for every table name each package's SQL reads or writes."""
    found: dict[tuple[str, str], Touch] = {}
    for path, source in files.items():
        texts = python_sql(source) if path.endswith(".py") else [source]
        for text in texts:
            for table, access in tables_in(text).items():
                touch = found.setdefault((_package(path), table), Touch(access, set()))
                touch.files.add(path)
                if access == "writes":
                    touch.access = "writes"
    return found


def crossing_problems(
    touched: Mapping[tuple[str, str], Touch],
    owners: Mapping[str, str],
    declared: Mapping[tuple[str, str], Crossing],
) -> list[str]:
    """Each way the code and the declared crossings disagree, in words that say what to do."""
    problems = []
    crossings = {
        (package, table): touch
        for (package, table), touch in touched.items()
        if table in owners and owners[table] != package
    }
    for (package, table), touch in sorted(crossings.items()):
        where = ", ".join(sorted(touch.files))
        crossing = declared.get((package, table))
        if crossing is None:
            problems.append(
                f"{package} {touch.access} {table}, a table of {owners[table]} ({where}), and no"
                f" crossing says so. Go through {owners[table]} instead, or declare it in"
                f" CROSSINGS in {Path(__file__).relative_to(ROOT)}:\n"
                f'    ("{package}", "{table}"): Crossing("{touch.access}", "<why>"),'
            )
        elif crossing.access == "reads" and touch.access == "writes":
            problems.append(
                f"{package} writes {table}, a table of {owners[table]} ({where}), but CROSSINGS"
                f' says it only reads it: make it Crossing("writes", "<why>"), or leave the'
                f" writing to {owners[table]}."
            )
        elif crossing.access == "writes" and touch.access == "reads":
            problems.append(
                f"CROSSINGS says {package} writes {table}, but its SQL only reads it now"
                f' ({where}): make ("{package}", "{table}") Crossing("reads", "<why>").'
            )
    for package, table in sorted(set(declared) - set(crossings)):
        if table not in owners:
            problem = f"no package defines a table {table}"
        elif owners[table] == package:
            problem = f"{table} is {package}'s own table"
        else:
            problem = f"no SQL in app/{package} touches {table} any more"
        problems.append(f'CROSSINGS declares ("{package}", "{table}"), but {problem}: delete it.')
    return problems


def test_every_table_has_one_owner() -> None:
    owners = table_owners(app_files())
    assert owners, "no table found: is __tablename__ still how tables are defined?"
    assert {table: packages for table, packages in owners.items() if len(packages) > 1} == {}


def test_sql_touches_another_package_s_tables_only_as_declared() -> None:
    files = app_files()
    owners = {table: min(packages) for table, packages in table_owners(files).items()}
    problems = crossing_problems(touches(files), owners, CROSSINGS)
    assert not problems, "\n".join(problems)


# The check on made-up code: a package's SQL and the map disagreeing in each way.
OWNERS = {"customers": "customers", "agents": "agents", "interactions": "interactions"}


def _touched(path: str, sql: str) -> dict[tuple[str, str], Touch]:
    return touches({path: f"QUERY = {sql!r}\n"})


def test_a_new_crossing_fails_and_says_how_to_declare_it() -> None:
    touched = _touched("app/routing/pop.py", "SELECT c.tier FROM customers c WHERE c.id = $1")
    assert crossing_problems(touched, OWNERS, {}) == [
        "routing reads customers, a table of customers (app/routing/pop.py), and no crossing"
        " says so. Go through customers instead, or declare it in CROSSINGS in"
        " tests/core/test_table_ownership.py:\n"
        '    ("routing", "customers"): Crossing("reads", "<why>"),'
    ]
    declared = {("routing", "customers"): Crossing("reads", "the tier")}
    assert crossing_problems(touched, OWNERS, declared) == []


def test_a_crossing_declared_as_a_read_that_writes_fails() -> None:
    touched = _touched("app/desk/socket.py", "UPDATE agents SET connection_id = $2 WHERE id = $1")
    declared = {("desk", "agents"): Crossing("reads", "the agent's state")}
    [problem] = crossing_problems(touched, OWNERS, declared)
    assert problem.startswith("desk writes agents, a table of agents (app/desk/socket.py)")


def test_a_declared_crossing_that_no_longer_exists_fails() -> None:
    touched = _touched("app/routing/pop.py", "SELECT 1 FROM interactions WHERE id = $1")
    declared = {
        ("routing", "interactions"): Crossing("writes", "passes claim work"),
        ("routing", "customers"): Crossing("reads", "the tier"),
        ("routing", "agents"): Crossing("reads", "moved"),
    }
    assert crossing_problems(touched, OWNERS, declared) == [
        "CROSSINGS says routing writes interactions, but its SQL only reads it now"
        ' (app/routing/pop.py): make ("routing", "interactions") Crossing("reads", "<why>").',
        'CROSSINGS declares ("routing", "agents"), but no SQL in app/routing touches agents any'
        " more: delete it.",
        'CROSSINGS declares ("routing", "customers"), but no SQL in app/routing touches'
        " customers any more: delete it.",
    ]


def test_a_package_s_own_tables_and_unknown_names_are_no_crossing() -> None:
    touched = _touched("app/customers/service.py", "SELECT * FROM customers JOIN pg_class ON true")
    assert crossing_problems(touched, OWNERS, {}) == []
    declared = {("customers", "customers"): Crossing("reads", "its own")}
    assert crossing_problems(touched, OWNERS, declared) == [
        'CROSSINGS declares ("customers", "customers"), but customers is customers\'s own'
        " table: delete it."
    ]


def test_tables_are_found_in_python_strings_and_sql_files_but_not_docstrings() -> None:
    source = '''
"""Reads from agents, the docstring says."""
QUERY = f"SELECT * FROM {TABLE} t JOIN customers c ON c.id = t.customer_id"


def f() -> None:
    """Then UPDATE agents, it says."""
    run("DELETE FROM offers WHERE id = $1")
'''
    found = touches({"app/routing/x.py": source, "app/routing/rules.sql": "UPDATE agents SET x=1"})
    assert {key: touch.access for key, touch in found.items()} == {
        ("routing", "customers"): "reads",
        ("routing", "offers"): "writes",
        ("routing", "agents"): "writes",
    }
    assert found[("routing", "agents")].files == {"app/routing/rules.sql"}


def test_tables_are_owned_where_they_are_defined() -> None:
    source = 'class Agent(Base):\n    __tablename__ = "agents"\n\nlog = Table("agent_log", m)\n'
    assert table_owners({"app/agents/models.py": source}) == {
        "agents": {"agents"},
        "agent_log": {"agents"},
    }


# The extractor on tricky SQL: every table it names, and how.
@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        pytest.param(
            "SELECT a.id FROM agents a JOIN users u ON u.id = a.user_id, skills s WHERE a.x = 1",
            {"agents": "reads", "users": "reads", "skills": "reads"},
            id="aliases, a comma list, a join condition of columns",
        ),
        pytest.param(
            "WITH offers AS (SELECT * FROM interactions), held AS (SELECT 1 FROM offers)"
            " SELECT * FROM offers o JOIN held h ON true",
            {"interactions": "reads"},
            id="CTE names, one shadowing a table",
        ),
        pytest.param(
            "WITH RECURSIVE tree(id, parent) AS MATERIALIZED (SELECT id, parent FROM skills)"
            " SELECT * FROM tree",
            {"skills": "reads"},
            id="recursive CTE with columns, materialized",
        ),
        pytest.param(
            "SELECT * FROM (SELECT * FROM interactions WHERE state = 'queued' LIMIT $6) i"
            " JOIN customers c ON c.id = i.customer_id"
            " WHERE EXISTS (SELECT FROM offers o WHERE o.interaction_id = i.id)",
            {"interactions": "reads", "customers": "reads", "offers": "reads"},
            id="subqueries in FROM and WHERE",
        ),
        pytest.param(
            "UPDATE agents a SET v = v + 1 FROM (SELECT DISTINCT agent_id FROM input) r, users u"
            " WHERE a.id = r.agent_id",
            {"agents": "writes", "input": "reads", "users": "reads"},
            id="UPDATE ... FROM a subquery and a table",
        ),
        pytest.param(
            "INSERT INTO events AS e (occurred_at, kind) SELECT $1, kind FROM unnest($2::text[])"
            " WITH ORDINALITY AS n(kind, ord) ORDER BY ord RETURNING e.id, e.kind",
            {"events": "writes"},
            id="INSERT INTO t AS alias (columns), FROM a function",
        ),
        pytest.param(
            "INSERT INTO interactions (id) VALUES ($1)"
            " ON CONFLICT ON CONSTRAINT uq_interactions_ref DO NOTHING",
            {"interactions": "writes"},
            id="ON CONFLICT ON CONSTRAINT",
        ),
        pytest.param(
            "INSERT INTO agent_presence (agent_id) VALUES ($1)"
            " ON CONFLICT (agent_id) DO UPDATE SET last_seen_at = excluded.last_seen_at",
            {"agent_presence": "writes"},
            id="ON CONFLICT DO UPDATE",
        ),
        pytest.param(
            "SELECT a.state FROM agents a LEFT JOIN offers o ON o.id = $2 WHERE a.id = $1"
            " FOR NO KEY UPDATE OF a SKIP LOCKED",
            {"agents": "reads", "offers": "reads"},
            id="FOR NO KEY UPDATE OF",
        ),
        pytest.param(
            "SELECT extract(epoch FROM now() - i.waiting_since), trim(both FROM name),"
            " x IS DISTINCT FROM y, substring(notes FROM 2) FROM interactions i",
            {"interactions": "reads"},
            id="FROM in function arguments and IS DISTINCT FROM",
        ),
        pytest.param(
            "DELETE FROM offers o USING interactions i WHERE i.id = o.interaction_id;"
            " TRUNCATE skills; LOCK TABLE queues IN SHARE MODE",
            {"offers": "writes", "interactions": "reads", "skills": "writes", "queues": "writes"},
            id="DELETE ... USING, TRUNCATE, LOCK",
        ),
        pytest.param(
            "CREATE TRIGGER t AFTER INSERT OR UPDATE OF state ON agents"
            " FOR EACH ROW EXECUTE FUNCTION f(); CREATE INDEX ix ON offers (agent_id)",
            {"agents": "writes", "offers": "writes"},
            id="ON of CREATE TRIGGER and CREATE INDEX",
        ),
        pytest.param(
            "CREATE OR REPLACE FUNCTION routing_accept(p uuid) RETURNS TABLE (id uuid)"
            " LANGUAGE plpgsql AS $fn$ BEGIN"
            " UPDATE agents SET state = 'busy' WHERE id = p;"
            " RETURN QUERY SELECT o.id FROM offers o JOIN interactions i ON i.id = o.id;"
            " PERFORM 1 FROM queues -- a comment: FROM users\n;"
            " END $fn$",
            {"agents": "writes", "offers": "reads", "interactions": "reads", "queues": "reads"},
            id="a PL/pgSQL body, comments",
        ),
        pytest.param(
            'SELECT \'FROM users\', "Skills".name FROM public.queues, "Mixed" WHERE x = $1',
            {"queues": "reads", "Mixed": "reads"},
            id="strings, quoted and schema-qualified names",
        ),
        pytest.param(
            "SELECT kind, id FROM caller UNION ALL SELECT 'g', k.id FROM gateway_keys k"
            " ORDER BY kind, id",
            {"caller": "reads", "gateway_keys": "reads"},
            id="UNION, ORDER BY after a FROM list",
        ),
    ],
)
def test_the_tables_a_statement_names(sql: str, expected: dict[str, str]) -> None:
    assert tables_in(sql) == expected
