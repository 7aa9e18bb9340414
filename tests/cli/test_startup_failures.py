"""Every bad option or start-up failure of `stratexec serve` (and `run`/`resume`) exits 2
within two seconds with one line naming the problem: no traceback, no hang, nothing recorded.
The socket is bound and everything checked before unfinished executions are recovered, so
a failed start never runs (or interrupts) one.

Each test starts the real command. The two seconds are counted from the end of its imports
(`cli_support.TIMED`) to the end of the process: the imports alone take from about 0.9 s on
an idle machine to several seconds on a busy one. A process still running after a minute
counts as hung."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import ServerProcess
from cli_support import (
    ROOT,
    SMALL_DEMO,
    stored_events,
    timed_command,
    unfinished_execution,
)

BOUND = 2.0  # seconds from the end of the imports to the exit
HUNG = 60.0


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding an execution killed mid-attempt: a start that went as far
    as recovering it would record its attempt as interrupted and start a new one."""
    data_dir = tmp_path_factory.mktemp("interrupted")
    unfinished_execution(data_dir)
    return data_dir


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def fails_at_once(*args: str, env: dict[str, str] | None = None) -> str:
    """Run the command; it must exit 2 within two seconds of its imports, print nothing on
    stdout and one line on stderr without a traceback. That line."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "seconds"
        process = subprocess.Popen(timed_command(report, *args), cwd=ROOT,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=None if env is None else {**os.environ, **env})
        try:
            stdout, stderr = process.communicate(timeout=HUNG)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
            raise AssertionError(f"still running after {HUNG:.0f} s: {stderr}") from None
        seconds = float(report.read_text())
    assert (process.returncode, stdout) == (2, ""), stderr
    assert seconds < BOUND, f"exited {seconds:.2f} s after its imports"
    assert "Traceback" not in stderr
    assert len(stderr.splitlines()) == 1, stderr
    return stderr.strip()


def test_a_port_in_use_exits_2_before_recovering_anything(
        interrupted: Path, taken_port: int) -> None:
    before = stored_events(interrupted)
    line = fails_at_once("serve", "--port", str(taken_port),
                         "--data-dir", str(interrupted))
    assert line == (f"stratexec: cannot listen on 127.0.0.1:{taken_port}: the port is in use "
                    "(is stratexec already serving there?)")
    assert stored_events(interrupted) == before  # not recovered: nothing interrupted


@pytest.mark.parametrize(("option", "problem"), [
    (["--port", "99999"], "argument --port: a port is from 0 to 65535, got 99999"),
    (["--port", "http"], "argument --port: not a port number: 'http'"),
    (["--concurrency", "0"], "argument --concurrency: expected 1 or more, got '0'"),
    (["--max-attempts", "-1"], "argument --max-attempts: expected 1 or more, got '-1'"),
    (["--health-interval", "0"], "argument --health-interval: expected more than 0 seconds, "
                                 "got '0'"),
    (["--retry-interval", "nan"], "argument --retry-interval: expected a finite number, "
                                  "got 'nan'"),
    (["--log-level", "loud"], "argument --log-level: invalid choice: 'loud'"),
])
def test_a_bad_option_exits_2_naming_it(interrupted: Path,
                                        option: list[str], problem: str) -> None:
    before = stored_events(interrupted)
    line = fails_at_once("serve", *option, "--data-dir", str(interrupted))
    assert line.startswith(f"stratexec serve: {problem}"), line
    assert line.endswith("(see stratexec serve --help)")
    assert stored_events(interrupted) == before


def test_the_same_options_of_run_and_resume_exit_2_too(tmp_path: Path
                                                       ) -> None:
    line = fails_at_once("run", str(SMALL_DEMO), "--concurrency", "0",
                         "--data-dir", str(tmp_path / "data"))
    assert line.startswith("stratexec run: argument --concurrency: expected 1 or more")
    line = fails_at_once("resume", "--max-attempts", "0")
    assert line.startswith("stratexec resume: argument --max-attempts: expected 1 or more")
    assert not (tmp_path / "data").exists()


def test_a_data_directory_that_is_a_file_exits_2(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "var"
    not_a_directory.write_text("a file\n")
    for args in (["serve", "--port", "0"], ["run", str(SMALL_DEMO)], ["resume"]):
        line = fails_at_once(*args, "--data-dir", str(not_a_directory))
        assert line == f"stratexec: data directory {not_a_directory} is not a directory"
    line = fails_at_once("serve", "--port", "0",
                         "--data-dir", str(not_a_directory / "below"))
    assert line == (f"stratexec: cannot create data directory {not_a_directory / 'below'}: "
                    f"{not_a_directory} is not a writable directory")
    assert not_a_directory.read_text() == "a file\n"


def test_an_unreadable_event_store_exits_2(tmp_path: Path) -> None:
    (tmp_path / "events.sqlite").write_bytes(b"not a database, " * 512)
    line = fails_at_once("serve", "--port", "0", "--data-dir", str(tmp_path))
    assert line == f"stratexec: cannot read {tmp_path / 'events.sqlite'}: file is not a database"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.sqlite"]


@pytest.mark.postgres
def test_an_unreachable_database_exits_2(tmp_path: Path) -> None:
    """PostgreSQL refuses on the wrong port and is not found at the wrong host; the store's
    own pool would retry for 30 s before saying anything."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        free = int(probe.getsockname()[1])
    wrong = {"STRATEXEC_STORE": "postgres", "POSTGRES_HOST": "127.0.0.1",
             "POSTGRES_PORT": str(free), "POSTGRES_DBNAME": "stratexec",
             "POSTGRES_USER": "postgres", "POSTGRES_PASSWORD": "x"}
    line = fails_at_once("serve", "--port", "0", "--data-dir", str(tmp_path),
                         env=wrong)
    assert line.startswith(f"stratexec: cannot reach PostgreSQL at 127.0.0.1:{free}: ")
    assert "Connection refused" in line
    line = fails_at_once("run", str(SMALL_DEMO), "--data-dir", str(tmp_path),
                         env={**wrong, "POSTGRES_HOST": "nowhere.invalid"})
    assert line.startswith("stratexec: cannot reach PostgreSQL at nowhere.invalid:")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("text", "problem"), [
    (None, "cannot read"),
    ("[agents.email\n", "not valid TOML"),
    ("[agents.email]\nhandler = 'carrier-pigeon'\n", "unknown handler 'carrier-pigeon'"),
])
def test_a_bad_config_file_exits_2(interrupted: Path, tmp_path: Path,
                                   text: str | None, problem: str) -> None:
    config = tmp_path / "stratexec.toml"
    if text is not None:
        config.write_text(text)
    before = stored_events(interrupted)
    line = fails_at_once("serve", "--port", "0", "--config", str(config),
                         "--data-dir", str(interrupted))
    assert line.startswith(f"stratexec: {config}: "), line
    assert problem in line
    assert stored_events(interrupted) == before


