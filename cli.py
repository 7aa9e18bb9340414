"""The `stratexec` command: argument parsing and output only.

Exit codes: 0 an execution completed with every task done (or a check passed); 1 it ended
failed or cancelled (or a check found differences); 2 invalid input, a bad option, a data
directory or store that cannot be used, or a retry refused (nothing recorded); 130
interrupted with Ctrl-C (the execution is paused and the `resume` command printed continues
it). `stratexec executions ...` has codes of its own (`remote`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

from stratexec import logs, remote, server, usecases
from stratexec.bench import report
from stratexec.config import AGENTS_ON, Config, ConfigError, add_config_argument, load_config
from stratexec.domain.application import StratexecApp
from stratexec.domain.errors import DomainError, InvalidStrategy, NotFound
from stratexec.domain.execution import Execution
from stratexec.domain.propagation import PropagationRules, check_agent_types, propagate
from stratexec.domain.strategy import StrategyDefinition, parse_strategy
from stratexec.engine import Engine, agent_handlers
from stratexec.progress import (
    ProgressDisplay,
    print_summary,
    print_table,
    resume_command,
    summary_exit_code,
)
from stratexec.settings import (
    STORES,
    DataDirInUse,
    StoreSettings,
    add_demo_arguments,
    add_engine_arguments,
    add_store_arguments,
    engine_options,
    positive_int,
)
from stratexec.startup import Parser, StartupError, check_store

EXIT_OK, EXIT_FAILED, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 2, 130
REDRAW_INTERVAL = 0.2  # seconds between two draws of the progress line
BENCH_SIZES = [100, 1000, 10_000, 50_000]
CELERY_BENCH_SIZES = [100, 1000, 5000]


class UsageError(Exception):
    """Bad input from the user: printed, and the command exits 2."""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if hasattr(args, "log_format"):
        logs.configure_from(args)
    else:
        logs.configure()
    try:
        return int(args.command(args))
    except (UsageError, ConfigError, StartupError) as error:
        print(f"stratexec: {error}", file=sys.stderr)
        return EXIT_INVALID


# --------------------------------------------------------------------- commands

def cmd_run(args: argparse.Namespace) -> int:
    config = load_config(args)
    definition = load_strategy_file(Path(args.file), config.rules)
    with engine(args, config) as running:
        defined = usecases.define_strategy(running.app, definition, running.rules)
        execution = usecases.start_execution(running, defined.strategy_id,
                                             defined.workspace_id, spread=False)
        logs.execution_started(execution.id, definition.name, execution.total_tasks)
        print(f"execution {execution.id}: {execution.total_tasks} tasks "
              f"from {definition.name!r} {config.describe_agents()}", file=sys.stderr)
        return follow(running, [execution.id], args)


def cmd_resume(args: argparse.Namespace) -> int:
    wanted = None if args.execution_id is None else [_uuid(args.execution_id)]
    with engine(args, load_config(args)) as running:
        if wanted is not None:
            _require_execution(running.app, wanted[0])
        recovered = usecases.continue_executions(running, wanted)
        for execution_id in recovered:
            logs.execution_recovered(execution_id)
        shown = recovered if wanted is None else wanted
        if not shown:
            print("nothing to resume: every execution has finished", file=sys.stderr)
            return EXIT_OK
        return follow(running, shown, args)


def cmd_retry(args: argparse.Namespace) -> int:
    execution_id = _uuid(args.execution_id)
    config = load_config(args)
    with engine(args, config) as running:
        _require_execution(running.app, execution_id)
        try:
            usecases.retry_execution(running, execution_id, args.task)
        except DomainError as error:  # nothing failed (or not that task), or no such task
            raise UsageError(error.message) from None
        which = "its failed tasks" if args.task is None else f"task {args.task}"
        print(f"execution {execution_id}: retrying {which} {config.describe_agents()}",
              file=sys.stderr)
        return follow(running, [execution_id], args)


def cmd_history(args: argparse.Namespace) -> int:
    execution_id = _uuid(args.execution_id)
    app = StoreSettings.from_environment(args.data_dir).open_app()
    _require_execution(app, execution_id)
    for event in usecases.history(app, execution_id):
        print(json.dumps(event, default=str))
    return EXIT_OK


def cmd_replay(args: argparse.Namespace) -> int:
    execution_id = _uuid(args.execution_id)
    settings = StoreSettings.from_environment(args.data_dir)
    app = settings.open_app()
    execution = _require_execution(app, execution_id, args.at)
    print(json.dumps(usecases.execution_state(execution), default=str, indent=2))
    if not args.verify:
        return EXIT_OK
    with settings.open_views() as live, settings.scratch_views() as fresh:
        differences = usecases.verify_read_models(app, live, fresh)
    for difference in differences[:50]:
        print(f"differs: {difference}", file=sys.stderr)
    verdict = "identical" if not differences else f"{len(differences)} differences"
    print(f"verify: read models rebuilt from position 0 are {verdict}", file=sys.stderr)
    return EXIT_OK if not differences else EXIT_FAILED


def cmd_serve(args: argparse.Namespace) -> int:
    return server.run(server.settings_from(args))


def cmd_worker(args: argparse.Namespace) -> int:
    # Celery is imported only by the commands that use it.
    from stratexec.workers import worker  # noqa: PLC0415

    return worker.run(args)


def cmd_agents(args: argparse.Namespace) -> int:
    config = load_config(args)
    options = engine_options(args)
    agent_handlers(options, config)  # each handler checks its options
    rows = config.listing(options.concurrency, options.retry)
    if args.json:
        print(json.dumps({"config": config.file, "agents": rows}))
        return EXIT_OK
    print(f"config: {config.file}" if config.file else
          "config: none (every agent type runs the demo agent)", file=sys.stderr)
    table = []
    for row in rows:
        source = row["source"] if row["distribution"] is None else (
            f"{row['source']} ({row['distribution']} {row['version']})")
        table.append([row["type"], row["handler"], source, str(row["concurrency"]),
                      _seconds(row["timeout"]), _seconds(row["heartbeatTimeout"]),
                      str(row["maxAttempts"])])
    print_table(["TYPE", "HANDLER", "SOURCE", "CONCURRENCY", "TIMEOUT", "HEARTBEAT TIMEOUT",
                 "MAX ATTEMPTS"], table)
    return EXIT_OK


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:g} s"


def cmd_token_create(args: argparse.Namespace) -> int:
    app = StoreSettings.from_environment(args.data_dir).open_app()
    try:
        token, secret = usecases.issue_token(app, args.user, args.workspace, args.label)
    except ValueError as error:
        raise UsageError(str(error)) from None
    print(f"token id {token.id} for {token.user} in {', '.join(token.workspaces)}; "
          "the token is shown once:", file=sys.stderr)
    print(secret)
    return EXIT_OK


def cmd_token_revoke(args: argparse.Namespace) -> int:
    app = StoreSettings.from_environment(args.data_dir).open_app()
    try:
        token = usecases.revoke_token(app, args.token)
    except DomainError as error:
        raise UsageError(error.message) from None
    print(f"revoked token {token.id} of {token.user}", file=sys.stderr)
    return EXIT_OK


def cmd_token_list(args: argparse.Namespace) -> int:
    tokens = usecases.list_tokens(StoreSettings.from_environment(args.data_dir).open_app())
    if args.json:
        print(json.dumps({"tokens": tokens}))
        return EXIT_OK
    print_table(["ID", "USER", "WORKSPACES", "LABEL", "CREATED", "REVOKED"], [
        [t["id"], t["user"], ",".join(t["workspaces"]), t["label"], t["createdAt"][:19],
         (t["revokedAt"] or "")[:19] or "no"] for t in tokens])
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    sizes = args.sizes or (CELERY_BENCH_SIZES if args.agents_on == "celery" else BENCH_SIZES)
    return report.main(sizes, args.latency_size, args.subscribers, args.replay_min_events,
                       None if args.out is None else Path(args.out), args.store, args.agents_on)


# ------------------------------------------------------------------- plumbing

def load_strategy_file(path: Path, rules: PropagationRules | None = None
                       ) -> StrategyDefinition:
    """Read and check a strategy file (against the config file's rules, when given); every
    problem names the file and the item."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"{path}: cannot read: {error.strerror}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{path}: not valid JSON: {error.msg} at line {error.lineno}, "
                         f"column {error.colno}") from None
    try:
        definition = parse_strategy(document)
        check_agent_types(definition.items, rules)
        propagate(definition.items, rules)
    except InvalidStrategy as error:
        lines = "\n".join(f"  {problem}" for problem in error.problems)
        raise UsageError(f"{path}: invalid strategy:\n{lines}") from None
    return definition


