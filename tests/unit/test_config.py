"""The config file: every key checked, one line per mistake, and what a good file gives."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from stratexec.actors.agents.base import AgentLimits, OptionError, TaskContext
from stratexec.actors.agents.demo import DemoAgent
from stratexec.actors.messages import AgentTask
from stratexec.circuit_settings import CircuitSettings
from stratexec.config import (
    DEMO_DEFAULT,
    Config,
    ConfigError,
    HandlerSource,
    config_path,
    load,
)
from stratexec.domain.propagation import DEFAULT_RULE, PropagationRule
from stratexec.domain.retry import RetryPolicy
from stratexec.domain.strategy import AGENT_TYPES
from stratexec.settings import StoreSettings

HANDLERS = '''
from stratexec.actors.agents.base import OptionError

VERSION = "1"


class Greeter:
    def __init__(self, agent_type, options):
        self.agent_type = agent_type
        self.greeting = options.get("greeting")
        if not isinstance(self.greeting, str):
            raise OptionError("greeting", f"expected a string, got {self.greeting!r}")

    def run(self, task, context):
        return {"greeting": self.greeting}


class Nameless:
    def __init__(self, agent_type, options):
        pass


def broken(agent_type, options):
    raise RuntimeError("no licence")
'''


@pytest.fixture
def write(tmp_path: Path) -> Iterator[Any]:
    """Write a config file (and a module of handlers beside it, importable)."""
    (tmp_path / "cfg_handlers.py").write_text(HANDLERS)
    sys.path.insert(0, str(tmp_path))

    def config(text: str) -> Path:
        path = tmp_path / "stratexec.toml"
        path.write_text(textwrap.dedent(text))
        return path

    yield config
    sys.path.remove(str(tmp_path))
    sys.modules.pop("cfg_handlers", None)


def problem(path: Path) -> str:
    """The one line of the mistake, without the file."""
    with pytest.raises(ConfigError) as raised:
        load(path).handlers({})
    message = str(raised.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    return message.removeprefix(f"{path}: ")


@pytest.mark.parametrize(("text", "expected"), [
    ("agent = 1", "agent: unknown key (known: agents, circuit_breaker, engine, rules)"),
    ("[agents.email]\nconcurency = 2",
     "agents.email.concurency: unknown key (known: backoff, circuit_breaker, concurrency, "
     "handler, heartbeat_timeout, initial_interval, max_attempts, max_interval, "
     "non_retryable, options, timeout)"),
    ("[agents.email]\nconcurrency = 'x'",
     "agents.email.concurrency: expected an integer, got 'x'"),
    ("[agents.email]\nconcurrency = 0", "agents.email.concurrency: must be at least 1, got 0"),
    ("[agents.email]\ntimeout = true", "agents.email.timeout: expected a number, got True"),
    ("[agents.email]\ntimeout = 0", "agents.email.timeout: must be more than 0, got 0"),
    ("[agents.email]\nheartbeat_timeout = -1",
     "agents.email.heartbeat_timeout: must be more than 0, got -1"),
    ("[agents.email]\nmax_attempts = 1.5",
     "agents.email.max_attempts: expected an integer, got 1.5"),
    ("[agents.email]\nbackoff = 0.5", "agents.email.backoff: must be at least 1, got 0.5"),
    ("[agents.email]\ninitial_interval = 10\nmax_interval = 5",
     "agents.email.max_interval: must be at least the initial interval (10), got 5"),
    ("[agents.email]\nnon_retryable = 'auth'",
     "agents.email.non_retryable: expected a list of non-empty strings, got 'auth'"),
    ("[agents.email]\noptions = 3", "agents.email.options: expected a table, got 3"),
    ("agents = 3", "agents: expected a table, got 3"),
    ("[agents]\nemail = 3", "agents.email: expected a table, got 3"),
    ("[agents.plumbing]\nhandler = 'demo'",
     "agents.plumbing: unknown agent type 'plumbing': no rule makes its tasks (known: email, "
     "content, research, scheduling, analysis, coordination)"),
    ("[agents.Email]", "agents.Email: 'Email' is not an agent type name (a lower-case letter, "
                       "then lower-case letters, digits, - or _; 40 at most)"),
    ("[agents.email]\nhandler = 'carrier-pigeon'",
     "agents.email.handler: unknown handler 'carrier-pigeon': not built in (demo, webhook, "
     "smtp, llm), not package.module:Class, and no entry point of group stratexec.agents has "
     "that name"),
    ("[agents.email]\nhandler = 'no_such_module:Agent'",
     "agents.email.handler: no_such_module:Agent cannot be loaded: No module named "
     "'no_such_module'"),
    ("[agents.email]\nhandler = 'cfg_handlers:Missing'",
     "agents.email.handler: cfg_handlers:Missing cannot be loaded: module 'cfg_handlers' has "
     "no 'Missing'"),
    ("[agents.email]\nhandler = 'cfg_handlers:'",
     "agents.email.handler: expected package.module:Class, got 'cfg_handlers:'"),
    ("[agents.email]\nhandler = 'cfg_handlers:VERSION'",
     "agents.email.handler: cfg_handlers:VERSION is not a class"),
    ("[agents.email]\nhandler = 'cfg_handlers:Greeter'",
     "agents.email.options.greeting: expected a string, got None"),
    ("[agents.email]\nhandler = 'cfg_handlers:Greeter'\noptions = {greeting = 7}",
     "agents.email.options.greeting: expected a string, got 7"),
    ("[agents.email]\nhandler = 'cfg_handlers:Nameless'",
     "agents.email.handler: cfg_handlers:Nameless is not an agent handler: it needs "
     "agent_type == 'email' and a run(task, context) method"),
    ("[agents.email]\nhandler = 'cfg_handlers:broken'",
     "agents.email.handler: cfg_handlers:broken could not be built: RuntimeError: no licence"),
    ("[agents.email.options]\nduration = [2, 1]",
     "agents.email.options.duration: need 0 <= min <= max, got [2, 1]"),
    ("[agents.email.circuit_breaker]\nwindow = 0",
     "agents.email.circuit_breaker.window: must be at least 1, got 0"),
    ("[circuit_breaker]\nfailure_rate = 0",
     "circuit_breaker.failure_rate: must be more than 0, got 0"),
    ("[circuit_breaker]\nopen_for = 3",
     "circuit_breaker.open_for: unknown key (known: cool_down, failure_rate, window)"),
    ("[engine]\nagents_on = 'dask'",
     "engine.agents_on: must be one of local, celery, got 'dask'"),
    ("rules = {keywords = ['x']}",
     "rules: expected an array of tables ([[rules]]), got {'keywords': ['x']}"),
    ("[[rules]]\nagents = ['email']", "rules[0].keywords: required"),
    ("[[rules]]\nkeywords = []\nagents = ['email']",
     "rules[0].keywords: needs at least one keyword"),
    ("[[rules]]\nkeywords = ['x']\nagents = ['email']\npriority = 'urgent'",
     "rules[0].priority: must be one of high, medium, low, got 'urgent'"),
    ("[[rules]]\nkeywords = ['x']\nagents = ['email', 'email']",
     "rules[0].agents: lists the same agent type twice"),
    ("[[rules]]\nkeywords = ['x']\nagents = ['Legal Team']",
     "rules[0].agents: 'Legal Team' is not an agent type name (a lower-case letter, then "
     "lower-case letters, digits, - or _; 40 at most)"),
    ("[[rules]]\nkeywords = ['x']\nagents = ['email']\nweight = 2",
     "rules[0].weight: unknown key (known: agents, keywords, name, priority)"),
    ("[[rules]]\nname = 'a'\nkeywords = ['x']\nagents = ['email']\n"
     "[[rules]]\nname = 'a'\nkeywords = ['y']\nagents = ['email']",
     "rules[1].name: another rule is named 'a'"),
    ("[agents.email\nhandler = 'demo'",
     "not valid TOML: Expected ']' at the end of a table declaration (at line 1, column 14)"),
])
def test_every_mistake_is_one_line_naming_the_key(write: Any, text: str, expected: str
                                                  ) -> None:
    assert problem(write(text)) == expected


def test_a_file_that_cannot_be_read_is_a_mistake(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError) as raised:
        load(missing)
    assert str(raised.value) == f"{missing}: cannot read: No such file or directory"


def test_a_built_in_handler_that_is_not_installed_says_so(write: Any, monkeypatch: Any
                                                          ) -> None:
    monkeypatch.setitem(sys.modules, "stratexec.actors.agents.smtp", None)  # not importable
    message = problem(write("[agents.email]\nhandler = 'smtp'"))
    assert message.startswith("agents.email.handler: built-in handler 'smtp' cannot be loaded")


def test_a_configured_type_gets_its_handler_limits_and_circuit(write: Any) -> None:
    config = load(write("""
        [circuit_breaker]
        window = 20
        [agents.email]
        handler = "cfg_handlers:Greeter"
        concurrency = 2
        timeout = 30
        heartbeat_timeout = 5.5
        [agents.email.options]
        greeting = "hello"
        [agents.email.circuit_breaker]
        cool_down = 5
    """))

    handlers = config.handlers({})
    assert handlers["email"].run(task(), TaskContext(lambda f, m: None)) == {
        "greeting": "hello"}
    assert [type(handlers[t]) for t in AGENT_TYPES[1:]] == [DemoAgent] * 5
    email = config.agent("email")
    assert (email.handler, email.source) == ("cfg_handlers:Greeter", HandlerSource("import path"))
    assert config.limits(4)["email"] == AgentLimits(2, 30.0, 5.5)
    assert config.limits(4)["content"] == AgentLimits(4, None, None)
    assert config.circuit("email") == CircuitSettings(window=20, failure_rate=0.5, cool_down=5)
    assert config.circuit("content") == CircuitSettings(window=20)
    assert config.agent("content").source is DEMO_DEFAULT
    assert config.agents_on == "local"


def test_a_demo_type_takes_the_command_lines_options_under_its_own(write: Any) -> None:
    config = load(write("[agents.email.options]\nfailure_rate = 1"))
    handlers = config.handlers({"duration": (0.0, 0.0), "failure_rate": 0.0, "seed": 3})
    email, content = handlers["email"], handlers["content"]
    assert isinstance(email, DemoAgent)
    assert isinstance(content, DemoAgent)
    assert (email.duration, email.failure_rate, email.seed) == ((0.0, 0.0), 1.0, 3)
    assert (content.failure_rate, content.seed) == (0.0, 3)
    assert config.describe_agents() == "(demo agents)"


def test_retry_settings_override_the_engines_policy_for_their_type(write: Any) -> None:
    config = load(write("""
        [agents.email]
        max_attempts = 1
        [agents.research]
        initial_interval = 120
        backoff = 3
        non_retryable = ["auth"]
    """))
    base = RetryPolicy(maximum_attempts=5, jitter=0.0)

    policies = config.retry_policies(base)

    assert set(policies) == {"email", "research"}
    assert policies["email"] == RetryPolicy(maximum_attempts=1, jitter=0.0)
    assert policies["research"] == RetryPolicy(
        maximum_attempts=5, initial_interval=120, backoff_coefficient=3, maximum_interval=120,
        jitter=0.0, non_retryable=frozenset({"auth"}))


def test_retry_settings_that_contradict_the_engines_name_their_key(write: Any) -> None:
    config = load(write("[agents.email]\nmax_interval = 10"))
    with pytest.raises(ConfigError) as raised:
        config.retry_policies(RetryPolicy(initial_interval=30, maximum_interval=60))
    assert str(raised.value).endswith(
        "agents.email.max_interval: must be at least the initial interval (30), got 10")


def test_rules_replace_the_table_and_add_their_agent_types(write: Any) -> None:
    config = load(write("""
        [[rules]]
        name = "legal"
        keywords = ["contract", "nda"]
        agents = ["legal", "email"]
        priority = "high"
        [[rules]]
        keywords = ["print"]
        agents = ["printer"]
        [agents.legal]
        handler = "cfg_handlers:Greeter"
        options = {greeting = "counsel"}
    """))

    assert config.rules is not None
    assert config.rules.rules == (
        PropagationRule("legal", ("contract", "nda"), ("legal", "email"), "high"),
        PropagationRule("rule-2", ("print",), ("printer",), "medium"))
    assert config.rules.default == DEFAULT_RULE
    assert config.agent_types == (*AGENT_TYPES, "legal", "printer")
    assert set(config.handlers({})) == set(config.agent_types)
    assert config.describe_agents() == (
        "(agents: legal=cfg_handlers:Greeter; demo: email, content, research, scheduling, "
        "analysis, coordination, printer)")


def test_an_empty_file_is_the_demo_agents_and_the_built_in_rules(write: Any) -> None:
    config = load(write(""))
    assert (config.rules, dict(config.agents)) == (None, {})
    assert config.agent_types == AGENT_TYPES
    assert Config().describe_agents() == "(demo agents)"


def test_the_flag_wins_over_the_environment_over_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STRATEXEC_CONFIG", raising=False)
    assert config_path(None) is None
    (tmp_path / "stratexec.toml").write_text("")
    assert config_path(None) == Path("stratexec.toml")
    monkeypatch.setenv("STRATEXEC_CONFIG", "from-env.toml")
    assert config_path(None) == Path("from-env.toml")
    assert config_path("flag.toml") == Path("flag.toml")


def test_option_errors_of_a_handler_keep_its_own_key() -> None:
    with pytest.raises(OptionError) as raised:
        DemoAgent("email", {"seed": "x"})
    assert str(raised.value) == "seed: must be an integer, got a string"


def task() -> AgentTask:
    return AgentTask(execution_id=UUID(int=1), workspace_id="w", task_id="a:email",
                     item_id="a", title="A", agent="email", priority="high", order=0,
                     attempt=1)


def test_the_lock_idle_timeout_must_outlast_two_takeover_looks(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATEXEC_TAKEOVER_INTERVAL", "2")
    monkeypatch.setenv("STRATEXEC_LOCK_IDLE_TIMEOUT", "4")
    with pytest.raises(ValueError, match="STRATEXEC_LOCK_IDLE_TIMEOUT must be above twice"):
        StoreSettings.from_environment(store="postgres")
    monkeypatch.setenv("STRATEXEC_LOCK_IDLE_TIMEOUT", "4.5")
    settings = StoreSettings.from_environment(store="postgres")
    assert settings.lock_idle_timeout == 4.5
    assert settings.event_store_env()["POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT"] == "4"
