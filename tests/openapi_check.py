"""Checks of answers against the OpenAPI document, for the API tests.

`validate_response(document, "GET", "/api/executions/{executionId}/status", 200, body)`
raises AssertionError, naming every mismatch, if the status is not documented for that
operation or the body does not match its documented schema. A concrete path works too: it
is mapped to its template. Schemas are checked with jsonschema (Draft 2020-12, formats
included); `#/components/...` references resolve against the document itself.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOCUMENT_URI = "urn:stratexec:openapi"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
JSON = "application/json"


def operation_for(document: dict[str, Any], method: str, path: str
                  ) -> tuple[str, dict[str, Any]]:
    """The template a concrete path (query string ignored) matches, and its operation."""
    template = path_template(document, path)
    operation = document["paths"][template].get(method.lower())
    if operation is None:
        documented = sorted(m.upper() for m in document["paths"][template] if m in METHODS)
        raise AssertionError(f"{method.upper()} is not documented on {template} "
                             f"(documented: {', '.join(documented)})")
    return template, operation


def path_template(document: dict[str, Any], path: str) -> str:
    """The documented template of a concrete path; literal segments win over parameters."""
    path = path.split("?", 1)[0]
    if path in document["paths"]:
        return path
    templates: list[str] = list(document["paths"])
    matches = [t for t in templates if _template_pattern(t).fullmatch(path)]
    if not matches:
        raise AssertionError(f"no documented path matches {path}")
    return min(matches, key=lambda template: template.count("{"))


def validate_response(document: dict[str, Any], method: str, path_template: str,
                      status: int, body: Any) -> None:
    """Check `body` (parsed JSON, or text for other media types) against the documented
    response. A method the path does not document may answer 405, and a path matching no
    template 404, both with the Error schema."""
    pointer = _response_pointer(document, method, path_template, status)
    response = _resolve(document, pointer)
    content = response.get("content")
    where = f"{method.upper()} {path_template} {status}"
    if content is None:
        return
    if JSON not in content:
        if not isinstance(body, str):
            raise AssertionError(f"{where}: expected text ({', '.join(content)}), "
                                 f"got {type(body).__name__}")
        return
    schema_pointer = f"{pointer}/content/{_escape(JSON)}/schema"
    _check(document, schema_pointer, body, where)


def validate_stream_event(document: dict[str, Any], event: dict[str, Any]) -> None:
    """Check one SSE `data:` payload (parsed) against StreamEvent."""
    validate_schema(document, "StreamEvent", event)


def validate_ws_message(document: dict[str, Any], message: dict[str, Any]) -> None:
    """Check one message the server sent on the WebSocket against WebSocketMessage."""
    validate_schema(document, "WebSocketMessage", message)


def validate_schema(document: dict[str, Any], name: str, instance: Any) -> None:
    _check(document, f"/components/schemas/{name}", instance, name)


def schema_errors(document: dict[str, Any], name: str, instance: Any) -> list[str]:
    """Every mismatch of `instance` with the named component schema, readably."""
    errors = _errors(document, f"/components/schemas/{name}", instance)
    return [line for error in errors for line in _describe(error)]


def _response_pointer(document: dict[str, Any], method: str, path: str, status: int) -> str:
    try:
        template = path_template(document, path)
    except AssertionError:
        if status == 404:
            return "/components/responses/NotFound"
        raise
    item = document["paths"][template]
    operation = item.get(method.lower())
    if operation is None:
        if status == 405:
            return "/components/responses/MethodNotAllowed"
        operation_for(document, method, template)  # raises, naming what is documented
    responses = operation["responses"]
    key = next((k for k in (str(status), f"{status // 100}XX", "default") if k in responses),
               None)
    if key is None:
        raise AssertionError(f"{method.upper()} {template}: status {status} is not documented "
                             f"(documented: {', '.join(responses)})")
    pointer = f"/paths/{_escape(template)}/{method.lower()}/responses/{key}"
    target = responses[key].get("$ref")
    return pointer if target is None else target.removeprefix("#")


def _check(document: dict[str, Any], pointer: str, instance: Any, where: str) -> None:
    problems = [line for error in _errors(document, pointer, instance)
                for line in _describe(error)]
    if problems:
        listed = "\n".join(f"  - {problem}" for problem in problems)
        excerpt = json.dumps(instance, default=str)[:2000]
        raise AssertionError(f"{where}: the body does not match its documented schema:\n"
                             f"{listed}\n  body: {excerpt}")


def _errors(document: dict[str, Any], pointer: str, instance: Any) -> list[ValidationError]:
    registry: Registry[Any] = Registry().with_resource(
        DOCUMENT_URI, Resource.from_contents(document, default_specification=DRAFT202012))
    validator = Draft202012Validator(
        {"$ref": f"{DOCUMENT_URI}#{pointer}"}, registry=registry,
        format_checker=Draft202012Validator.FORMAT_CHECKER)
    return sorted(validator.iter_errors(instance), key=lambda e: str(list(e.absolute_path)))


def _describe(error: ValidationError) -> list[str]:
    """Where and what; for a oneOf/anyOf, the reasons of the closest alternative."""
    if not error.context:
        return [f"at {_location(error)}: {error.message}"]
    return [f"at {_location(error)}: no {error.validator} alternative matches; the closest "
            f"fails with: {reason}"
            for sub in _closest_alternative(error.context) for reason in _describe(sub)]


def _closest_alternative(context: list[ValidationError]) -> list[ValidationError]:
    """The alternative whose `type` fits and that got deepest into the instance."""
    alternatives: dict[Any, list[ValidationError]] = {}
    for error in context:
        alternatives.setdefault(error.relative_schema_path[0], []).append(error)

    def distance(errors: list[ValidationError]) -> tuple[bool, int, int]:
        wrong_type = any(e.validator in ("const", "enum") and list(e.path) == ["type"]
                         for e in errors)
        return wrong_type, -max(len(e.path) for e in errors), len(errors)

    return min(alternatives.values(), key=distance)


def _location(error: ValidationError) -> str:
    return "$" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}"
                         for part in error.absolute_path)


def _resolve(document: dict[str, Any], pointer: str) -> dict[str, Any]:
    node: Any = document
    for part in pointer.strip("/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    result: dict[str, Any] = node
    return result


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def _template_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("".join("[^/]+" if part.startswith("{") else re.escape(part)
                              for part in parts))