@contextmanager
def engine(args: argparse.Namespace, config: Config) -> Iterator[Engine]:
    """The engine on the data directory (checked first: `startup.StartupError`), stopped
    (and settled) on the way out."""
    store = StoreSettings.from_environment(args.data_dir)
    check_store(store)
    try:
        running = Engine.configured(store, engine_options(args), config)
    except DataDirInUse as error:
        raise UsageError(str(error)) from None
    try:
        yield running
    finally:
        running.stop()


def follow(running: Engine, execution_ids: list[UUID], args: argparse.Namespace) -> int:
    """Show progress until every execution finished; Ctrl-C pauses them and exits 130."""
    display = ProgressDisplay(sys.stderr)
    try:
        for execution_id in execution_ids:
            while not usecases.wait_finished(running, execution_id, timeout=REDRAW_INTERVAL):
                _draw(display, running, execution_id)
    except KeyboardInterrupt:
        display.done()
        for execution_id in usecases.pause_all(running, execution_ids):
            print(f"paused execution {execution_id}; continue it with: "
                  f"{resume_command(execution_id, args.data_dir, args.config)}",
                  file=sys.stderr)
        return EXIT_INTERRUPTED
    running.settle()
    worst = EXIT_OK
    for execution_id in execution_ids:
        _draw(display, running, execution_id)
        display.done()
        summary = usecases.execution_summary(running.views, execution_id)
        logs.execution_finished(execution_id, summary["status"], summary)
        print_summary(summary, sys.stderr)
        if args.json:
            print(json.dumps(summary))
        worst = max(worst, summary_exit_code(summary))
    return worst