def test_a_data_directory_in_use_exits_2_and_the_running_server_is_unaffected(
        tmp_path: Path) -> None:
    server = ServerProcess.start(tmp_path)
    try:
        before = stored_events(tmp_path)
        line = fails_at_once("serve", "--port", "0", "--data-dir", str(tmp_path))
        assert line == (f"stratexec: {tmp_path} is in use by pid {server.process.pid}; stop "
                        "it first, or use another --data-dir")
        assert stored_events(tmp_path) == before
        assert server.process.poll() is None
    finally:
        server.close()


def test_a_good_start_recovers_the_execution_a_failed_one_left_alone(
        interrupted: Path, tmp_path: Path) -> None:
    """The counterpart of the failures above: the same directory, started properly,
    recovers its execution (and logs it): the failed starts did not merely fail to look."""
    before = stored_events(interrupted)
    server = ServerProcess.start(interrupted, "--demo-duration", "60:60")
    try:
        (line,) = server.log_lines("execution recovered")
        assert "stratexec.executions" in line
        deadline = time.monotonic() + 30
        while not any(topic.endswith("TaskInterrupted") for _, topic in
                      stored_events(interrupted)[len(before):]):
            assert time.monotonic() < deadline, "the recovered attempt was never interrupted"
            time.sleep(0.05)
    finally:
        server.close()
