"""DEMO agents: they pretend to work. Nothing is sent, written, booked or researched.

A `DemoAgent` sleeps a random while (waking early if cancelled), reports progress halfway,
fails now and then if asked to, and otherwise returns a small made-up result shaped like what
a real agent of its type would produce. Every result carries `"demo": True` so that nobody
mistakes it for real work. With a `seed`, each attempt's draws depend only on the seed and
the attempt's idempotency key, so a run is reproducible whatever the thread timing.

It is built as every handler is, `DemoAgent(agent_type, options)`, with the options
`duration = [min, max]` (seconds), `failure_rate` (0 to 1) and `seed`; an agent type of the
configuration's own gets a generic made-up result.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from stratexec.actors.agents.base import AgentError, TaskContext
from stratexec.actors.agents.options import Options
from stratexec.actors.messages import AgentTask
from stratexec.domain.strategy import AGENT_TYPES

__all__ = ["AGENT_TYPES", "DemoAgent", "demo_agents"]

Result = dict[str, Any]


def _email(task: AgentTask, rng: random.Random) -> Result:
    return {"demo": True, "emailsQueued": rng.randint(25, 400), "subject": f"Update: {task.title}"}


def _content(task: AgentTask, rng: random.Random) -> Result:
    return {"demo": True, "draftTitle": f"Draft: {task.title}", "wordCount": rng.randint(450, 1800)}


def _research(task: AgentTask, rng: random.Random) -> Result:
    findings = [
        f"Three competitors already address '{task.title}'",
        "Customers mention price before features",
        "Interest peaks in the first quarter",
        "Most sources recommend a pilot before a full rollout",
    ]
    return {
        "demo": True,
        "sourcesReviewed": rng.randint(5, 30),
        "keyFindings": rng.sample(findings, rng.randint(2, 3)),
    }


def _scheduling(task: AgentTask, rng: random.Random) -> Result:
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    slot = day + timedelta(days=rng.randint(1, 10), hours=rng.randint(9, 16))
    return {
        "demo": True,
        "meeting": task.title,
        "proposedSlot": slot.isoformat(),
        "attendees": rng.randint(2, 12),
    }


def _analysis(task: AgentTask, rng: random.Random) -> Result:
    rate = round(rng.uniform(0.5, 8.0), 2)
    return {
        "demo": True,
        "metrics": {"reach": rng.randint(1_000, 50_000), "conversionRatePct": rate},
        "insight": f"'{task.title}' converts at {rate}%; the best segment is returning customers",
    }


def _coordination(task: AgentTask, rng: random.Random) -> Result:
    return {
        "demo": True,
        "stakeholdersNotified": rng.randint(2, 15),
        "decision": rng.choice(["approved", "approved with changes", "deferred to next review"]),
        "topic": task.title,
    }


_RESULTS: dict[str, Callable[[AgentTask, random.Random], Result]] = {
    "email": _email,
    "content": _content,
    "research": _research,
    "scheduling": _scheduling,
    "analysis": _analysis,
    "coordination": _coordination,
}

def _other(task: AgentTask, rng: random.Random) -> Result:
    return {"demo": True, "agent": task.agent, "task": task.title,
            "itemsProcessed": rng.randint(1, 50)}


_FAILURES = {
    "email": "SMTP relay timed out (demo)",
    "content": "language model quota exceeded (demo)",
    "research": "search API answered 503 Service Unavailable (demo)",
    "scheduling": "calendar API rate limit reached (demo)",
    "analysis": "metrics warehouse query timed out (demo)",
    "coordination": "chat webhook unreachable (demo)",
}



class DemoAgent:
    """A DEMO handler for one agent type: sleeps, maybe fails, returns a made-up result."""

    def __init__(self, agent_type: str, options: Mapping[str, Any] | None = None) -> None:
        """`OptionError` for an unknown or wrong option."""
        read = Options(options)
        self.agent_type = agent_type
        self.duration = read.number_range("duration", (0.2, 1.0))
        self.failure_rate = read.number("failure_rate", 0.0, maximum=1.0) or 0.0
        self.seed = read.integer("seed", None, minimum=-(2**63))
        read.done()

    def run(self, task: AgentTask, context: TaskContext) -> dict[str, Any]:
        rng = random.Random(
            f"{self.seed}:{task.idempotency_key}" if self.seed is not None else None)
        half = rng.uniform(*self.duration) / 2
        fails = rng.random() < self.failure_rate
        if half > 0:  # an attempt that takes no time has no halfway point to report
            if context.wait_cancelled(half):
                raise AgentError("cancelled", "attempt cancelled", retryable=False)
            context.report_progress(0.5, f"{self.agent_type}: halfway (demo)")
            if context.wait_cancelled(half):
                raise AgentError("cancelled", "attempt cancelled", retryable=False)
        if fails:
            raise AgentError("demo_failure", _FAILURES.get(
                self.agent_type, f"{self.agent_type} agent failed (demo)"), retryable=True)
        return _RESULTS.get(self.agent_type, _other)(task, rng)


def demo_agents(
    duration: tuple[float, float] = (0.2, 1.0),
    failure_rate: float = 0.0,
    seed: int | None = None,
) -> dict[str, DemoAgent]:
    """A DEMO handler for every built-in agent type."""
    options = {"duration": duration, "failure_rate": failure_rate, "seed": seed}
    return {t: DemoAgent(t, {k: v for k, v in options.items() if v is not None})
            for t in AGENT_TYPES}
