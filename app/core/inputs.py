"""What a request may carry: values PostgreSQL can hold, refused with a 422 when they are not.

Every string a client sends (a body's field, a query parameter, a desk message's field) ends its
`Annotated` with `REFUSES_NUL`; every integer is bounded by the column or parameter it reaches.
Without them PostgreSQL itself refused the value, as a 500: a NUL character cannot be stored in
`text` or `jsonb`, and an integer past 2^63-1 does not fit a `bigint`.
tests/core/test_request_inputs.py walks every request model and parameter and fails on a string
without the guard or a limit, or an integer without bounds.
"""

from __future__ import annotations

from pydantic import AfterValidator

NUL = "\x00"

SMALLINT_MAX = 2**15 - 1
INTEGER_MAX = 2**31 - 1
BIGINT_MAX = 2**63 - 1


def refuse_nul(value: str | None) -> str | None:
    """PostgreSQL's strings cannot hold a NUL character (U+0000): say so before it fails."""
    if value is not None and NUL in value:
        raise ValueError("must not contain a NUL character (\\u0000)")
    return value


REFUSES_NUL = AfterValidator(refuse_nul)
"""The one guard, last in a string's `Annotated` (or a `str | None`'s):
`Annotated[str, StringConstraints(max_length=200), REFUSES_NUL]`. Put before the limits, it
would make pydantic check them after it, with vaguer messages ("at most 35 items after
validation"). The structural test looks for this very object, in that place."""
