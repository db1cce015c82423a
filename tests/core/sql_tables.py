"""Which tables a piece of SQL names, and whether it reads or writes them.

A small tokenizer, not a parser: it knows the places a table stands in PostgreSQL's grammar
(after FROM, JOIN, INSERT INTO, UPDATE, DELETE FROM, USING of a DELETE, TRUNCATE, LOCK,
REFERENCES, `... TABLE`, and ON in CREATE TRIGGER / CREATE INDEX) and what stands there that is
not a table: a CTE of the same statement, a subquery, a function (`FROM unnest(...)`), a
column (`x.y`, `extract(epoch FROM x)`, `IS DISTINCT FROM x`), an alias, a constraint
(`ON CONFLICT ON CONSTRAINT c`). String literals are skipped; dollar-quoted bodies (PL/pgSQL)
are read as SQL. It errs towards finding a name: a false find shows up in a failing test,
a missed one would not.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

Access = Literal["reads", "writes"]

_IDENTIFIER = r'(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")*")'
_TOKEN = re.compile(
    rf"""
      (?P<space>\s+)
    | (?P<comment>--[^\n]*|/\*.*?\*/)
    | (?P<string>[EeBbXxNn]?'(?:[^']|'')*')
    | (?P<dollar>\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$)
    | (?P<parameter>\$\d+)
    | (?P<dotted>{_IDENTIFIER}(?:\.(?:{_IDENTIFIER}|\*))+)
    | (?P<word>{_IDENTIFIER})
    | (?P<punct>[(),;])
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: Literal["word", "dotted", "punct", "other"]
    text: str  # lower case unless double-quoted

    @property
    def quoted(self) -> bool:
        return self.text.startswith('"')


def tokens(sql: str) -> list[Token]:
    found: list[Token] = []
    for match in _TOKEN.finditer(sql):
        kind, text = match.lastgroup, match.group()
        if kind in ("space", "comment", "dollar"):  # a dollar quote's body is read as SQL
            continue
        if kind in ("string", "parameter"):
            found.append(Token("other", "?"))
        elif kind == "word":
            found.append(Token("word", _folded(text)))
        elif kind == "dotted":
            found.append(Token("dotted", _folded(text)))
        else:
            found.append(Token("punct" if kind == "punct" else "other", text))
    return found


def _folded(text: str) -> str:
    """Names fold to lower case, as in PostgreSQL, unless double-quoted."""
    return text if text.startswith('"') else text.lower()


# Words that end a FROM list: a comma after them is not between two tables (joins do not
# end it: `FROM a JOIN b ON ..., c` lists c too).
_FROM_LIST_ENDS = frozenset(
    {
        *("where", "group", "order", "having", "limit", "offset", "window", "returning"),
        *("union", "intersect", "except", "select", "values", "into", "set", "do"),
        *("from", "update", "insert", "delete", "for", "fetch", "then", "else", "end", "loop"),
    }
)
_NOT_A_TABLE = _FROM_LIST_ENDS | {
    *("join", "inner", "left", "right", "full", "cross", "natural", "on", "using", "lateral"),
    *("only", "with", "and", "or", "when", "true", "false", "null", "default", "as"),
}
# Functions whose arguments say FROM without naming a table: extract(epoch FROM x).
_FROM_IN_ARGUMENTS = frozenset({"extract", "substring", "trim", "overlay", "position"})
# UPDATE is no statement after these words (FOR [NO KEY] UPDATE, DO UPDATE, BEFORE UPDATE ON,
# INSERT OR UPDATE, INSTEAD OF UPDATE, ON UPDATE CASCADE) or before these (UPDATE SET ...,
# UPDATE OF column, FOR UPDATE SKIP LOCKED).
_UPDATE_IS_NO_STATEMENT_AFTER = frozenset({"for", "key", "do", "before", "after", "or", "of", "on"})
_UPDATE_IS_NO_STATEMENT_BEFORE = frozenset({"set", "of", "on", "skip", "nowait"})
_TABLE_STATEMENTS = frozenset({"trigger", "index", "policy", "rule"})


def statements(found: list[Token]) -> Iterator[list[Token]]:
    start = 0
    for index, token in enumerate(found):
        if token.text == ";":
            yield found[start:index]
            start = index + 1
    yield found[start:]


def cte_names(statement: Sequence[Token]) -> set[str]:
    """Names the statement defines with `name [(columns)] AS [[NOT] MATERIALIZED] (`."""
    names = set()
    for index, token in enumerate(statement):
        before = statement[index - 1].text if index else None
        if token.kind != "word" or before not in (None, "with", "recursive", ","):
            continue
        after = index + 1
        if _text(statement, after) == "(":
            after = _after_parentheses(statement, after)
        if _text(statement, after) != "as":
            continue
        after += 1
        while _text(statement, after) in ("not", "materialized"):
            after += 1
        if _text(statement, after) == "(":
            names.add(_name(token))
    return names


def tables_in(sql: str) -> dict[str, Access]:
    """Every table `sql` names, with "writes" if any statement writes it, else "reads"."""
    touched: dict[str, Access] = {}
    for statement in statements(tokens(sql)):
        shadowed = cte_names(statement)
        for name, access in _relations(statement):
            if name not in shadowed and touched.get(name) != "writes":
                touched[name] = access
    return touched


