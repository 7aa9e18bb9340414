"""The live progress of an execution in a terminal, for `run`, `resume`, `retry` and
`executions watch` alike.

`progress_line` renders an execution's status (the shape of `GET /api/executions/{id}/status`
without its tasks) in at most a given width: the per-agent detail shrinks first, then the
bar, then the ETA's range and the counts' breakdown, and only then is the line cut. On a
terminal `ProgressDisplay` redraws that one line in place (`\\r` and erase-line), sized to the
terminal's width at each draw; elsewhere (a file, a pipe) it prints a plain line every few
seconds while something changed. A field the server does not send yet (`eta`, `queuedTasks`,
an agent's `running` and `queued`) is left out, never guessed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

# The line's forms, from the most to the least detailed: (bar width, agents' detail, the
# ETA's p90 range, the counts in full). The agents' detail goes first, then the bar.
FORMS = (
    (30, "full", True, True), (30, "counts", True, True), (30, "none", True, True),
    (20, "none", True, True), (10, "none", True, True), (0, "none", True, True),
    (0, "none", False, True), (10, "none", True, False), (0, "none", True, False),
    (0, "none", False, False),
)
PLAIN_INTERVAL = 5.0  # seconds between the plain lines written when not on a terminal
DEFAULT_COLUMNS = 80
ERASE_LINE = "\r\x1b[2K"


def progress_line(status: Mapping[str, Any], width: int | None = None) -> str:
    """One line of the execution's progress, no longer than `width` - 1 characters (the
    last column is left free: a terminal that wraps there would leave the line behind)."""
    if width is None:
        return _compose(status, *FORMS[0])
    room = max(width - 1, 1)
    for form in FORMS:
        line = _compose(status, *form)
        if len(line) <= room:
            return line
    return line[:room - 1] + "…"


def _compose(status: Mapping[str, Any], bar_width: int, detail: str, with_range: bool,
             in_full: bool) -> str:
    row = status["execution"]
    counts = _counts(row) if in_full else _short_counts(row)
    parts = [part for part in (_bar(row, bar_width), f"{row['status']:9}", counts,
                               _eta(status.get("eta"), with_range)) if part]
    agents = _agents((status.get("metrics") or {}).get("agents") or [], detail)
    return " ".join(parts) + (f" | {agents}" if agents else "")


def finished_tasks(row: Mapping[str, Any]) -> int:
    """Tasks that will not run again: completed, failed, skipped or cancelled."""
    return int(row.get("finishedTasks", row["completedTasks"] + row["failedTasks"]
                       + row["skippedTasks"] + row["cancelledTasks"]))


def _bar(row: Mapping[str, Any], width: int) -> str:
    if width == 0:
        return ""
    filled = width * finished_tasks(row) // max(row["totalTasks"], 1)
    return f"[{'#' * filled}{'.' * (width - filled)}]"


def _counts(row: Mapping[str, Any]) -> str:
    """Finished (by outcome), then running, queued at their agent, and pending."""
    counts = (f"done {row['completedTasks']} failed {row['failedTasks']} "
              f"skipped {row['skippedTasks']}")
    if row["cancelledTasks"]:
        counts += f" cancelled {row['cancelledTasks']}"
    if "queuedTasks" in row:
        counts += f" running {row['inProgressTasks']} queued {row['queuedTasks']}"
    else:  # a server without the split counts an assigned task as running
        counts += f" running {row['assignedTasks'] + row['inProgressTasks']}"
    return counts + f" pending {row['pendingTasks']} of {row['totalTasks']}"


def _short_counts(row: Mapping[str, Any]) -> str:
    """Finished of planned, the failures among them, and what runs now."""
    text = f"{finished_tasks(row)}/{row['totalTasks']} finished"
    if row["failedTasks"]:
        text += f" ({row['failedTasks']} failed)"
    running = row["inProgressTasks"] + (0 if "queuedTasks" in row else row["assignedTasks"])
    text += f", {running} running"
    return text + (f", {row['queuedTasks']} queued" if "queuedTasks" in row else "")


def _eta(eta: Mapping[str, Any] | None, with_range: bool) -> str:
    if not eta:
        return ""
    text = f"eta {duration(eta['seconds'])}"
    if with_range and eta.get("p90Seconds") is not None:
        text += f" (p90 {duration(eta['p90Seconds'])})"
    return text


def _agents(agents: Sequence[Mapping[str, Any]], detail: str) -> str:
    if detail == "none":
        return ""
    shown = []
    for agent in agents:
        text = f"{agent['agent']} {agent['completed']}/{agent['tasks']}"
        if detail == "full" and "running" in agent:
            text += f" ({agent['running']} running, {agent.get('queued', 0)} queued)"
        shown.append(text)
    return " ".join(shown)


def duration(seconds: float) -> str:
    """45s, 3m05s, 2h07m."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class ProgressDisplay:
    """The progress line on `out`: redrawn in place on a terminal, else a plain line every
    `interval` seconds while it changes (and the last one at `done`)."""

    def __init__(self, out: TextIO, interval: float = PLAIN_INTERVAL) -> None:
        self.out = out
        self.tty = out.isatty()
        self.interval = interval
        self.status: Mapping[str, Any] | None = None
        self.drawn = False
        self.printed = ""
        self.printed_at = -interval

    def show(self, status: Mapping[str, Any]) -> None:
        self.status = status
        if self.tty:
            self.out.write(ERASE_LINE + progress_line(status, terminal_width(self.out)))
            self.out.flush()
            self.drawn = True
        elif time.monotonic() - self.printed_at >= self.interval:
            self._print()

    def done(self) -> None:
        """End the line (a terminal's cursor moves below it) before other output."""
        if self.tty and self.drawn:
            self.out.write("\n")
            self.out.flush()
            self.drawn = False
        elif not self.tty:
            self._print()

    def _print(self) -> None:
        if self.status is None:
            return
        line = progress_line(self.status)
        if line != self.printed:
            print(line, file=self.out, flush=True)
            self.printed = line
        self.printed_at = time.monotonic()


