"""Every value a client can send, found by walking the app's routes and the desk's messages.

Each scalar a request can carry (a body's field, however deep; a query, path or header
parameter; a desk message's field) becomes an `Input`: where it is, its type, and the
constraints pydantic applies to it, flattened in the order pydantic applies them (an inner
`Annotated`'s before the outer ones: pydantic builds the inner type first).
"""

from __future__ import annotations

import collections.abc
import datetime
import decimal
import enum
import types
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts
from pydantic import AwareDatetime, BaseModel
from pydantic.fields import FieldInfo

# Scalars no client value can make PostgreSQL refuse: pydantic parses them into a fixed form.
HARMLESS = (
    bool,
    float,
    decimal.Decimal,
    uuid.UUID,
    datetime.datetime,
    AwareDatetime,
    datetime.date,
    datetime.time,
    datetime.timedelta,
)


@dataclass(frozen=True)
class Input:
    where: str
    type: Any
    constraints: tuple[Any, ...]

    def bounds(self) -> tuple[int | None, int | None]:
        """An integer's lowest and highest accepted values (None: unbounded)."""
        low: int | None = None
        high: int | None = None
        for item in self.constraints:
            if isinstance(item, annotated_types.Ge):
                low = int(item.ge)  # type: ignore[call-overload]
            elif isinstance(item, annotated_types.Gt):
                low = int(item.gt) + 1  # type: ignore[call-overload]
            elif isinstance(item, annotated_types.Le):
                high = int(item.le)  # type: ignore[call-overload]
            elif isinstance(item, annotated_types.Lt):
                high = int(item.lt) - 1  # type: ignore[call-overload]
        return low, high

    def max_length(self) -> int | None:
        lengths = [c.max_length for c in self.constraints if isinstance(c, annotated_types.MaxLen)]
        return min(lengths) if lengths else None


def flattened(metadata: Iterable[Any]) -> tuple[Any, ...]:
    """Metadata as pydantic applies it: grouped items (StringConstraints, Field) opened up."""
    items: list[Any] = []
    for item in metadata:
        if isinstance(item, FieldInfo):
            items.extend(flattened(item.metadata))
        elif isinstance(item, annotated_types.GroupedMetadata):
            items.extend(flattened(item))
        else:
            items.append(item)
    return tuple(items)


def inputs_of(annotation: Any, where: str, outer: tuple[Any, ...] = ()) -> Iterator[Input]:
    """The scalars a value of `annotation` holds; `outer` is metadata attached from outside."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *inner = get_args(annotation)
        yield from inputs_of(base, where, (*flattened(inner), *outer))
    elif origin in (Union, types.UnionType):
        for member in get_args(annotation):
            if member is not type(None):
                yield from inputs_of(member, where, outer)
    elif origin in (list, set, frozenset, tuple):
        for item in get_args(annotation):  # the outer limits are the collection's own
            yield from inputs_of(item, f"{where}[]")
    elif origin in (dict, collections.abc.Mapping):
        key, value = get_args(annotation)
        yield from inputs_of(key, f"{where}{{key}}")
        yield from inputs_of(value, f"{where}{{}}")
    elif origin is Literal or _is(annotation, enum.Enum) or _is(annotation, HARMLESS):
        return  # fixed values, or a form pydantic parses: nothing of the client's reaches SQL
    elif _is(annotation, BaseModel):
        yield from fields_of(annotation, where)
    else:  # str, int, and anything this walker does not know (which the tests then refuse)
        yield Input(where, annotation, outer)


def fields_of(model: type[BaseModel], where: str) -> Iterator[Input]:
    for name, info in model.model_fields.items():
        yield from inputs_of(info.annotation, f"{where}.{name}", flattened(info.metadata))


def _is(annotation: Any, kinds: type | tuple[type, ...]) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, kinds)


def route_inputs(app: FastAPI) -> Iterator[Input]:
    """Every parameter and body field of every HTTP and websocket route."""
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute | APIWebSocketRoute):
            continue  # the docs pages and /openapi.json: FastAPI's own, taking nothing
        methods = ",".join(sorted(context.methods or {"WEBSOCKET"}))
        for kind, parameter in _parameters(route.dependant):
            info = parameter.field_info
            where = f"{methods} {context.path} {kind}.{parameter.name}"
            yield from inputs_of(info.annotation, where, flattened(info.metadata))


def body_models(app: FastAPI) -> set[str]:
    """The names of the models FastAPI reads in request bodies, at any depth."""
    names: set[str] = set()
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            for kind, parameter in _parameters(route.dependant):
                if kind == "body":
                    names |= models_in(parameter.field_info.annotation)
    return names


def models_in(annotation: Any) -> set[str]:
    if _is(annotation, BaseModel):
        inner = (models_in(info.annotation) for info in annotation.model_fields.values())
        return {annotation.__name__}.union(*inner)
    return set().union(*(models_in(argument) for argument in get_args(annotation)))


def _parameters(dependant: Dependant) -> Iterator[tuple[str, Any]]:
    for kind in ("path", "query", "header", "cookie", "body"):
        for parameter in getattr(dependant, f"{kind}_params"):
            yield kind, parameter
    for dependency in dependant.dependencies:
        yield from _parameters(dependency)


def references(node: object) -> list[str]:
    """Every `$ref` inside a part of an OpenAPI document."""
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [ref for value in node.values() for ref in references(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in references(value)]
    return []
