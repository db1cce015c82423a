"""Offset pagination shared by every list endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

from app.core.inputs import BIGINT_MAX


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int
    offset: int


def _page_request(
    limit: Annotated[int, Query(ge=1, le=200, description="Items per page")] = 50,
    # OFFSET takes a bigint: past it PostgreSQL refused the query (a 500, not a 422).
    offset: Annotated[int, Query(ge=0, le=BIGINT_MAX, description="Items to skip")] = 0,
) -> PageRequest:
    return PageRequest(limit=limit, offset=offset)


Pagination = Annotated[PageRequest, Depends(_page_request)]


ItemT = TypeVar("ItemT")


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    total: int
    limit: int
    offset: int
