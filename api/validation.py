"""Checks of request bodies and query strings: types and unknown fields, answered 400 with
the path of what was wrong. Rules of the domain (levels, parents, cycles) are the domain's
to check, and answer 422."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from stratexec.api.errors import bad_request
from stratexec.domain.propagation import PRIORITY_RANK
from stratexec.domain.strategy import AGENT_TYPES


@dataclass(frozen=True)
class Field:
    kind: type | tuple[type, ...]
    required: bool = False
    items: type | Mapping[str, Field] | None = None  # a list's element type, or object shape
    choices: tuple[Any, ...] | None = None


NULLABLE_STR = (str, type(None))

STRATEGY_ITEM = {
    "id": Field(str, required=True),
    "level": Field(int, required=True),
    "parentId": Field(NULLABLE_STR),
    "title": Field(str, required=True),
    "description": Field(str),
    "dependsOn": Field(list, items=str),
    "agents": Field(list, items=str, choices=AGENT_TYPES),
    "priority": Field(str, choices=tuple(PRIORITY_RANK)),
}
STRATEGY_DOCUMENT = {
    "name": Field(str, required=True),
    "workspaceId": Field(str),
    "items": Field(list, required=True, items=STRATEGY_ITEM),
}
START_EXECUTION = {
    "strategyId": Field(str, required=True),
    "workspaceId": Field(str, required=True),
}


async def read_json(request: web.Request, shape: Mapping[str, Field]) -> dict[str, Any]:
    """The body as a JSON object of the given shape, or a 400 naming the first problem."""
    text = await request.text()
    try:
        body = json.loads(text)
    except json.JSONDecodeError as error:
        raise bad_request("body", f"malformed JSON: {error.msg} at line {error.lineno}, "
                                  f"column {error.colno}") from None
    check_object(body, shape, "body")
    result: dict[str, Any] = body
    return result


def check_object(value: Any, shape: Mapping[str, Field], path: str) -> None:
    if not isinstance(value, dict):
        raise bad_request(path, f"expected an object, got {_kind(value)}")
    for key in value:
        if key not in shape:
            raise bad_request(f"{path}.{key}", "unknown field")
    for key, field in shape.items():
        if key not in value:
            if field.required:
                raise bad_request(f"{path}.{key}", "required")
            continue
        check_value(value[key], field, f"{path}.{key}")


def check_value(value: Any, field: Field, path: str) -> None:
    if isinstance(value, bool) and bool not in _as_tuple(field.kind):
        raise bad_request(path, f"expected {_names(field.kind)}, got a boolean")
    if not isinstance(value, field.kind):
        raise bad_request(path, f"expected {_names(field.kind)}, got {_kind(value)}")
    if isinstance(value, list) and field.items is not None:
        for index, element in enumerate(value):
            where = f"{path}[{index}]"
            if isinstance(field.items, Mapping):
                check_object(element, field.items, where)
            else:
                check_value(element, Field(field.items, choices=field.choices), where)
    elif field.choices is not None and value not in field.choices:
        raise bad_request(path, f"must be one of {', '.join(map(str, field.choices))}")


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise bad_request(f"query.{name}", f"expected an integer, got {text!r}") from None
    if not low <= value <= high:
        raise bad_request(f"query.{name}", f"must be between {low} and {high}")
    return value


def query_choice(request: web.Request, name: str, choices: tuple[str, ...]) -> str | None:
    value = request.query.get(name)
    if value is not None and value not in choices:
        raise bad_request(f"query.{name}", f"must be one of {', '.join(choices)}")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _names(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", list: "a list", dict: "an object",
             type(None): "null", bool: "a boolean", float: "a number"}
    return " or ".join(names.get(k, k.__name__) for k in _as_tuple(kind))


def _kind(value: Any) -> str:
    return _names(type(value)) if type(value) in (str, int, list, dict, type(None), bool,
                                                   float) else type(value).__name__
