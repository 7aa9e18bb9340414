"""`stratexec executions list|status|pause|resume|cancel|retry|watch`: a running server's
executions, from any machine that reaches it (`client.Client`).

The server is `--server URL` (or `STRATEXEC_SERVER`, default http://127.0.0.1:8080); the
token `--token` (or `STRATEXEC_TOKEN`, else the dashboard token in `--data-dir`, for a
server on this machine). Human tables by default, the server's JSON with `--json`.

Exit codes: 0 done; 1 the server refused the command (409: the state forbids it) or the
watched execution ended failed or cancelled; 2 usage: bad arguments, no or a wrong token,
no such execution or task (400, 401, 404); 3 the server could not be reached or failed
(5xx); 130 Ctrl-C stopped `watch` (the execution goes on on the server).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote
from uuid import UUID

from stratexec.client import Client, Frame, HttpError, Unreachable
from stratexec.domain.execution import ExecutionStatus
from stratexec.progress import (
    ProgressDisplay,
    duration,
    finished_tasks,
    invoked_as,
    print_summary,
    print_table,
    summary_exit_code,
    summary_of,
)
from stratexec.server import TOKEN_FILE
from stratexec.settings import StoreSettings, add_store_arguments

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
DEFAULT_SERVER = "http://127.0.0.1:8080"
FINISHED_EVENTS = frozenset({"execution-completed", "execution-cancelled"})
STATUSES = tuple(str(status) for status in ExecutionStatus)
UNSUCCESSFUL = frozenset({ExecutionStatus.FAILED, ExecutionStatus.CANCELLED})
ENDED = frozenset({ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED})
REFRESH = 0.25  # seconds: `watch` reads the status at most this often
Command = Callable[[Client, argparse.Namespace], int]


class Usage(Exception):
    """A mistake in the command itself: one line, exit 2."""


def add_commands(commands: Any) -> None:
    """The `executions` command group, beside the others of `stratexec`."""
    group = commands.add_parser(
        "executions", help="list, inspect, steer and watch the executions of a running server",
        description=__doc__.split("\n\n")[0])
    actions = group.add_subparsers(required=True, metavar="ACTION")

    def action(name: str, handler: Command, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = actions.add_parser(name, help=help_text,
                                                          description=help_text)
        sub.set_defaults(command=lambda args: _run(handler, args))
        sub.add_argument("--server", default=os.environ.get("STRATEXEC_SERVER"),
                         help=f"the server (default STRATEXEC_SERVER, else {DEFAULT_SERVER})")
        sub.add_argument("--token", default=os.environ.get("STRATEXEC_TOKEN"),
                         help="the token (default STRATEXEC_TOKEN, else DATA_DIR's dashboard "
                              "token)")
        sub.add_argument("--json", action="store_true", help="print the server's JSON answer")
        add_store_arguments(sub)
        if name != "list":
            sub.add_argument("execution_id")
        return sub

    listed = action("list", cmd_list, "the executions, newest first")
    listed.add_argument("--workspace", help="only this workspace's")
    listed.add_argument("--status", choices=STATUSES, help="only those in this state")
    listed.add_argument("--strategy", metavar="STRATEGY_ID", help="only this strategy's")
    listed.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    action("status", cmd_status, "an execution's progress, health, ETA and agents")
    for command in ("pause", "resume", "cancel"):
        action(command, _transition(command), f"{command} an execution")
    retry = action("retry", cmd_retry, "retry the tasks that failed for good (or one)")
    retry.add_argument("--task", metavar="TASK_ID", help="only this task")
    action("watch", cmd_watch, "follow an execution live to its end, with the progress line "
                               "of `stratexec run`")


def _run(handler: Command, args: argparse.Namespace) -> int:
    """The command with its client; every error as one line and its exit code."""
    try:
        return handler(_client(args), args)
    except Usage as error:
        return _fail(str(error), EXIT_USAGE)
    except HttpError as error:
        return _fail(str(error), _exit_code(error))
    except Unreachable as error:
        return _fail(str(error), EXIT_UNREACHABLE)


def _fail(message: str, code: int) -> int:
    print(f"stratexec: {message}", file=sys.stderr)
    return code


def _exit_code(error: HttpError) -> int:
    if error.status == 409:
        return EXIT_REFUSED
    return EXIT_UNREACHABLE if error.status >= 500 else EXIT_USAGE


def _client(args: argparse.Namespace) -> Client:
    token = args.token or _local_token(args.data_dir)
    if not token:
        raise Usage("no token: give --token or STRATEXEC_TOKEN (`stratexec token create` "
                    "makes one)")
    return Client(args.server or DEFAULT_SERVER, token)


def _local_token(data_dir: str | None) -> str | None:
    """The dashboard token a server on this data directory keeps, when there is one."""
    path = StoreSettings.from_environment(data_dir).data_dir / TOKEN_FILE
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def _execution_path(args: argparse.Namespace, suffix: str = "") -> str:
    try:
        execution_id = UUID(args.execution_id)
    except ValueError:
        raise Usage(f"not an execution id: {args.execution_id!r}") from None
    return f"/api/executions/{execution_id}{suffix}"


def _print_json(answer: Any) -> None:
    print(json.dumps(answer))


# ------------------------------------------------------------------ commands

def cmd_list(client: Client, args: argparse.Namespace) -> int:
    page = client.get("/api/executions", {"workspaceId": args.workspace, "status": args.status,
                                          "strategyId": args.strategy, "limit": args.limit})
    if args.json:
        _print_json(page)
        return EXIT_OK
    print_table(["ID", "STATUS", "STRATEGY", "FINISHED", "HEALTH", "STARTED"], [
        [row["id"], row["status"], row["strategyName"],
         f"{finished_tasks(row)}/{row['totalTasks']}", _health_cell(row),
         row["startedAt"][:19]] for row in page["executions"]])
    return EXIT_OK


def _health_cell(row: Mapping[str, Any]) -> str:
    """The score, except for an execution that failed or was cancelled: its outcome says
    how it ended, and its last score would read as a success."""
    if row["status"] in UNSUCCESSFUL or row.get("healthScore") is None:
        return "-"
    return f"{row['healthScore']} {row['healthStatus']}"


def cmd_status(client: Client, args: argparse.Namespace) -> int:
    status = client.get(_execution_path(args, "/status"))
    if args.json:
        _print_json(status)
        return EXIT_OK
    for line in status_lines(status):
        print(line)
    agents = status["metrics"]["agents"]
    if agents:
        print()
        print_table(["AGENT", "TASKS", "DONE", "FAILED", "RUNNING", "QUEUED", "UTILISATION",
                     "MEAN", "P95"], [_agent_cells(agent) for agent in agents])
    return EXIT_OK


def status_lines(status: Mapping[str, Any]) -> list[str]:
    row, health, eta = status["execution"], status.get("health") or {}, status.get("eta")
    running = (f"{row['inProgressTasks']} running, {row['queuedTasks']} queued"
               if "queuedTasks" in row else
               f"{row['assignedTasks'] + row['inProgressTasks']} running")
    lines = [
        f"execution {row['id']} ({row['strategyName']}, workspace {row['workspaceId']}): "
        f"{row['status']}",
        f"tasks: {finished_tasks(row)}/{row['totalTasks']} finished ({row['completedTasks']} "
        f"completed, {row['failedTasks']} failed, {row['skippedTasks']} skipped, "
        f"{row['cancelledTasks']} cancelled); {running}, {row['pendingTasks']} pending",
    ]
    outcome = health.get("outcome") or row["status"]
    if outcome in UNSUCCESSFUL:
        lines.append(f"health: {outcome}")
    elif health.get("score") is not None:
        issues = "; ".join(health.get("issues") or [])
        lines.append(f"health: {health['score']} ({health['status']})"
                     + (f": {issues}" if issues else ""))
    if eta:
        lines.append(f"eta: {duration(eta['seconds'])} (p90 {duration(eta['p90Seconds'])}), "
                     f"{eta['remainingTasks']} tasks to go")
    return lines


def _agent_cells(agent: Mapping[str, Any]) -> list[str]:
    def optional(key: str, shown: Callable[[Any], str] = str) -> str:
        value = agent.get(key)
        return "-" if value is None else shown(value)

    return [agent["agent"], str(agent["tasks"]), str(agent["completed"]), str(agent["failed"]),
            optional("running"), optional("queued"),
            optional("utilisation", lambda share: f"{share:.0%}"),
            optional("meanDurationMs", lambda ms: f"{ms / 1000:.2f} s"),
            optional("p95DurationMs", lambda ms: f"{ms / 1000:.2f} s")]


def _transition(command: str) -> Command:
    def transition(client: Client, args: argparse.Namespace) -> int:
        answer = client.post(_execution_path(args, f"/{command}"))
        _print_command_answer(answer, args)
        return EXIT_OK

    return transition


def cmd_retry(client: Client, args: argparse.Namespace) -> int:
    suffix = "/retry" if args.task is None else f"/tasks/{quote(args.task, safe='')}/retry"
    _print_command_answer(client.post(_execution_path(args, suffix)), args)
    return EXIT_OK


def _print_command_answer(answer: Mapping[str, Any], args: argparse.Namespace) -> None:
    if args.json:
        _print_json(answer)
    else:
        execution = answer["execution"]
        print(f"execution {execution['id']}: {execution['status']}")


def cmd_watch(client: Client, args: argparse.Namespace) -> int:
    path = _execution_path(args, "/status")
    status = client.get(path)
    display = ProgressDisplay(sys.stderr)
    display.show(status)
    try:
        if status["execution"]["status"] not in ENDED:
            _follow(client, status, path, display)
            status = client.get(path)
    except KeyboardInterrupt:
        display.done()
        again = " ".join([*invoked_as(), "executions", "watch", args.execution_id])
        print(f"stopped watching; execution {args.execution_id} goes on on the server "
              f"(follow it again with: {again})", file=sys.stderr)
        return EXIT_INTERRUPTED
    display.show(status)
    display.done()
    summary = summary_of(status)
    print_summary(summary, sys.stderr)
    if args.json:
        _print_json(summary)
    return summary_exit_code(summary)


def _follow(client: Client, status: Mapping[str, Any], path: str,
            display: ProgressDisplay) -> None:
    """Redraw from the status answer whenever events arrived (at most every `REFRESH`
    seconds) until the execution's stream says it finished."""
    frames = _frames_in_background(client, str(status["execution"]["id"]),
                                   int(status["position"]))
    changed, drawn_at = False, time.monotonic()
    while True:
        try:
            frame = frames.get(timeout=REFRESH)
        except queue.Empty:
            frame = None
        if isinstance(frame, Exception):
            raise frame
        if frame is not None and frame.event in FINISHED_EVENTS:
            return
        changed = changed or frame is not None
        if changed and time.monotonic() - drawn_at >= REFRESH:
            try:
                display.show(client.get(path))
            except Unreachable:  # restarting: the stream reconnects, or gives up, for both
                continue
            changed, drawn_at = False, time.monotonic()


def _frames_in_background(client: Client, execution_id: str, after: int
                          ) -> queue.Queue[Frame | Exception]:
    """The stream's frames (or the error that ended it), read by a daemon thread so that
    the progress line is redrawn between them."""
    frames: queue.Queue[Frame | Exception] = queue.Queue()

    def read() -> None:
        try:
            for frame in client.follow(execution_id, after):
                frames.put(frame)
        except (HttpError, Unreachable) as error:
            frames.put(error)

    threading.Thread(target=read, name="stratexec-watch", daemon=True).start()
    return frames

