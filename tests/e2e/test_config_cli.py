"""The config file as a user writes it: real files, real `stratexec` processes, handlers in
modules and distributions of their own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMALL_DEMO = ROOT / "examples" / "small-demo.json"
FAST = ["--demo-duration", "0:0.02", "--retry-interval", "0.02", "--health-interval", "0.2"]
DEMO_REST = "demo: email, content, scheduling, analysis, coordination"

HANDLERS = '''
"""What a user's handler module looks like."""
from stratexec.actors.agents.base import OptionError


class Greeter:
    def __init__(self, agent_type, options):
        self.agent_type = agent_type
        self.greeting = options.get("greeting")
        if not isinstance(self.greeting, str):
            raise OptionError("greeting", f"expected a string, got {self.greeting!r}")

    def run(self, task, context):
        context.report_progress(0.5, "greeting")
        return {"greeting": f"{self.greeting}, {task.title}", "agent": task.agent}
'''

COUNSEL = '''
class Counsel:
    def __init__(self, agent_type, options):
        self.agent_type = agent_type
        self.firm = options.get("firm", "Acme LLP")

    def run(self, task, context):
        return {"reviewedBy": self.firm, "item": task.item_id}
'''


def stratexec(*args: str, cwd: Path, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stratexec", *args], cwd=cwd, capture_output=True, text=True,
        timeout=120, check=False, env={**os.environ, "PYTHONPATH": str(cwd), **(env or {})})


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def history(execution_id: str, cwd: Path) -> list[dict[str, Any]]:
    result = stratexec("history", execution_id, "--data-dir", "var", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def run_to_the_end(cwd: Path, strategy: Path, *options: str) -> tuple[str, list[Any]]:
    """`stratexec run`: its stderr, and the execution's events."""
    result = stratexec("run", str(strategy), "--json", "--data-dir", "var", *FAST, *options,
                       cwd=cwd)
    assert result.returncode in (0, 1), result.stderr
    execution_id = json.loads(result.stdout.splitlines()[-1])["executionId"]
    return result.stderr, history(execution_id, cwd)


def results(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["data"]["taskId"]: e["data"]["result"] for e in events
            if e["type"] == "Execution.TaskSucceeded"}


def planned(events: list[dict[str, Any]]) -> list[str]:
    started = next(e for e in events if e["type"] == "Execution.Started")
    return [task["id"] for task in started["data"]["tasks"]]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's folder: a handler module beside it (on PYTHONPATH), and a legal strategy."""
    (tmp_path / "handlers.py").write_text(HANDLERS)
    items = [
        {"id": "l1", "level": 1, "parentId": None, "title": "Close the partnership"},
        {"id": "l2", "level": 2, "parentId": "l1", "title": "Paperwork"},
        {"id": "l3", "level": 3, "parentId": "l2", "title": "Agreements"},
        {"id": "l4-nda", "level": 4, "parentId": "l3", "title": "Review the NDA"},
        {"id": "l4-send", "level": 4, "parentId": "l3", "title": "Send the signed contract",
         "dependsOn": ["l4-nda"]},
        {"id": "l4-file", "level": 4, "parentId": "l3", "title": "File it",
         "agents": ["legal"]},
    ]
    (tmp_path / "legal.json").write_text(json.dumps({"name": "Partnership", "items": items}))
    return tmp_path


LEGAL_RULES = """
    [[rules]]
    name = "legal"
    keywords = ["nda", "contract"]
    agents = ["legal", "email"]
    priority = "high"
"""


# ------------------------------------------------------------------ mistakes

MISTAKES = [
    ("run", "[agents.email]\nhandler = 'carrier-pigeon'\n",
     "agents.email.handler: unknown handler 'carrier-pigeon': not built in (demo, webhook, "
     "smtp, llm), not package.module:Class, and no entry point of group stratexec.agents has "
     "that name"),
    ("run", "[agents.research]\nhandler = 'handlers:Greeter'\n",
     "agents.research.options.greeting: expected a string, got None"),
    ("serve", "[agents.research]\nhandler = 'handlers:Greeter'\noptions = {greeting = 5}\n",
     "agents.research.options.greeting: expected a string, got 5"),
    ("resume", "[agents.legal]\nhandler = 'demo'\n",
     "agents.legal: unknown agent type 'legal': no rule makes its tasks (known: email, "
     "content, research, scheduling, analysis, coordination)"),
    ("serve", "[agents.email]\nconcurrency = 'two'\n",
     "agents.email.concurrency: expected an integer, got 'two'"),
    ("agents", "[agents.email]\nretries = 3\n",
     "agents.email.retries: unknown key (known: backoff, circuit_breaker, concurrency, handler, "
     "heartbeat_timeout, initial_interval, max_attempts, max_interval, non_retryable, "
     "options, timeout)"),
    ("run", "[agents.email\n", "not valid TOML: Expected ']' at the end of a table "
                               "declaration (at line 1, column 14)"),
    ("resume", "[engine]\nagents_on = 'dask'\n",
     "engine.agents_on: must be one of local, celery, got 'dask'"),
    ("run", "[[rules]]\nkeywords = ['nda']\nagents = []\n",
     "rules[0].agents: needs at least one agent type"),
]


@pytest.mark.parametrize(("command", "text", "expected"), MISTAKES)
def test_a_config_mistake_exits_2_with_one_line_naming_the_file_and_key(
        project: Path, command: str, text: str, expected: str) -> None:
    config = write(project / "bad.toml", text)
    arguments = {"run": ["run", str(SMALL_DEMO)], "serve": ["serve", "--port", "0"],
                 "resume": ["resume"], "agents": ["agents"]}[command]

    result = stratexec(*arguments, "--config", str(config),
                       *([] if command == "agents" else ["--data-dir", "var"]), cwd=project)

    assert (result.returncode, result.stderr) == (2, f"stratexec: {config}: {expected}\n")
    assert result.stdout == ""
    assert not (project / "var").exists()  # nothing started, nothing recorded


def test_the_environment_and_the_working_directory_name_the_file(project: Path) -> None:
    write(project / "stratexec.toml", "[agents.email]\nconcurrency = 'x'\n")
    result = stratexec("run", str(SMALL_DEMO), "--data-dir", "var", cwd=project)
    assert result.returncode == 2
    assert result.stderr == ("stratexec: stratexec.toml: agents.email.concurrency: expected "
                             "an integer, got 'x'\n")

    missing = project / "missing.toml"
    result = stratexec("run", str(SMALL_DEMO), "--data-dir", "var", cwd=project,
                       env={"STRATEXEC_CONFIG": str(missing)})
    assert (result.returncode, result.stderr) == (
        2, f"stratexec: {missing}: cannot read: No such file or directory\n")

    good = write(project / "good.toml", "[agents.email]\nconcurrency = 2\n")
    result = stratexec("agents", "--json", "--config", str(good), cwd=project,
                       env={"STRATEXEC_CONFIG": str(missing)})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["config"] == str(good)


# ------------------------------------------------------------------ handlers

def test_a_handler_named_by_import_path_runs_the_tasks_of_its_type(project: Path) -> None:
    config = write(project / "stratexec.toml", """
        [agents.research]
        handler = "handlers:Greeter"
        [agents.research.options]
        greeting = "Hello"
    """)

    stderr, events = run_to_the_end(project, SMALL_DEMO, "--demo-failure-rate", "0")

    assert f"(agents: research=handlers:Greeter; {DEMO_REST})" in stderr
    done = results(events)
    assert done["l4-research-topics:research"] == {
        "greeting": "Hello, Research trending topics", "agent": "research"}
    others = {task: result for task, result in done.items() if not task.endswith(":research")}
    assert len(others) == 5
    assert all(result["demo"] is True for result in others.values())
    assert config.exists()


def test_an_entry_point_handler_is_found_listed_and_run(project: Path) -> None:
    site = project / "site"
    dist_info = site / "acme_agents-1.2.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acme-agents\nVersion: 1.2.0\n")
    (dist_info / "entry_points.txt").write_text(
        "[stratexec.agents]\ncounsel = acme_agents:Counsel\n")
    (site / "acme_agents.py").write_text(COUNSEL)
    write(project / "stratexec.toml", LEGAL_RULES + """
        [agents.legal]
        handler = "counsel"
        concurrency = 1
        timeout = 20
        max_attempts = 2
        options = {firm = "Dewey & Co"}
        [agents.research]
        handler = "handlers:Greeter"
        options = {greeting = "Hi"}
        heartbeat_timeout = 5
    """)
    env = {"PYTHONPATH": f"{project}{os.pathsep}{site}"}

    listed = stratexec("agents", cwd=project, env=env)
    as_json = stratexec("agents", "--json", "--concurrency", "3", cwd=project, env=env)
    ran = stratexec("run", "legal.json", "--json", "--data-dir", "var", *FAST,
                    "--demo-failure-rate", "0", cwd=project, env=env)

    assert listed.returncode == 0, listed.stderr
    assert listed.stderr == "config: stratexec.toml\n"
    lines = [line.split("  ") for line in listed.stdout.splitlines()]
    table = [[cell.strip() for cell in line if cell.strip()] for line in lines]
    assert table == [
        ["TYPE", "HANDLER", "SOURCE", "CONCURRENCY", "TIMEOUT", "HEARTBEAT TIMEOUT",
         "MAX ATTEMPTS"],
        ["email", "demo", "demo default", "4", "-", "-", "4"],
        ["content", "demo", "demo default", "4", "-", "-", "4"],
        ["research", "handlers:Greeter", "import path", "4", "-", "5 s", "4"],
        ["scheduling", "demo", "demo default", "4", "-", "-", "4"],
        ["analysis", "demo", "demo default", "4", "-", "-", "4"],
        ["coordination", "demo", "demo default", "4", "-", "-", "4"],
        ["legal", "counsel", "entry point (acme-agents 1.2.0)", "1", "20 s", "-", "2"],
    ]
    rows = {row["type"]: row for row in json.loads(as_json.stdout)["agents"]}
    assert rows["legal"] == {
        "type": "legal", "handler": "counsel", "source": "entry point",
        "distribution": "acme-agents", "version": "1.2.0", "concurrency": 1,
        "timeout": 20.0, "heartbeatTimeout": None, "maxAttempts": 2}
    assert rows["email"]["concurrency"] == 3  # the engine's, from the flag

    assert ran.returncode == 0, ran.stderr
    assert "(agents: research=handlers:Greeter, legal=counsel; demo: email, content, " in (
        ran.stderr)
    events = history(json.loads(ran.stdout.splitlines()[-1])["executionId"], project)
    assert results(events)["l4-nda:legal"] == {"reviewedBy": "Dewey & Co", "item": "l4-nda"}
    assert results(events)["l4-file:legal"] == {"reviewedBy": "Dewey & Co", "item": "l4-file"}


def test_rules_in_the_file_replace_the_built_in_table(project: Path) -> None:
    write(project / "stratexec.toml", """
        [[rules]]
        keywords = ["newsletter"]
        agents = ["content", "email"]
        priority = "low"
    """)

    stderr, events = run_to_the_end(project, SMALL_DEMO, "--demo-failure-rate", "0")

    assert "4 tasks from 'Small demo: customer newsletter' (demo agents)" in stderr
    assert planned(events) == [  # without the file: research, analysis, content, analysis...
        "l4-research-topics:coordination", "l4-write-newsletter:content",
        "l4-write-newsletter:email", "l4-schedule-review:coordination"]
    decisions = next(e for e in events if e["type"] == "Execution.Started")["data"]["decisions"]
    assert [d["rule"] for d in decisions] == ["default", "rule-1", "default"]


def test_an_explicit_agent_type_the_rules_do_not_make_is_a_strategy_error(
        project: Path) -> None:
    result = stratexec("run", "legal.json", "--data-dir", "var", cwd=project)
    assert result.returncode == 2
    assert "items (l4-file).agents: unknown agent type 'legal' (known: email, " in (
        result.stderr)
    assert not (project / "var").exists()


def test_a_types_own_max_attempts_fails_it_for_good_while_others_retry(project: Path) -> None:
    write(project / "stratexec.toml", """
        [agents.research]
        max_attempts = 1
    """)

    _, events = run_to_the_end(project, SMALL_DEMO, "--demo-failure-rate", "1",
                               "--max-attempts", "3")

    failed = Counter(e["data"]["taskId"] for e in events if e["type"] == "Execution.TaskFailed")
    assert failed == {"l4-research-topics:research": 1, "l4-schedule-review:scheduling": 3}
    started = next(e for e in events if e["type"] == "Execution.Started")["data"]
    assert started["retryPolicy"]["maximumAttempts"] == 3
    assert started["agentRetryPolicies"]["research"]["maximumAttempts"] == 1


def test_serve_says_which_agents_are_real(project: Path) -> None:
    write(project / "stratexec.toml", """
        [agents.research]
        handler = "handlers:Greeter"
        options = {greeting = "Hi"}
    """)
    process = subprocess.Popen(
        [sys.executable, "-m", "stratexec", "serve", "--port", "0", "--data-dir", "var"],
        cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(project)})
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert f"(agents: research=handlers:Greeter; {DEMO_REST}); open the dashboard" in line


def readme_block(section: str, language: str) -> str:
    """The first `language` code block of a README section."""
    text = (ROOT / "README.md").read_text()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return body.split(f"```{language}\n", 1)[1].split("```", 1)[0]


def test_the_readmes_example_handler_runs_by_import_path(project: Path) -> None:
    (project / "acme_agents.py").write_text(readme_block("Writing an agent handler", "python"))
    write(project / "stratexec.toml", LEGAL_RULES + """
        [agents.legal]
        handler = "acme_agents:LegalReview"
        options = {firm = "Dewey & Co"}
    """)
    document = json.loads((project / "legal.json").read_text())
    document["items"][3]["inputs"] = {"documents": ["nda.pdf", "annex.pdf"]}
    (project / "legal.json").write_text(json.dumps(document))

    stderr, events = run_to_the_end(project, project / "legal.json", "--demo-failure-rate", "0")

    assert "(agents: legal=acme_agents:LegalReview; demo: email, " in stderr
    nda = results(events)["l4-nda:legal"]
    assert (nda["reviewedBy"], nda["documents"]) == ("Dewey & Co", 2)
    assert results(events)["l4-file:legal"]["documents"] == 1
    progress = [e["data"]["message"] for e in events if e["type"] == "Execution.TaskProgressed"
                and e["data"]["taskId"] == "l4-nda:legal"]
    assert progress == ["read nda.pdf", "read annex.pdf"]