def _draw(display: ProgressDisplay, running: Engine, execution_id: UUID) -> None:
    status = usecases.execution_progress(running.views, execution_id)
    if status is not None:
        display.show(status)


def _uuid(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise UsageError(f"not an execution id: {text!r}") from None


def _require_execution(app: StratexecApp, execution_id: UUID, version: int | None = None
                       ) -> Execution:
    try:
        return usecases.execution_at(app, execution_id, version)
    except NotFound:
        raise UsageError(f"no execution {execution_id}") from None


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 100,1000, got {text!r}"
                                         ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return values


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="stratexec", description="Execute business strategies with many agents.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[argparse.Namespace], int], help_text: str
                ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(command=handler)
        add_store_arguments(sub)
        return sub

    def add_engine_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--json", action="store_true",
                         help="print a JSON summary as the last line of stdout")
        add_config_argument(sub)
        add_engine_arguments(sub)
        logs.add_log_arguments(sub, level="warning")

    run = command("run", cmd_run, "run a strategy file to the end")
    run.add_argument("file", help="the strategy file (JSON)")
    add_engine_options(run)
    resume = command("resume", cmd_resume, "continue unfinished executions to the end")
    resume.add_argument("execution_id", nargs="?", help="only this execution")
    add_engine_options(resume)
    retry = command("retry", cmd_retry,
                    "try again the tasks that failed for good, then follow to the end")
    retry.add_argument("execution_id")
    retry.add_argument("--task", metavar="TASK_ID",
                       help="only this task (by default every task that failed for good)")
    add_engine_options(retry)
    history = command("history", cmd_history, "print an execution's events, one JSON a line")
    history.add_argument("execution_id")
    replay = command("replay", cmd_replay, "rebuild an execution's state from its events")
    replay.add_argument("execution_id")
    replay.add_argument("--at", type=int, default=None, metavar="VERSION",
                        help="the state as of this version")
    replay.add_argument("--verify", action="store_true",
                        help="rebuild every read model from position 0 and compare")
    serve = commands.add_parser("serve", help=server.SERVE_HELP, description=server.SERVE_HELP)
    serve.set_defaults(command=cmd_serve)
    server.add_arguments(serve)
    agents_help = "list the agent types: their handler, where it came from, and its limits"
    agents = commands.add_parser("agents", help=agents_help, description=agents_help)
    agents.set_defaults(command=cmd_agents)
    agents.add_argument("--json", action="store_true", help="print them as one JSON object")
    add_config_argument(agents)
    add_engine_arguments(agents)
    _add_worker_command(commands)
    _add_bench_command(commands)
    _add_token_commands(commands)
    remote.add_commands(commands)
    return parser


