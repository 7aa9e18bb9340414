"""The errors the domain raises. The server maps each one to one HTTP status in one place."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    code = "domain_error"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidStrategy(DomainError):
    """A strategy document breaks a rule; `problems` lists every broken rule with its path."""

    code = "invalid_strategy"

    def __init__(self, problems: list[StrategyProblem]) -> None:
        self.problems = problems
        summary = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(
            f"invalid strategy: {summary}{more}",
            {"problems": [p.as_dict() for p in problems]},
        )


class DependencyCycle(InvalidStrategy):
    """The items' dependencies loop back on themselves; `cycle` names the items in order."""

    code = "dependency_cycle"

    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__(
            [StrategyProblem(
                f"items ({cycle[0]}).dependsOn",
                "dependency cycle: " + " -> ".join(cycle),
                item_id=cycle[0],
            )]
        )
        self.details["cycle"] = cycle


class StrategyProblem:
    """One broken rule: where (a path such as `items[3].level`), what, and which item."""

    def __init__(self, path: str, message: str, item_id: str | None = None) -> None:
        self.path = path
        self.message = message
        self.item_id = item_id

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

    def __repr__(self) -> str:
        return f"StrategyProblem({self.path!r}, {self.message!r})"

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "message": self.message, "itemId": self.item_id}


class InvalidTransition(DomainError):
    """A command the current state forbids (resume a completed execution, ...)."""

    code = "invalid_transition"


class UnknownTask(DomainError):
    code = "unknown_task"


class NotFound(DomainError):
    """An aggregate that does not exist (or that the caller may not see)."""

    code = "not_found"
