"""Reading a handler's `[agents.<type>.options]` table: each option typed and checked once,
at start-up, so that a bad configuration stops the engine instead of failing attempts.

`Options` hands out one option at a time (raising `OptionError(key, problem)`), and `done()`
rejects the keys nobody asked for: a misspelt option is an error, not a silent default.
A secret is never an option's value: the option names the environment variable that holds
it (`secret_env = "HOOK_SECRET"`), read here; problems name the variable, never its value.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from typing import Any

from stratexec.actors.agents.base import OptionError

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Options:
    def __init__(self, options: Mapping[str, Any] | None) -> None:
        if options is None:
            options = {}
        if not isinstance(options, Mapping):
            raise OptionError("options", f"must be a table, got {_kind(options)}")
        self._options = dict(options)
        self._asked: set[str] = set()

    def raw(self, key: str) -> Any:
        """The option as the file has it (None if absent), for a caller that checks it."""
        self._asked.add(key)
        return self._options.get(key)

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            raise OptionError(key, f"must be a non-empty string, got {_kind(value)}")
        return value

    def required_text(self, key: str) -> str:
        value = self.text(key)
        if value is None:
            raise OptionError(key, "is required")
        return value

    def number(self, key: str, default: float | None, minimum: float = 0.0,
               maximum: float = math.inf, positive: bool = False) -> float | None:
        """A finite number within [minimum, maximum] (above minimum when `positive`)."""
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
                value):
            raise OptionError(key, f"must be a number, got {_kind(value)}")
        if value < minimum or (positive and value <= minimum) or value > maximum:
            low = f"above {minimum:g}" if positive else f"at least {minimum:g}"
            high = "" if maximum == math.inf else f" and at most {maximum:g}"
            raise OptionError(key, f"must be {low}{high}, got {value:g}")
        return float(value)

    def seconds(self, key: str, default: float) -> float:
        value = self.number(key, default, positive=True)
        assert value is not None
        return value

    def integer(self, key: str, default: int | None, minimum: int = 0,
                maximum: int | None = None) -> int | None:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise OptionError(key, f"must be an integer, got {_kind(value)}")
        if value < minimum or (maximum is not None and value > maximum):
            high = "" if maximum is None else f" and at most {maximum}"
            raise OptionError(key, f"must be at least {minimum}{high}, got {value}")
        return value

    def number_range(self, key: str, default: tuple[float, float]) -> tuple[float, float]:
        """`[min, max]`, two numbers with 0 <= min <= max."""
        value = self.raw(key)
        if value is None:
            return default
        if (not isinstance(value, list | tuple) or len(value) != 2 or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in value)):
            raise OptionError(key, f"must be [min, max], two numbers, got {_kind(value)}")
        low, high = float(value[0]), float(value[1])
        if not 0 <= low <= high:
            raise OptionError(key, f"need 0 <= min <= max, got [{low:g}, {high:g}]")
        return low, high

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise OptionError(key, f"must be true or false, got {_kind(value)}")
        return value

    def environment(self, key: str) -> str | None:
        """The value of the environment variable that option `key` names (None when the
        option is absent). A missing or empty variable is an error now, not at the first
        attempt."""
        name = self.text(key)
        if name is None:
            return None
        if not _ENV_NAME.fullmatch(name):
            raise OptionError(key, "must name an environment variable (letters, digits and _)")
        value = os.environ.get(name)
        if not value:
            raise OptionError(key, f"the environment variable {name} is not set")
        return value

    def done(self) -> None:
        """Every option given was read: an unknown one is a mistake in the file."""
        unknown = sorted(set(self._options) - self._asked)
        if unknown:
            known = ", ".join(sorted(self._asked))
            raise OptionError(unknown[0], f"unknown option; known: {known}")


def _kind(value: Any) -> str:
    """What a TOML value is, for a problem's text (never the value: it might be a secret)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value:g}"
    if isinstance(value, str):
        return "an empty string" if not value.strip() else "a string"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__
