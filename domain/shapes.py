"""The pieces the domain declares its documents with (pydantic), and how it words a problem.

A document can be wrong in two ways. Of the wrong *shape* (a wrong JSON type, a missing or
unknown field, a value outside a fixed list) it is malformed input. Of the right shape but
against a *rule* of the domain (a blank title, a level outside 1..4, a value twice) it is a
broken rule, reported with the error type `RULE` in the domain's own words: `rule(message)`
gives a constrained type those words, and `Unique` and `NonEmpty` check their rule
themselves. That error type is how the HTTP API tells a 400 from a 422. Each constraint is
declared once, where pydantic puts it in the JSON Schema too (`Field(ge=1)` is `minimum`,
`Unique` is `uniqueItems`, ...).

`read(Model, data)` reads a document from outside. `describe(error, show)` words one
pydantic error; `show` renders the input (its repr for a person reading a file, its JSON kind
for an HTTP client).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, ErrorDetails, PydanticCustomError, core_schema

M = TypeVar("M", bound=BaseModel)
RULE = "domain_rule"  # the error type of a broken rule of the domain
NULL = "not_null"
CONSTRAINTS = frozenset({"too_short", "too_long", "string_too_short", "string_too_long",
                         "string_pattern_mismatch", "greater_than", "greater_than_equal",
                         "less_than", "less_than_equal"})
EXPECTED = {
    "string_type": "a string", "int_type": "an integer", "float_type": "a number",
    "bool_type": "a boolean", "list_type": "a list", "tuple_type": "a list",
    "dict_type": "an object", "model_type": "an object", "model_attributes_type": "an object",
    "uuid_type": "a UUID", "uuid_parsing": "a UUID",
}
JSON_KINDS = {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
              list: "a list", dict: "an object", type(None): "null"}


class _Outside:
    """The validation context of a document read from outside (see `read`)."""


OUTSIDE = _Outside()


def read(model: type[M], data: Any) -> M:
    """A document from outside (parsed JSON): by its JSON keys only, never its Python names,
    and null only where the schema allows it."""
    return model.model_validate(data, by_name=False, context=OUTSIDE)


def read_json(model: type[M], data: bytes | str) -> M:
    """`read`, straight from JSON text."""
    return model.model_validate_json(data, by_name=False, context=OUTSIDE)


@dataclass(frozen=True)
class OneOf:
    """A string from a fixed list (`Annotated[str, OneOf(CHOICES)]`): validated as a literal,
    listed as the schema's `enum`, and typed `str` for the code that builds one."""

    choices: tuple[str, ...]

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler
                                     ) -> CoreSchema:
        return core_schema.literal_schema(list(self.choices))


@dataclass(frozen=True)
class Unique:
    """No value twice in a list: checked (a broken rule), and the schema's `uniqueItems`."""

    message: str = "lists the same value twice"

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler
                                     ) -> CoreSchema:
        def check(values: Sequence[Any]) -> Sequence[Any]:
            if len(set(values)) != len(values):
                raise PydanticCustomError(RULE, self.message)
            return values

        return core_schema.no_info_after_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler
                                     ) -> JsonSchemaValue:
        return {**handler(schema), "uniqueItems": True}


@dataclass(frozen=True)
class NonEmpty:
    """At least one value in a list: checked (a broken rule, in `message`), and the schema's
    `minItems`. Unlike `Field(min_length=1)` it says nothing when an element is wrong."""

    message: str

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler
                                     ) -> CoreSchema:
        def check(values: Sequence[Any]) -> Sequence[Any]:
            if not values:
                raise PydanticCustomError(RULE, self.message)
            return values

        return core_schema.no_info_after_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler
                                     ) -> JsonSchemaValue:
        return {**handler(schema), "minItems": 1}


class NotNull:
    """On an optional field (`Annotated[T | None, NO_NULL] = None`) that a document leaves
    out rather than sets to null: null from outside is a problem, and the schema has no null
    (code building a model may still pass None)."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler
                                     ) -> CoreSchema:
        def check(value: Any, info: ValidationInfo) -> Any:
            if value is None and info.context is OUTSIDE:
                raise PydanticCustomError(NULL, "may be left out, but not null")
            return value

        return core_schema.with_info_before_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler
                                     ) -> JsonSchemaValue:
        result = handler(schema)
        kept = [branch for branch in result.get("anyOf", ()) if branch != {"type": "null"}]
        if len(kept) != 1:
            return result
        return {**{k: v for k, v in result.items() if k != "anyOf"}, **kept[0]}


NO_NULL = NotNull()


def _whole_number(value: Any) -> Any:
    """JSON has one kind of number, and JSON Schema's `integer` is any number without a
    fraction: 4.0 is the integer 4, as the document promises. A fraction, a boolean or a
    string stays a wrong type."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


WHOLE_NUMBER = BeforeValidator(_whole_number)  # after Strict() and the bounds, before rule()


def rule(message: str) -> WrapValidator:
    """The wrapped type's broken constraints, reported as one broken rule in the domain's
    words; `{value}` in `message` is the input's repr. A wrong type stays a shape error."""

    def check(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError as error:
            if {e["type"] for e in error.errors()} <= CONSTRAINTS:
                raise PydanticCustomError(RULE, message, {"value": repr(value)}) from None
            raise

    return WrapValidator(check)


def is_rule(error: ErrorDetails) -> bool:
    return error["type"] == RULE


def json_kind(value: Any) -> str:
    return JSON_KINDS.get(type(value), type(value).__name__)


def short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 3]}..."


def describe(error: ErrorDetails, show: Callable[[Any], str] = short_repr) -> str:
    """One problem in words: "required", "unknown field", "expected an integer, got ..."."""
    kind = error["type"]
    got = show(error.get("input"))
    if kind in (RULE, NULL):
        return error["msg"]
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "literal_error":
        choices = re.findall(r"'((?:[^'\\]|\\.)*)'", error.get("ctx", {}).get("expected", ""))
        return f"must be one of {', '.join(choices)}, got {short_repr(error.get('input'))}"
    if kind == "json_invalid":
        return f"malformed JSON: {error.get('ctx', {}).get('error', error['msg'])}"
    if kind in EXPECTED:
        return f"expected {EXPECTED[kind]}, got {got}"
    return f"{error['msg'][:1].lower()}{error['msg'][1:]}, got {got}"
