"""What a handler may return: a JSON object of at most `MAX_RESULT_BYTES`.

A result is recorded in the `TaskSucceeded` event, copied into the read models, sent on the
live streams and handed to the dependent tasks, so it must be JSON, and small. `checked`
turns a handler's return value into the result recorded: its JSON text decoded again, so
that the event, the views and the dependents all hold the same object (tuples become lists,
keys become strings). Anything else is a failed attempt that another try would not mend:
`result_invalid` (not an object, not JSON: NaN, a set, an integer msgpack cannot store) or
`result_too_large`.
"""

from __future__ import annotations

import json
from typing import Any

from stratexec.actors.agents.base import AgentError

MAX_RESULT_BYTES = 256 * 1024  # of compact UTF-8 JSON
RESULT_INVALID, RESULT_TOO_LARGE = "result_invalid", "result_too_large"
_INT_RANGE = range(-(2**63), 2**64)  # what msgpack stores

_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def checked(result: Any) -> dict[str, Any]:
    """The result to record, or `AgentError` (not retryable) saying what is wrong."""
    if not isinstance(result, dict):
        raise AgentError(RESULT_INVALID,
                         f"a result must be a JSON object, got {type(result).__name__}",
                         retryable=False)
    try:
        encoded = _encoder.encode(result).encode()
    except (TypeError, ValueError) as error:
        raise AgentError(RESULT_INVALID, f"the result is not JSON: {error}",
                         retryable=False) from None
    if len(encoded) > MAX_RESULT_BYTES:
        raise AgentError(RESULT_TOO_LARGE,
                         f"the result is {len(encoded):,} bytes of JSON, over the limit of "
                         f"{MAX_RESULT_BYTES:,} bytes (MAX_RESULT_BYTES)", retryable=False)
    recorded: dict[str, Any] = json.loads(encoded, parse_int=_stored_int)
    return recorded


def _stored_int(text: str) -> int:
    value = int(text)
    if value not in _INT_RANGE:
        raise AgentError(RESULT_INVALID,
                         f"the result holds an integer of {len(text)} digits, beyond 64 bits",
                         retryable=False)
    return value
