"""The progress line as a pure function of a status answer: what it shows, what it drops
first when the terminal is narrow, and what it leaves out when the server does not say."""

from __future__ import annotations

import io
from typing import Any

import pytest

from stratexec.progress import ProgressDisplay, duration, invoked_as, progress_line


def status(**execution: Any) -> dict[str, Any]:
    row = {"id": "e1", "status": "running", "totalTasks": 300, "pendingTasks": 150,
           "assignedTasks": 0, "queuedTasks": 40, "inProgressTasks": 8, "completedTasks": 90,
           "failedTasks": 7, "skippedTasks": 3, "cancelledTasks": 2, **execution}
    agents = [{"agent": name, "tasks": 50, "completed": 15, "running": 4, "queued": 20}
              for name in ("email", "content", "research", "analysis", "scheduling",
                           "coordination")]
    return {"execution": row, "metrics": {"agents": agents},
            "eta": {"seconds": 185.2, "p90Seconds": 250.0, "remainingTasks": 200}}


def test_the_whole_line_when_there_is_room() -> None:
    line = progress_line(status())
    assert line.startswith("[##########....................] running   ")
    assert ("done 90 failed 7 skipped 3 cancelled 2 running 8 queued 40 pending 150 of 300 "
            "eta 3m05s (p90 4m10s) | email 15/50 (4 running, 20 queued) content") in line


@pytest.mark.parametrize("width", [40, 60, 80, 100, 120, 160, 200, 400])
def test_it_never_reaches_the_last_column(width: int) -> None:
    assert len(progress_line(status(), width)) < width


def test_the_agents_detail_goes_first_then_the_bar() -> None:
    full = progress_line(status())
    counts = progress_line(status(), 240)
    assert "email 15/50 content 15/50" in counts
    assert "running," not in counts
    assert len(counts) < 240 < len(full)
    at_130 = progress_line(status(), 130)
    assert "|" not in at_130  # no agents
    assert at_130.startswith("[###")  # the bar, shortened, still there
    assert "eta 3m05s (p90 4m10s)" in at_130
    at_80 = progress_line(status(), 80)
    assert at_80 == "running   102/300 finished (7 failed), 8 running, 40 queued eta 3m05s"
    narrow = progress_line(status(), 40)
    assert narrow.endswith("…")  # cut, at the very last
    assert len(narrow) == 39
    assert narrow.startswith("running   102/300 finished")


def test_fields_the_server_does_not_send_are_left_out() -> None:
    """A server without the queued split, the ETA or the agents' running counts."""
    old = status(assignedTasks=40)
    del old["execution"]["queuedTasks"]
    del old["eta"]
    for agent in old["metrics"]["agents"]:
        del agent["running"], agent["queued"]
    line = progress_line(old)
    assert "running 48 pending" in line  # assigned counted as running, as that server does
    assert "queued" not in line
    assert "eta" not in line
    assert "email 15/50 content" in line


def test_a_null_eta_shows_none() -> None:
    assert "eta" not in progress_line({**status(), "eta": None})


@pytest.mark.parametrize(("seconds", "text"), [
    (0.4, "0s"), (59.4, "59s"), (60, "1m00s"), (185.2, "3m05s"), (7620, "2h07m")])
def test_durations(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_off_a_terminal_a_plain_line_every_interval_and_the_last_at_the_end() -> None:
    out = io.StringIO()
    display = ProgressDisplay(out, interval=3600)
    display.show(status(completedTasks=1))
    display.show(status(completedTasks=2))  # within the interval: not printed
    display.show(status(completedTasks=3))
    display.done()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "done 1 " in lines[0]
    assert "done 3 " in lines[1]
    assert "\r" not in out.getvalue()


def test_the_command_as_it_was_invoked(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    python = str(tmp_path / ".venv" / "bin" / "python")
    assert invoked_as("/x/stratexec/__main__.py", python) == [".venv/bin/python", "-m",
                                                              "stratexec"]
    assert invoked_as(".venv/bin/stratexec", python) == [".venv/bin/stratexec"]
    assert invoked_as("/nowhere/on/path/stratexec", python) == ["/nowhere/on/path/stratexec"]
    on_path = tmp_path / "bin"
    on_path.mkdir()
    script = on_path / "stratexec"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(on_path))
    assert invoked_as(str(script), python) == ["stratexec"]