def terminal_width(out: TextIO) -> int:
    """The width of the terminal `out` writes to, read again at each draw (a resized
    window redraws at its new width)."""
    try:
        return os.get_terminal_size(out.fileno()).columns or DEFAULT_COLUMNS
    except (OSError, ValueError):
        return shutil.get_terminal_size((DEFAULT_COLUMNS, 24)).columns


# ------------------------------------------------------- the summary and tables

def summary_of(status: Mapping[str, Any]) -> dict[str, Any]:
    """A status answer as the summary `run --json` prints."""
    row, health = status["execution"], status.get("health") or {}
    return {"executionId": row["id"], "status": row["status"],
            **{key: row[key] for key in ("totalTasks", "completedTasks", "failedTasks",
                                         "skippedTasks")},
            "health": {"score": health.get("score"), "status": health.get("status")}}


def summary_exit_code(summary: dict[str, Any]) -> int:
    """0 when the execution completed with every task done, else 1."""
    done = summary["status"] == "completed" and (
        summary["completedTasks"] == summary["totalTasks"])
    return 0 if done else 1


def print_summary(summary: dict[str, Any], out: TextIO) -> None:
    """The outcome first; the health score only beside a success (a failed or cancelled
    execution's last score says nothing of how it ended)."""
    health = summary["health"]
    score = (f"; health {health['score']} ({health['status']})"
             if summary["status"] == "completed" else "")
    print(f"execution {summary['executionId']} {summary['status']}: "
          f"{summary['completedTasks']}/{summary['totalTasks']} completed, "
          f"{summary['failedTasks']} failed, {summary['skippedTasks']} skipped{score}",
          file=out)


def print_table(header: list[str], rows: list[list[str]], out: TextIO | None = None
                ) -> None:
    """Columns as wide as their widest cell, two spaces apart (on stdout by default)."""
    out = out or sys.stdout
    table = [header, *rows]
    widths = [max(len(line[column]) for line in table) for column in range(len(header))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)
                        ).rstrip(), file=out)


# -------------------------------------------------------------- the resume hint

def invoked_as(argv0: str | None = None, executable: str | None = None) -> list[str]:
    """The command as the user ran it, to print commands that work as typed:
    `python -m stratexec` (with this interpreter), a script by the path given, or the bare
    name when that path is what PATH finds for it."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    executable = sys.executable if executable is None else executable
    program = Path(argv0)
    if program.name == "__main__.py":
        return [_relative(executable), "-m", "stratexec"]
    if program.suffix == ".py":
        return [_relative(executable), argv0]
    if program.is_absolute() and shutil.which(program.name) == argv0:
        return [program.name]
    return [argv0]


def _relative(path: str) -> str:
    try:
        relative = str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path
    return relative if "/" in relative else f"./{relative}"  # not a name for PATH to find


def resume_command(execution_id: object, data_dir: str | None, config: str | None) -> str:
    """`stratexec resume ID` as the user must type it: the same program, the same data
    directory and the same config file as the interrupted command."""
    words = [*invoked_as(), "resume", str(execution_id)]
    if data_dir is not None:
        words += ["--data-dir", data_dir]
    if config is not None:
        words += ["--config", config]
    return shlex.join(words)