def _add_worker_command(commands: Any) -> None:
    worker_help = "run a Celery worker for the agents' attempts (engines with --agents-on celery)"
    worker = commands.add_parser("worker", help=worker_help, description=worker_help)
    worker.set_defaults(command=cmd_worker)
    add_config_argument(worker)
    worker.add_argument("--queues", type=_agent_types, default=None,
                        metavar="email,content,...",
                        help="the agent types to serve, one queue each (default all)")
    worker.add_argument("--concurrency", type=positive_int, default=None, metavar="N",
                        help="worker processes (default one per CPU)")
    add_demo_arguments(worker)


def _agent_types(text: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    if not chosen:
        raise argparse.ArgumentTypeError(f"expected agent types like email,content, got {text!r}")
    return chosen


def _add_bench_command(commands: Any) -> None:
    bench = commands.add_parser(
        "bench", help="measure throughput, stream latency, replay and memory",
        description="Measure the engine against baselines taken in the same run.")
    bench.set_defaults(command=cmd_bench)
    bench.add_argument("--sizes", type=_int_list, default=None,
                       help="N chains of two tasks per throughput run (default "
                            "100,1000,10000,50000; with --agents-on celery 100,1000,5000)")
    bench.add_argument("--agents-on", choices=AGENTS_ON, default="local",
                       help="celery: only the throughput runs, with the attempts on Celery "
                            "workers, beside a raw Celery baseline (the same DAG as plain "
                            "Celery tasks); the broker is CELERY_BROKER_URL")
    bench.add_argument("--latency-size", type=int, default=1000,
                       help="N of the stream latency runs (default 1000)")
    bench.add_argument("--subscribers", type=_int_list, default=[1, 100],
                       help="subscriber counts of the latency runs (default 1,100)")
    bench.add_argument("--replay-min-events", type=int, default=200_000,
                       help="the log replayed must hold at least this many events")
    bench.add_argument("--out", help="write the figures as JSON to this file")
    bench.add_argument("--store", choices=STORES, default="sqlite",
                       help="postgres: also run the workloads on PostgreSQL (eventsourcing's "
                            "POSTGRES_* variables; the user creates a database per run), with "
                            "one and with two server processes (default sqlite only)")


def _add_token_commands(commands: Any) -> None:
    token = commands.add_parser("token", help="create, list or revoke access tokens")
    token_commands = token.add_subparsers(required=True, metavar="ACTION")
    listed = token_commands.add_parser(
        "list", help="every token issued: id, user, workspaces, created, revoked (never "
                     "the secret)")
    listed.set_defaults(command=cmd_token_list)
    listed.add_argument("--json", action="store_true", help="print them as one JSON object")
    create = token_commands.add_parser("create", help="create a token (printed once)")
    create.set_defaults(command=cmd_token_create)
    create.add_argument("--user", required=True)
    create.add_argument("--workspace", required=True, action="append",
                        help="a workspace the token grants (repeat for several)")
    create.add_argument("--label", default="")
    revoke = token_commands.add_parser("revoke", help="revoke a token by its id or itself")
    revoke.set_defaults(command=cmd_token_revoke)
    revoke.add_argument("token")
    for sub in (listed, create, revoke):
        add_store_arguments(sub)


if __name__ == "__main__":
    sys.exit(main())
