"""Requests in and answers out, through the models that declare them (api/models.py).

`read_json(request, Model)` reads a body: a body of the wrong shape (malformed JSON, a wrong
type, a missing or unknown field, a value outside a fixed list) is answered 400, listing
every problem with its path (`body.items[3].level`). A strategy of the right shape whose
only problems break rules of the domain (levels, blank titles, ...) is the domain's
`InvalidStrategy` (422), as are the rules between its items, which the domain checks after.

`answer(Model, body)` serialises an answer by its model. Query strings are checked by hand
(`query_int`, `query_choice`); their schemas are the OpenAPI document's parameters.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from stratexec.api.errors import ApiError, bad_input, bad_request
from stratexec.domain import shapes
from stratexec.domain.errors import InvalidStrategy
from stratexec.domain.strategy import document_problems

M = TypeVar("M", bound=BaseModel)


JSON_CHARSETS = ("utf-8", "utf8", "us-ascii", "ascii")  # JSON is UTF-8 (RFC 8259)
MAX_PAGE = 1000  # the largest `limit`
MAX_OFFSET = 2**62  # the largest `offset` or `after`: within every store's 64-bit integers


async def read_json(request: web.Request, model: type[M]) -> M:
    """The body, checked by `model`; or a 400 listing every problem (see the module)."""
    charset = request.charset
    if charset is not None and charset.lower() not in JSON_CHARSETS:
        raise bad_request("body", f"JSON is UTF-8; the charset {charset!r} is not accepted")
    body = await request.read()
    try:
        return shapes.read_json(model, body)
    except ValidationError as error:
        raise rejection(body, error) from None


def rejection(body: bytes, error: ValidationError) -> ApiError | InvalidStrategy:
    errors = error.errors(include_url=False)
    malformed = [e for e in errors if not shapes.is_rule(e)]
    if malformed:
        return bad_input([{"path": body_path(e), "message": shapes.describe(e, shapes.json_kind)}
                          for e in malformed])
    # Only rules of the domain are broken, and only a strategy document declares them.
    return InvalidStrategy(document_problems(json.loads(body), error))


def body_path(error: ErrorDetails) -> str:
    """`body`, `body.name`, `body.items[3].level`: where in the body, in one format."""
    return "body" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}"
                            for part in error["loc"])


def answer(model: type[BaseModel], body: Mapping[str, Any], status: int = 200,
           dumps: Callable[[Any], str] | None = None) -> web.Response:
    """`body` as `model` declares it: checked (a key the model does not declare is dropped),
    then serialised by the same declaration (by `dumps` if given, from Python values)."""
    shaped = model.model_validate(body, extra="ignore")
    text = shaped.model_dump_json() if dumps is None else dumps(shaped.model_dump())
    return web.Response(text=text, status=status, content_type="application/json")


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
