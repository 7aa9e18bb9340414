"""The wheel as a user gets it: built from this checkout, installed (not editable) into a
fresh virtual environment, and started from a folder that has nothing to do with stratexec.

The fresh environment gets only the wheel (`pip install --no-deps`); its dependencies come
from the project's own .venv through a `.pth` file that appends that site-packages to
`sys.path`. The `.pth` files inside an appended folder are not processed, so the editable
install's import hook stays off and `stratexec` can only come from the wheel.
"""

from __future__ import annotations

import base64
import configparser
import hashlib
import http.client
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
DIST_INFO = f"stratexec-{VERSION}.dist-info"
FIRST_START_EXAMPLES = ("product-launch.json", "small-demo.json")
# What a build or a run leaves in a checkout; none of it is source.
NOT_SOURCE = (".git", ".venv", "build", "dist", "var", "*.egg-info", "__pycache__",
              ".mypy_cache", ".ruff_cache", ".pytest_cache", "*.sqlite", "*.sqlite-*")
NOT_PACKAGED = {"tests", "scripts", ".ci"}  # folders of the repository, not of the package
TIMEOUT = 180  # seconds, for any one subprocess
# A Django project's files: importing either of them would mean the folder shadows stratexec.
DECOYS = {name: f'raise RuntimeError("{name} of the current folder was imported")\n'
          for name in ("settings.py", "server.py")}


@dataclass(frozen=True)
class Fresh:
    """A virtual environment holding the wheel, and how to run its commands."""

    bin: Path
    site_packages: Path
    env: dict[str, str]

    def run(self, *command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, cwd=cwd, env=self.env, capture_output=True, text=True,
                              timeout=TIMEOUT, check=False)


def run(*command: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(part) for part in command], cwd=cwd, capture_output=True,
                            text=True, timeout=TIMEOUT, check=False)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the checkout: a build in place would leave build/
    behind, whose stale modules setuptools would put into the next wheel."""
    source = tmp_path_factory.mktemp("source") / "stratexec"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    out = tmp_path_factory.mktemp("wheelhouse")
    # Without build isolation (the test extra brings setuptools), so no index is needed.
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index", "--no-build-isolation",
        "--check-build-dependencies", "--wheel-dir", out, source)
    (built,) = out.glob("*.whl")
    assert built.name == f"stratexec-{VERSION}-py3-none-any.whl"
    return built


@pytest.fixture(scope="module")
def fresh(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Fresh:
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    site_packages = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"
                             ).stdout.strip())
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
        wheel)
    ours = dict.fromkeys(sysconfig.get_path(name) for name in ("purelib", "platlib"))
    (site_packages / "stratexec-test-dependencies.pth").write_text("\n".join(ours) + "\n")
    return Fresh(venv / "bin", site_packages, clean_env())


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """An unrelated current folder, with a Django project's settings.py and server.py."""
    folder = tmp_path / "mysite"
    folder.mkdir()
    for name, text in DECOYS.items():
        (folder / name).write_text(text)
    return folder


def package_files() -> set[str]:
    """What the wheel must hold under stratexec/: every module of the checkout outside
    tests/ and scripts/, py.typed, the dashboard's files, and the examples (strategies and
    configuration files)."""
    examples = [*(ROOT / "examples").glob("*.json"), *(ROOT / "examples").glob("*.toml")]
    wanted = {"py.typed", *(f"examples/{p.name}" for p in examples)}
    ignored = shutil.ignore_patterns(*NOT_SOURCE)
    for folder, dirs, files in os.walk(ROOT):
        here = Path(folder).relative_to(ROOT)
        skip = ignored(folder, dirs) | (NOT_PACKAGED if here == Path() else set())
        dirs[:] = [d for d in dirs if d not in skip]
        in_static = here.parts[:1] == ("static",)
        wanted |= {(here / f).as_posix() for f in files
                   if f not in ignored(folder, files) and (in_static or f.endswith(".py"))}
    return wanted


