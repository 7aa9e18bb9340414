"""`stratexec run` in a pseudo-terminal 80 columns wide: the progress line fits, is redrawn
in place (one line), and Ctrl-C prints a resume command that works as printed."""

from __future__ import annotations

import fcntl
import os
import re
import select
import shlex
import signal
import struct
import subprocess
import termios
import time
from pathlib import Path

from cli_support import FAST, PRODUCT_LAUNCH, ROOT, command, stored_events, wait_for_topic

COLUMNS = 80
ERASE = "\x1b[2K"


class Terminal:
    """A process whose stdin, stdout and stderr are a pseudo-terminal of a set size."""

    def __init__(self, args: list[str], columns: int = COLUMNS) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        self.process = subprocess.Popen(args, cwd=ROOT, stdin=slave, stdout=slave,
                                        stderr=slave, start_new_session=True)
        os.close(slave)
        self.output = b""

    def read_until(self, done: float | None = None, timeout: float = 120) -> str:
        """Everything written until the process ends (or `timeout`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # EIO: the other side is closed
                    break
                if not chunk:
                    break
                self.output += chunk
            elif self.process.poll() is not None:
                break
        self.process.wait(30)
        os.close(self.master)
        return self.output.decode()


def screen_lines(output: str) -> list[list[str]]:
    """The output's lines, each as the segments a carriage return redraws over."""
    text = output.replace("\r\n", "\n")
    return [[segment.replace(ERASE, "") for segment in line.split("\r")]
            for line in text.split("\n")]


def test_the_progress_line_fits_80_columns_and_is_redrawn_in_place(tmp_path: Path) -> None:
    terminal = Terminal(command("run", str(PRODUCT_LAUNCH), *FAST,
                                "--data-dir", str(tmp_path)))
    output = terminal.read_until()
    assert terminal.process.returncode == 0, output
    lines = screen_lines(output)
    progress = [line for line in lines if any(" done " in s or " finished" in s for s in line)]
    assert len(progress) == 1, lines  # one line, redrawn: never a new line per refresh
    draws = [segment for segment in progress[0] if segment]
    assert len(draws) >= 3
    assert all(len(draw) < COLUMNS for draw in draws), max(draws, key=len)
    assert all(ERASE + draw in output for draw in draws)  # each redraw erases the line first
    assert re.match(r"(\[#+\] )?completed done 38 failed 0 skipped 0 running 0 queued 0 "
                    r"pending 0 of 38", draws[-1]), draws[-1]  # what fits of the full line
    queued = [draw for draw in draws
              if re.search(r"running \d+ queued \d+ |\d+ running, \d+ queued", draw)]
    assert queued, draws  # running and queued apart, as the read models now count them


def test_ctrl_c_prints_the_resume_command_as_it_must_be_typed(tmp_path: Path) -> None:
    data_dir = tmp_path / "my data"
    terminal = Terminal(command("run", str(PRODUCT_LAUNCH), "--demo-duration", "0.3:0.5",
                                "--data-dir", str(data_dir)))
    wait_for_topic(data_dir, "TaskSucceeded", terminal.process)
    os.killpg(terminal.process.pid, signal.SIGINT)  # as the terminal's Ctrl-C does
    output = terminal.read_until()
    assert terminal.process.returncode == 130, output
    found = re.search(r"continue it with: (.+)", output)
    assert found, output
    printed = found.group(1).strip()
    python = os.path.relpath(Path(command()[0]), ROOT)
    assert printed.startswith(f"{python} -m stratexec resume ")
    assert printed.endswith(f" --data-dir '{data_dir}'")
    before = len(stored_events(data_dir))
    resumed = subprocess.run(shlex.split(printed), cwd=ROOT, capture_output=True, text=True,
                             timeout=120, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert "completed: 38/38 completed" in resumed.stderr
    assert len(stored_events(data_dir)) > before