def _relations(statement: Sequence[Token]) -> Iterator[tuple[str, Access]]:
    """The tables of one statement, CTEs included; a FROM list is followed through its commas
    at its own depth of parentheses."""
    words = [token.text for token in statement if token.kind == "word"]
    head = words[: words.index("on")] if "on" in words else words
    trigger_or_index = (  # its first ON names a table
        bool(head)
        and head[0] in ("create", "drop", "alter", "comment")
        and bool(_TABLE_STATEMENTS & set(head))
        and "function" not in head
    )
    depth = 0
    from_lists: list[int] = []  # depths at which a FROM list is open
    parentheses: list[bool] = []  # for each open one: is it a FROM-in-arguments function's
    for index, token in enumerate(statement):
        text, before = token.text, _text(statement, index - 1)
        if text == "(":
            parentheses.append(before in _FROM_IN_ARGUMENTS)
            depth += 1
        elif text == ")":
            parentheses = parentheses[:-1]
            depth -= 1
            while from_lists and from_lists[-1] > depth:
                from_lists.pop()
        elif text == "," and from_lists and from_lists[-1] == depth:
            yield from _named(statement, index + 1, "reads", call=True)
        elif token.kind == "word" and not token.quoted:
            if from_lists and from_lists[-1] == depth and text in _FROM_LIST_ENDS:
                from_lists.pop()
            if text == "from" and not (parentheses and parentheses[-1]) and before != "distinct":
                if before == "delete":
                    yield from _named(statement, index + 1, "writes")
                    continue
                yield from _named(statement, index + 1, "reads", call=True)
                if not from_lists or from_lists[-1] != depth:
                    from_lists.append(depth)
            elif text == "on" and trigger_or_index:
                trigger_or_index = False
                yield from _named(statement, index + 1, "writes")
            else:
                yield from _after_keyword(statement, index, words)


def _after_keyword(
    statement: Sequence[Token], index: int, words: list[str]
) -> Iterator[tuple[str, Access]]:
    """The table after the keyword at `index` (other than FROM and a trigger's ON), if any."""
    text, before, after = (_text(statement, index + step) for step in (0, -1, 1))
    if text == "join":
        yield from _named(statement, index + 1, "reads", call=True)
    elif text == "into" and before in ("insert", "merge"):
        yield from _named(statement, index + 1, "writes")
    elif text == "update":
        if (
            before not in _UPDATE_IS_NO_STATEMENT_AFTER
            and after not in _UPDATE_IS_NO_STATEMENT_BEFORE
        ):
            yield from _named(statement, index + 1, "writes")
    elif text == "using" and {"delete", "merge"} & set(words[: words.index("using")]):
        yield from _named(statement, index + 1, "reads", call=True)
    elif text in ("truncate", "lock") and after != "table":
        yield from _named(statement, index + 1, "writes")
    elif text == "table" and after != "(":  # not RETURNS TABLE (...)
        yield from _named(statement, _past(statement, index + 1, {"if", "not", "exists"}), "writes")
    elif text == "references":
        yield from _named(statement, index + 1, "reads")


def _named(
    statement: Sequence[Token], index: int, access: Access, *, call: bool = False
) -> Iterator[tuple[str, Access]]:
    """The table at `index`, if a table stands there. `call`: a name followed by `(` is a
    function there (FROM unnest(...)), not a table with a column list (INSERT INTO t (...))."""
    index = _past(statement, index, {"only", "lateral"})
    if index >= len(statement):
        return
    token = statement[index]
    if call and _text(statement, index + 1) == "(":
        return
    if token.kind == "dotted":  # schema.table; anything else dotted is alias.column
        schema, _, table = token.text.partition(".")
        if schema == "public" and "." not in table:
            yield _name(Token("word", table)), access
    elif token.kind == "word" and (token.quoted or token.text not in _NOT_A_TABLE):
        yield _name(token), access


def _past(statement: Sequence[Token], index: int, words: set[str]) -> int:
    while index < len(statement) and statement[index].text in words:
        index += 1
    return index


def _after_parentheses(statement: Sequence[Token], index: int) -> int:
    depth = 0
    for at in range(index, len(statement)):
        depth += {"(": 1, ")": -1}.get(statement[at].text, 0)
        if depth == 0:
            return at + 1
    return len(statement)


def _text(statement: Sequence[Token], index: int) -> str | None:
    """The token's text at `index`; None before the first and after the last."""
    return statement[index].text if 0 <= index < len(statement) else None


def _name(token: Token) -> str:
    return token.text[1:-1].replace('""', '"') if token.quoted else token.text


def python_sql(source: str) -> list[str]:
    """The text of every string literal in a Python module but its docstrings. An f-string's
    interpolations become `?`, which stands for no table."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    texts: list[str] = []
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.JoinedStr):
            texts.append(" ".join(_literal_part(value) for value in node.values))
            pending.extend(v for v in node.values if isinstance(v, ast.FormattedValue))
            continue
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            texts.append(node.value)
        pending.extend(ast.iter_child_nodes(node))
    return texts


def _literal_part(value: ast.expr) -> str:
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return value.value
    return "?"