def record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def test_the_wheel_holds_the_package_and_nothing_else(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        read = {name: archive.read(name) for name in names}
    outside = {n for n in names if not n.startswith(("stratexec/", f"{DIST_INFO}/"))}
    assert not outside, f"top-level entries other than stratexec: {sorted(outside)}"
    assert read[f"{DIST_INFO}/top_level.txt"].decode().split() == ["stratexec"]

    wanted = {f"stratexec/{name}" for name in package_files()}
    assert {"stratexec/static/index.html", "stratexec/static/css/dashboard.css",
            "stratexec/static/js/main.js", "stratexec/examples/product-launch.json",
            "stratexec/examples/small-demo.json", "stratexec/__main__.py"} <= wanted
    shipped = {n for n in names if n.startswith("stratexec/")}
    assert not wanted - shipped, f"missing from the wheel: {sorted(wanted - shipped)}"
    assert not shipped - wanted, f"not source files of the checkout: {sorted(shipped - wanted)}"
    for name in wanted:
        assert read[name] == (ROOT / name.removeprefix("stratexec/")).read_bytes(), name

    # RECORD lists every file exactly once with its hash and size (itself without either).
    rows = [line.rsplit(",", 2) for line in read[f"{DIST_INFO}/RECORD"].decode().splitlines()]
    assert len(rows) == len({path for path, _, _ in rows}) == len(names)
    for path, digest, size in rows:
        if path == f"{DIST_INFO}/RECORD":
            assert (digest, size) == ("", "")
        else:
            assert (digest, size) == (record_hash(read[path]), str(len(read[path]))), path

    metadata = read[f"{DIST_INFO}/METADATA"].decode()
    assert re.search(r"^Name: stratexec$", metadata, re.MULTILINE)
    assert re.search(rf"^Version: {re.escape(VERSION)}$", metadata, re.MULTILINE)
    entry_points = configparser.ConfigParser()
    entry_points.read_string(read[f"{DIST_INFO}/entry_points.txt"].decode())
    assert dict(entry_points["console_scripts"]) == {"stratexec": "stratexec.cli:main"}


def test_the_fresh_venv_imports_the_installed_wheel(fresh: Fresh, elsewhere: Path) -> None:
    probe = ("import json, sys, aiohttp, stratexec, stratexec.server as server; print(json.dumps("
             "[stratexec.__file__, str(server.STATIC), str(server.EXAMPLES), aiohttp.__file__,"
             " any('editable' in name for name in sys.modules)]))")
    result = fresh.run(str(fresh.bin / "python"), "-c", probe, cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    module, static, examples, dependency, editable_hook = json.loads(result.stdout)
    installed = fresh.site_packages / "stratexec"
    assert Path(module) == installed / "__init__.py"
    assert not Path(module).is_relative_to(ROOT)
    assert (Path(static), Path(examples)) == (installed / "static", installed / "examples")
    assert Path(dependency).is_relative_to(sysconfig.get_path("purelib"))  # through the .pth
    assert editable_hook is False
    direct_url = json.loads((fresh.site_packages / DIST_INFO / "direct_url.json").read_text())
    assert "archive_info" in direct_url, direct_url  # installed from the wheel, not a folder
    assert "dir_info" not in direct_url


def test_the_console_script_runs(fresh: Fresh, elsewhere: Path) -> None:
    result = fresh.run(str(fresh.bin / "stratexec"), "--help", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout
    assert result.stdout.startswith("usage: stratexec")


def get(base: str, path: str, headers: dict[str, str] | None = None
        ) -> tuple[int, http.client.HTTPMessage, bytes]:
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


@dataclass
class Served:
    process: subprocess.Popen[str]
    url: str
    token: str


@pytest.fixture
def served(fresh: Fresh, elsewhere: Path, tmp_path: Path) -> Iterator[Served]:
    """`python -m stratexec serve` of the fresh venv, started in the unrelated folder."""
    stderr = (tmp_path / "stderr.txt").open("w+")
    process = subprocess.Popen(
        [str(fresh.bin / "python"), "-m", "stratexec", "serve", "--port", "0",
         "--data-dir", str(tmp_path / "data")],
        cwd=elsewhere, env=fresh.env, stdout=subprocess.PIPE, stderr=stderr, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def read_stdout() -> None:  # also drains stdout for as long as the server runs
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put("")  # end of output

    reader = threading.Thread(target=read_stdout, daemon=True)
    reader.start()
    try:
        try:
            line = lines.get(timeout=60)
        except queue.Empty:
            line = "(nothing within 60 s)"
        found = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=(sx_\S+)", line)
        stderr.seek(0)
        assert found, f"no dashboard link in {line!r}; stderr:\n{stderr.read()}"
        yield Served(process, found.group(1), found.group(2))
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(30)
        reader.join(30)
        stderr.close()


def test_the_installed_server_serves_the_dashboard_and_the_examples(
        served: Served, fresh: Fresh, elsewhere: Path, tmp_path: Path) -> None:
    installed = fresh.site_packages / "stratexec"

    # The link sets the cookie and drops the token from the address; the page follows.
    status, headers, _ = get(served.url, f"/?token={served.token}")
    assert status == 303
    assert headers["Location"] == "/"
    assert f"stratexec_token={served.token}" in headers["Set-Cookie"]
    status, headers, body = get(served.url, "/", {"Cookie": f"stratexec_token={served.token}"})
    assert status == 200
    assert headers.get_content_type() == "text/html"
    assert body == (installed / "static" / "index.html").read_bytes()
    assert b"<title>stratexec</title>" in body

    # Every file of the dashboard, the ones the page links to among them.
    static = sorted(p for p in (installed / "static").rglob("*") if p.is_file())
    linked = set(re.findall(rb'(?:href|src)="(/static/[^"]+)"', body))
    assert {b"/static/css/dashboard.css", b"/static/js/main.js"} <= linked
    assert linked <= {f"/static/{p.relative_to(installed / 'static').as_posix()}".encode()
                      for p in static}
    for path in static:
        status, _, content = get(served.url, f"/static/{path.relative_to(installed / 'static')}")
        assert (status, content) == (200, path.read_bytes()), path

    # The first start defined the example strategies in the demo workspace.
    status, headers, body = get(served.url, "/api/strategies",
                                {"Authorization": f"Bearer {served.token}"})
    assert status == 200, body
    strategies: list[dict[str, Any]] = json.loads(body)["strategies"]
    examples = {json.loads((ROOT / "examples" / name).read_text())["name"]
                for name in FIRST_START_EXAMPLES}
    assert {s["name"] for s in strategies} == examples
    assert {s["workspaceId"] for s in strategies} == {"demo"}

    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(30) == 0
    assert sorted(os.listdir(elsewhere)) == sorted(DECOYS)  # nothing written or compiled here
    assert (tmp_path / "data" / "events.sqlite").exists()
