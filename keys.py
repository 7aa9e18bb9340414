"""Reading the config file's own keys (stratexec.config): each reader checks one key of a
plain mapping of TOML values and returns it typed, or raises `OptionError(key, problem)`
worded for the person who wrote the file ("expected an integer, got 'x'").

A handler's `[agents.<type>.options]` table is read by `actors.agents.options.Options`
instead, whose problems never show a value (an option may hold a secret's name, or worse).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final

from stratexec.actors.agents.base import OptionError


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Final = _Required()


def check_known(options: Mapping[str, Any], known: Collection[str]) -> None:
    """An option nobody reads is a typo: the first one is an error."""
    for key in options:
        if key not in known:
            raise OptionError(key, f"unknown key (known: {', '.join(sorted(known))})"
                              if known else "unknown key")


def integer(options: Mapping[str, Any], key: str, default: int | _Required = REQUIRED,
            minimum: int | None = None) -> int:
    value = _value(options, key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionError(key, f"expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise OptionError(key, f"must be at least {minimum}, got {value!r}")
    return value


def optional_integer(options: Mapping[str, Any], key: str, minimum: int | None = None
                     ) -> int | None:
    return None if key not in options else integer(options, key, minimum=minimum)


def number(options: Mapping[str, Any], key: str, default: float | _Required = REQUIRED,
           minimum: float | None = None, maximum: float | None = None,
           above: float | None = None) -> float:
    """A number (an integer is one too); `above` is an exclusive minimum."""
    value = _value(options, key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OptionError(key, f"expected a number, got {value!r}")
    _check_range(key, value, minimum, maximum, above)
    return float(value)


def optional_number(options: Mapping[str, Any], key: str, minimum: float | None = None,
                    above: float | None = None) -> float | None:
    return None if key not in options else number(options, key, minimum=minimum, above=above)


def string(options: Mapping[str, Any], key: str, default: str | _Required = REQUIRED,
           choices: Sequence[str] = ()) -> str:
    value = _value(options, key, default)
    if not isinstance(value, str):
        raise OptionError(key, f"expected a string, got {value!r}")
    if choices and value not in choices:
        raise OptionError(key, f"must be one of {', '.join(choices)}, got {value!r}")
    if not choices and not value.strip():
        raise OptionError(key, "must not be empty")
    return value


def strings(options: Mapping[str, Any], key: str,
            default: Sequence[str] | _Required = REQUIRED) -> tuple[str, ...]:
    """A list of non-empty strings."""
    value = _value(options, key, default)
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(
            isinstance(item, str) and item.strip() for item in value):
        raise OptionError(key, f"expected a list of non-empty strings, got {value!r}")
    return tuple(value)


def table(options: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """A table (`[x.key]`, or `key = {...}`); empty when absent."""
    value = _value(options, key, {})
    if not isinstance(value, Mapping):
        raise OptionError(key, f"expected a table, got {value!r}")
    return value


def _value(options: Mapping[str, Any], key: str, default: Any) -> Any:
    if key in options:
        return options[key]
    if default is REQUIRED:
        raise OptionError(key, "required")
    return default


def _check_range(key: str, value: float, minimum: float | None, maximum: float | None,
                 above: float | None) -> None:
    if minimum is not None and value < minimum:
        raise OptionError(key, f"must be at least {minimum:g}, got {value!r}")
    if above is not None and value <= above:
        raise OptionError(key, f"must be more than {above:g}, got {value!r}")
    if maximum is not None and value > maximum:
        raise OptionError(key, f"must be at most {maximum:g}, got {value!r}")
