"""The configuration file (TOML): which handler runs each agent type and how, and the rules
that turn strategy items into tasks.

    [agents.email]
    handler = "smtp"        # built in (demo, webhook, smtp, llm), "package.module:Class",
                            # or the name of an entry point of group `stratexec.agents`
    concurrency = 2
    timeout = 30
    max_attempts = 5
    [agents.email.options]  # handed to the handler, which checks them when it is built
    host = "127.0.0.1"

Which file: `--config FILE`, else `STRATEXEC_CONFIG`, else `./stratexec.toml` when there is
one; without any, every agent type runs the demo agent. Every key is checked, an unknown one
too: a mistake raises `ConfigError`, one line naming the file, the key and the problem
(`stratexec.toml: agents.email.concurrency: expected an integer, got 'x'`), which the commands
print before exiting 2, having started nothing.

The agent types an engine knows are the six built-in ones and those its rules name; a type
without an `[agents.<type>]` table runs the demo agent, with the command line's `--demo-*`
timing. `load` imports each configured handler class; `Config.handlers` builds them, as
`Handler(agent_type, options)`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from stratexec import keys as read
from stratexec.actors.agents.base import AgentHandler, AgentLimits, OptionError
from stratexec.actors.agents.demo import DemoAgent
from stratexec.circuit_settings import CircuitSettings
from stratexec.domain.propagation import PropagationRule, PropagationRules
from stratexec.domain.retry import RetryPolicy
from stratexec.domain.strategy import AGENT_TYPE_NAME, AGENT_TYPE_RULE, PRIORITIES

DEFAULT_FILE = Path("stratexec.toml")
ENVIRONMENT = "STRATEXEC_CONFIG"
ENTRY_POINT_GROUP = "stratexec.agents"
# Imported only when a configuration names them.
BUILT_IN_HANDLERS = {
    "demo": "stratexec.actors.agents.demo:DemoAgent",
    "webhook": "stratexec.actors.agents.webhook:WebhookAgent",
    "smtp": "stratexec.actors.agents.smtp:SmtpAgent",
    "llm": "stratexec.actors.agents.llm:LlmAgent",
}
AGENTS_ON = ("local", "celery")  # where attempts run: this process's threads, Celery workers
TOP_KEYS = ("agents", "rules", "circuit_breaker", "engine")
AGENT_KEYS = ("handler", "concurrency", "timeout", "heartbeat_timeout", "max_attempts",
              "initial_interval", "backoff", "max_interval", "non_retryable", "options",
              "circuit_breaker")
RULE_KEYS = ("name", "keywords", "agents", "priority")
CIRCUIT_KEYS = ("window", "failure_rate", "cool_down")
IMPORT_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")

HandlerClass = Callable[[str, Mapping[str, Any]], Any]


class ConfigError(Exception):
    """A mistake in the configuration: `FILE: KEY: problem`, on one line."""

    def __init__(self, file: str, key: str | None, problem: str) -> None:
        super().__init__(f"{file}: {problem}" if key is None else f"{file}: {key}: {problem}")
        self.file = file
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class RetryOverrides:
    """An agent type's own retry settings; None keeps the engine's."""

    maximum_attempts: int | None = None
    initial_interval: float | None = None
    backoff_coefficient: float | None = None
    maximum_interval: float | None = None
    non_retryable: frozenset[str] | None = None

    def __bool__(self) -> bool:
        return any(value is not None for value in vars(self).values())

    def apply(self, base: RetryPolicy) -> RetryPolicy:
        """The engine's policy with these changes; `OptionError` naming the key of the file
        when they contradict each other or it."""
        initial = base.initial_interval if self.initial_interval is None else (
            self.initial_interval)
        maximum = self.maximum_interval
        if maximum is None:
            maximum = max(base.maximum_interval, initial)  # as --retry-interval does
        elif maximum < initial:
            raise OptionError("max_interval", f"must be at least the initial interval "
                                              f"({initial:g}), got {maximum:g}")
        return RetryPolicy(
            maximum_attempts=self.maximum_attempts or base.maximum_attempts,
            initial_interval=initial,
            backoff_coefficient=self.backoff_coefficient or base.backoff_coefficient,
            maximum_interval=maximum, jitter=base.jitter,
            non_retryable=base.non_retryable if self.non_retryable is None else (
                self.non_retryable))


@dataclass(frozen=True)
class HandlerSource:
    """Where a handler class came from: built-in, import path, entry point (of which
    distribution), or demo default (the type is not in the file)."""

    kind: str
    distribution: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        if self.kind == "entry point":
            return f"entry point ({self.distribution} {self.version})"
        return self.kind


DEMO_DEFAULT = HandlerSource("demo default")


@dataclass(frozen=True)
class AgentSettings:
    """What the file says about one agent type (or, for a type it leaves out, the demo
    agent with the engine's limits)."""

    agent_type: str
    handler: str  # as written: a built-in name, an import path or an entry point name
    handler_class: HandlerClass
    source: HandlerSource
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    concurrency: int | None = None  # None: the engine's --concurrency
    timeout: float | None = None
    heartbeat_timeout: float | None = None
    retry: RetryOverrides = field(default_factory=RetryOverrides)
    circuit: CircuitSettings = field(default_factory=CircuitSettings)

    @property
    def is_demo(self) -> bool:
        return self.handler_class is DemoAgent

    def limits(self, default_concurrency: int) -> AgentLimits:
        return AgentLimits(self.concurrency or default_concurrency, self.timeout,
                           self.heartbeat_timeout)


@dataclass(frozen=True)
class Config:
    """A checked configuration. `file` is the file as named (None: there was none)."""

    file: str | None = None
    agents: Mapping[str, AgentSettings] = field(default_factory=lambda: MappingProxyType({}))
    rules: PropagationRules | None = None  # None: the built-in table
    circuit_breaker: CircuitSettings = field(default_factory=CircuitSettings)
    agents_on: str = "local"

    @property
    def agent_types(self) -> tuple[str, ...]:
        """Every agent type the engine knows: the built-in ones, then those of the rules."""
        return (self.rules or PropagationRules()).agent_types

    def agent(self, agent_type: str) -> AgentSettings:
        configured = self.agents.get(agent_type)
        if configured is not None:
            return configured
        return AgentSettings(agent_type, "demo", DemoAgent, DEMO_DEFAULT,
                             circuit=self.circuit_breaker)

    def circuit(self, agent_type: str) -> CircuitSettings:
        """The type's circuit breaker settings (`[agents.<type>.circuit_breaker]` over the
        top-level `[circuit_breaker]`, over the defaults)."""
        return self.agent(agent_type).circuit

    def limits(self, default_concurrency: int) -> dict[str, AgentLimits]:
        return {t: self.agent(t).limits(default_concurrency) for t in self.agent_types}

    def retry_policies(self, base: RetryPolicy) -> dict[str, RetryPolicy]:
        """The policy of each type that overrides the engine's `base`; `ConfigError`."""
        policies = {}
        for agent_type, settings in self.agents.items():
            if settings.retry:
                with _keys(self.name, f"agents.{agent_type}."):
                    policies[agent_type] = settings.retry.apply(base)
        return policies

    def handlers(self, demo_options: Mapping[str, Any]) -> dict[str, AgentHandler]:
        """A handler for every known type, built as `Handler(agent_type, options)`; the demo
        agent's options default to `demo_options` (the command line's). `ConfigError`."""
        return {t: self._build(self.agent(t), demo_options) for t in self.agent_types}

    def listing(self, default_concurrency: int, retry: RetryPolicy) -> list[dict[str, Any]]:
        """Every known type, its handler, where that came from, and the limits it runs
        with (the engine's `default_concurrency` and `retry` where the file says nothing),
        as `stratexec agents` shows them; `ConfigError`."""
        policies = self.retry_policies(retry)
        rows = []
        for agent_type in self.agent_types:
            settings = self.agent(agent_type)
            limits = settings.limits(default_concurrency)
            rows.append({
                "type": agent_type, "handler": settings.handler,
                "source": settings.source.kind,
                "distribution": settings.source.distribution,
                "version": settings.source.version,
                "concurrency": limits.concurrency, "timeout": limits.timeout,
                "heartbeatTimeout": limits.heartbeat_timeout,
                "maxAttempts": policies.get(agent_type, retry).maximum_attempts,
            })
        return rows

    def describe_agents(self) -> str:
        """"(demo agents)", or "(agents: email=smtp; demo: content, research)"."""
        agents = [self.agent(t) for t in self.agent_types]
        real = [f"{a.agent_type}={a.handler}" for a in agents if not a.is_demo]
        demo = [a.agent_type for a in agents if a.is_demo]
        if not real:
            return "(demo agents)"
        return f"(agents: {', '.join(real)}" + (f"; demo: {', '.join(demo)})" if demo else ")")

    @property
    def name(self) -> str:
        return self.file or "(no config file)"

    def _build(self, settings: AgentSettings, demo_options: Mapping[str, Any]) -> AgentHandler:
        agent_type, key = settings.agent_type, f"agents.{settings.agent_type}"
        options = dict(settings.options)
        if settings.is_demo:
            options = {**demo_options, **options}
        try:
            handler = settings.handler_class(agent_type, options)
        except OptionError as error:
            raise ConfigError(self.name, f"{key}.options.{error.key}", error.problem) from None
        except Exception as error:
            raise ConfigError(self.name, f"{key}.handler", f"{settings.handler} could not be "
                              f"built: {type(error).__name__}: {error}") from None
        if getattr(handler, "agent_type", None) != agent_type or not callable(
                getattr(handler, "run", None)):
            raise ConfigError(self.name, f"{key}.handler", f"{settings.handler} is not an agent "
                              f"handler: it needs agent_type == {agent_type!r} and a "
                              "run(task, context) method")
        return cast(AgentHandler, handler)


# ------------------------------------------------------------------- the file

def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE",
                        help=f"the agents' handlers, limits and rules (default {ENVIRONMENT}, "
                             f"or ./{DEFAULT_FILE} when present)")


