"""Why the database refused a change, in the client's words.

Services check what they can before they write (a taken name, a missing skill); what reaches
PostgreSQL anyway (a customer deleted while interactions refer to it, two writers racing) is
refused there by a constraint. `refusal` turns that refusal into what the client is told, from
the constraint's name and the tables the ORM's metadata says it joins: never the SQL, nor the
values PostgreSQL quotes in its message. app/core/errors.py renders it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import asyncpg
from sqlalchemy import ForeignKeyConstraint, Index, Table, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import ColumnClause, TextClause

from app.core.models import Base


class SqlState:
    """PostgreSQL's codes of class 23, integrity constraint violation."""

    RESTRICT = "23001"
    NOT_NULL = "23502"
    FOREIGN_KEY = "23503"
    UNIQUE = "23505"
    CHECK = "23514"


# Tables that join two others read badly as "this skill still has agent skills".
REFERRERS = {"agent_skills": "agents holding it", "queue_skills": "queues requiring it"}


@dataclass(frozen=True)
class Refusal:
    """What the client hears: a conflict with stored data (409) or a value no row may hold (422)."""

    kind: Literal["conflict", "invalid"]
    detail: str
    fields: list[dict[str, str]] = field(default_factory=list)


def violation_of(error: Exception) -> asyncpg.IntegrityConstraintViolationError | None:
    """The driver's own error under SQLAlchemy's IntegrityError, or the error itself."""
    if isinstance(error, asyncpg.IntegrityConstraintViolationError):
        return error
    if isinstance(error, IntegrityError):
        cause = error.orig.__cause__ if error.orig is not None else None
        if isinstance(cause, asyncpg.IntegrityConstraintViolationError):
            return cause
    return None


def refusal(violation: asyncpg.IntegrityConstraintViolationError) -> Refusal:
    table = _table(violation.table_name)
    name = violation.constraint_name or ""
    match violation.sqlstate:
        case SqlState.RESTRICT | SqlState.FOREIGN_KEY if _refused_a_delete(violation):
            return _still_referred_to(table, name)
        case SqlState.FOREIGN_KEY:
            return _refers_to_nothing(table, name)
        case SqlState.UNIQUE:
            return _taken(table, name)
        case SqlState.CHECK:
            return _broken_rule(table, name)
        case SqlState.NOT_NULL:
            return _missing(violation.column_name or "a column")
    return Refusal("conflict", f"{_thing(table)}: the change conflicts with what is stored")


def _refused_a_delete(violation: asyncpg.IntegrityConstraintViolationError) -> bool:
    # RESTRICT (23001) only ever refuses a delete or a key change of the referred row. A plain
    # foreign key (NO ACTION, 23503) refuses both sides: PostgreSQL's message says which.
    message = str(violation.args[0] if violation.args else "")
    return violation.sqlstate == SqlState.RESTRICT or message.startswith(
        "update or delete on table"
    )


def _still_referred_to(referrer: Table | str, name: str) -> Refusal:
    key = _foreign_key(referrer, name)
    referred = _singular(key.referred_table.name) if key is not None else "row"
    table_name = referrer.name if isinstance(referrer, Table) else referrer
    holders = REFERRERS.get(table_name, _words(table_name))
    return Refusal(
        "conflict",
        f"this {referred} still has {holders}, which refer to it: it cannot be deleted "
        "while they exist",
    )


def _refers_to_nothing(referrer: Table | str, name: str) -> Refusal:
    key = _foreign_key(referrer, name)
    if key is None:
        return Refusal("conflict", f"{_thing(referrer)} refers to something that does not exist")
    referred = _singular(key.referred_table.name)
    column = key.column_keys[0] if key.column_keys else referred
    problem = f"no such {referred} (any more)"
    return Refusal("conflict", f"{column}: {problem}", [{"field": column, "problem": problem}])


def _taken(table: Table | str, name: str) -> Refusal:
    columns = _unique_columns(table, name)
    what = " and ".join(columns) if columns else "these values"
    return Refusal("conflict", f"{_thing(table)} with this {what} already exists")


def _broken_rule(table: Table | str, name: str) -> Refusal:
    prefix = f"ck_{table.name if isinstance(table, Table) else table}_"
    rule = name.removeprefix(prefix) or "a rule"
    return Refusal("invalid", f"{_thing(table)}: the values break the rule {rule}")


def _missing(column: str) -> Refusal:
    return Refusal(
        "invalid", f"{column}: is required", [{"field": column, "problem": "is required"}]
    )


def _table(name: str | None) -> Table | str:
    """The ORM's table of that name, or the bare name when the metadata has none."""
    return Base.metadata.tables.get(name or "", name or "row")


def _foreign_key(table: Table | str, name: str) -> ForeignKeyConstraint | None:
    if isinstance(table, str):
        return None
    return next(
        (c for c in table.constraints if isinstance(c, ForeignKeyConstraint) and c.name == name),
        None,
    )


def _unique_columns(table: Table | str, name: str) -> list[str]:
    if isinstance(table, str):
        return []
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint) and constraint.name == name:
            return [column.name for column in constraint.columns]
    for index in table.indexes:
        if isinstance(index, Index) and index.name == name:
            return list(_named_in(index))
    return []


def _named_in(index: Index) -> Iterator[str]:
    """The columns an index covers, also inside expressions such as lower(name)."""
    for expression in index.expressions:
        if isinstance(expression, str):  # a column named by its name
            yield expression
            continue
        for element in visitors.iterate(expression):
            if isinstance(element, ColumnClause):
                yield element.name
            elif isinstance(element, TextClause):
                yield element.text


def _thing(table: Table | str) -> str:
    noun = _singular(table.name if isinstance(table, Table) else table)
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def _singular(table_name: str) -> str:
    return _words(table_name).removesuffix("s")


def _words(table_name: str) -> str:
    return table_name.replace("_", " ")