def load_config(args: argparse.Namespace) -> Config:
    """The configuration `add_config_argument`'s flag names, or the environment's, or
    ./stratexec.toml's, or none; `ConfigError`."""
    path = config_path(getattr(args, "config", None))
    return Config() if path is None else load(path)


def config_path(flag: str | None) -> Path | None:
    """`--config`, then `STRATEXEC_CONFIG`, then ./stratexec.toml when there is one."""
    named = flag or os.environ.get(ENVIRONMENT)
    if named:
        return Path(named)
    return DEFAULT_FILE if DEFAULT_FILE.is_file() else None


def load(path: Path) -> Config:
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise ConfigError(file, None, f"cannot read: {reason}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(file, None, f"not valid TOML: {error}") from None
    return parse(document, file)


def parse(document: Mapping[str, Any], file: str) -> Config:
    """The configuration in a parsed TOML document; `ConfigError`."""
    with _keys(file):
        read.check_known(document, TOP_KEYS)
        engine = read.table(document, "engine")
        circuit = read.table(document, "circuit_breaker")
        agents = read.table(document, "agents")
    with _keys(file, "engine."):
        read.check_known(engine, ("agents_on",))
        agents_on = read.string(engine, "agents_on", "local", choices=AGENTS_ON)
    default_circuit = _circuit(file, "circuit_breaker.", circuit, CircuitSettings())
    rules = _rules(file, document["rules"]) if "rules" in document else None
    known = (rules or PropagationRules()).agent_types
    settings = {}
    for agent_type, values in agents.items():
        key = f"agents.{agent_type}"
        if not AGENT_TYPE_NAME.fullmatch(agent_type):
            raise ConfigError(file, key, f"{agent_type!r} {AGENT_TYPE_RULE}")
        if agent_type not in known:
            raise ConfigError(file, key, f"unknown agent type {agent_type!r}: no rule makes "
                              f"its tasks (known: {', '.join(known)})")
        if not isinstance(values, Mapping):
            raise ConfigError(file, key, f"expected a table, got {values!r}")
        settings[agent_type] = _agent(file, agent_type, values, default_circuit)
    return Config(file, MappingProxyType(settings), rules, default_circuit, agents_on)


def _agent(file: str, agent_type: str, values: Mapping[str, Any],
           default_circuit: CircuitSettings) -> AgentSettings:
    prefix = f"agents.{agent_type}."
    with _keys(file, prefix):
        read.check_known(values, AGENT_KEYS)
        handler = read.string(values, "handler", "demo")
        concurrency = read.optional_integer(values, "concurrency", minimum=1)
        timeout = read.optional_number(values, "timeout", above=0)
        heartbeat_timeout = read.optional_number(values, "heartbeat_timeout", above=0)
        non_retryable = read.strings(values, "non_retryable", ()) if (
            "non_retryable" in values) else None
        retry = RetryOverrides(
            maximum_attempts=read.optional_integer(values, "max_attempts", minimum=1),
            initial_interval=read.optional_number(values, "initial_interval", minimum=0),
            backoff_coefficient=read.optional_number(values, "backoff", minimum=1),
            maximum_interval=read.optional_number(values, "max_interval", minimum=0),
            non_retryable=None if non_retryable is None else frozenset(non_retryable))
        retry.apply(RetryPolicy())  # contradictions within the table
        options = read.table(values, "options")
        circuit = read.table(values, "circuit_breaker")
    try:
        handler_class, source = resolve_handler(handler)
    except _Unresolved as error:
        raise ConfigError(file, f"{prefix}handler", str(error)) from None
    return AgentSettings(
        agent_type, handler, handler_class, source, MappingProxyType(dict(options)),
        concurrency, timeout, heartbeat_timeout, retry,
        _circuit(file, f"{prefix}circuit_breaker.", circuit, default_circuit))


def _circuit(file: str, prefix: str, values: Mapping[str, Any], default: CircuitSettings
             ) -> CircuitSettings:
    with _keys(file, prefix):
        read.check_known(values, CIRCUIT_KEYS)
        return CircuitSettings(
            window=read.integer(values, "window", default.window, minimum=1),
            failure_rate=read.number(values, "failure_rate", default.failure_rate,
                                     above=0, maximum=1),
            cool_down=read.number(values, "cool_down", default.cool_down, minimum=0))


def _rules(file: str, value: Any) -> PropagationRules:
    """`[[rules]]`, in order: they replace the built-in table (the default rule stays)."""
    if not isinstance(value, list) or not all(isinstance(rule, dict) for rule in value):
        raise ConfigError(file, "rules", f"expected an array of tables ([[rules]]), "
                                         f"got {value!r}")
    rules: list[PropagationRule] = []
    for index, values in enumerate(value):
        with _keys(file, f"rules[{index}]."):
            read.check_known(values, RULE_KEYS)
            name = read.string(values, "name", f"rule-{index + 1}")
            keywords = read.strings(values, "keywords")
            agents = read.strings(values, "agents")
            priority = read.string(values, "priority", "medium", choices=PRIORITIES)
            if not keywords:
                raise OptionError("keywords", "needs at least one keyword")
            if not agents:
                raise OptionError("agents", "needs at least one agent type")
            for agent in agents:
                if not AGENT_TYPE_NAME.fullmatch(agent):
                    raise OptionError("agents", f"{agent!r} {AGENT_TYPE_RULE}")
            if len(set(agents)) != len(agents):
                raise OptionError("agents", "lists the same agent type twice")
            if any(rule.name == name for rule in rules):
                raise OptionError("name", f"another rule is named {name!r}")
        rules.append(PropagationRule(name, keywords, agents, priority))
    return PropagationRules(tuple(rules))


# --------------------------------------------------------------- the handlers

class _Unresolved(Exception):
    pass


def resolve_handler(spec: str) -> tuple[HandlerClass, HandlerSource]:
    """A handler class by its name in the file: built in, then `package.module:Class`,
    then an entry point of group `stratexec.agents`."""
    if spec in BUILT_IN_HANDLERS:
        return _import(BUILT_IN_HANDLERS[spec], f"built-in handler {spec!r}"), HandlerSource(
            "built-in")
    if ":" in spec:
        if not IMPORT_PATH.fullmatch(spec):
            raise _Unresolved(f"expected package.module:Class, got {spec!r}")
        return _import(spec, spec), HandlerSource("import path")
    found = entry_points(group=ENTRY_POINT_GROUP).select(name=spec)
    if not found:
        raise _Unresolved(
            f"unknown handler {spec!r}: not built in ({', '.join(BUILT_IN_HANDLERS)}), not "
            f"package.module:Class, and no entry point of group {ENTRY_POINT_GROUP} has "
            "that name")
    entry = next(iter(found))
    distribution = entry.dist
    name = None if distribution is None else distribution.name
    version = None if distribution is None else distribution.version
    holders = sorted({e.dist.name for e in found if e.dist is not None})
    if len(holders) > 1:
        raise _Unresolved(f"entry point {spec!r} is registered by {', '.join(holders)}: "
                          "name its package.module:Class instead")
    try:
        loaded = entry.load()
    except Exception as error:
        raise _Unresolved(f"entry point {spec!r} of {name} cannot be loaded "
                          f"({entry.value}): {type(error).__name__}: {error}") from None
    if not callable(loaded):
        raise _Unresolved(f"entry point {spec!r} of {name} ({entry.value}) is not a class")
    return loaded, HandlerSource("entry point", name, version)


def _import(path: str, what: str) -> HandlerClass:
    module_name, _, attribute = path.partition(":")
    try:
        loaded: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise _Unresolved(f"{what} cannot be loaded: {error}") from None
    except Exception as error:
        raise _Unresolved(f"{what} cannot be loaded: importing {module_name} raised "
                          f"{type(error).__name__}: {error}") from None
    for part in attribute.split("."):
        try:
            loaded = getattr(loaded, part)
        except AttributeError:
            raise _Unresolved(f"{what} cannot be loaded: module {module_name!r} has no "
                              f"{attribute!r}") from None
    if not callable(loaded):
        raise _Unresolved(f"{what} is not a class")
    return cast(HandlerClass, loaded)


@contextmanager
def _keys(file: str, prefix: str = "") -> Iterator[None]:
    """An `OptionError` of a reader, as a `ConfigError` at `prefix` + its key."""
    try:
        yield
    except OptionError as error:
        raise ConfigError(file, f"{prefix}{error.key}", error.problem) from None
