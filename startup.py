"""What is checked before anything starts, so that a mistake stops a command at once.

Every bad option or start-up failure (a flag out of range, a port in use, a data directory
that is not one, a store that does not answer) is one line on stderr, `PROG: problem`, and
exit status 2: no traceback, no hang, and nothing recorded. `serve` binds its socket and runs
these checks before it recovers any execution.
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sqlite3
import sys
from pathlib import Path
from typing import NoReturn

import psycopg

from stratexec.settings import StoreSettings

EXIT_INVALID = 2
PROBE_TIMEOUT = 2  # seconds; libpq's connect_timeout takes whole seconds, at least 2


class StartupError(Exception):
    """A problem found before starting: printed as one line, and the command exits 2."""


class Parser(argparse.ArgumentParser):
    """argparse, with a mistake reported on one line (argparse prints the whole usage
    first, which for `serve` is a screenful above the one line that matters)."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_INVALID)


def port(text: str) -> int:
    """An argparse type: a TCP port, 0 meaning any free one."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is from 0 to 65535, got {value}")
    return value


def listen(host: str, wanted: int) -> list[socket.socket]:
    """Listening sockets on every address `host` names (as asyncio's `create_server` binds
    them), bound now so that a port in use is found before anything else starts."""
    try:
        addresses = socket.getaddrinfo(host, wanted, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise StartupError(f"cannot listen on {host}: {error.strerror}") from None
    sockets: list[socket.socket] = []
    chosen = wanted
    try:
        for family, kind, protocol, _, address in dict.fromkeys(addresses):
            sockets.append(_bound(family, kind, protocol, (address[0], chosen, *address[2:])))
            chosen = sockets[0].getsockname()[1]  # port 0: the same free port on every one
    except BaseException:
        for opened in sockets:
            opened.close()
        raise
    return sockets


def _bound(family: int, kind: int, protocol: int, address: tuple[object, ...]
           ) -> socket.socket:
    listener = socket.socket(family, kind, protocol)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio does
        if family == socket.AF_INET6:
            listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        listener.bind(address)
        listener.listen(128)
    except OSError as error:
        listener.close()
        where = f"[{address[0]}]" if family == socket.AF_INET6 else str(address[0])
        reason = ("the port is in use (is stratexec already serving there?)"
                  if error.errno == errno.EADDRINUSE else error.strerror)
        raise StartupError(f"cannot listen on {where}:{address[1]}: {reason}") from None
    listener.setblocking(False)
    return listener


def check_store(store: StoreSettings) -> None:
    """The data directory can be used and the stores answer; creates nothing."""
    try:
        check_data_dir(store.data_dir)
        for path in (store.events_path, store.views_path):
            if path.exists():
                _check_sqlite(path)
    except OSError as error:  # a directory above it that this process may not look into
        raise StartupError(f"cannot use data directory {store.data_dir}: "
                           f"{error.strerror}") from None
    if store.store == "postgres":
        check_postgres(store)


def check_data_dir(directory: Path) -> None:
    """`directory` is a directory this process may read and write, or one it may create."""
    if directory.exists():
        if not directory.is_dir():
            raise StartupError(f"data directory {directory} is not a directory")
        if not os.access(directory, os.R_OK | os.W_OK | os.X_OK):
            raise StartupError(f"data directory {directory} is not readable and writable")
        return
    parent = directory.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise StartupError(f"cannot create data directory {directory}: {parent} is not a "
                           "writable directory")


def _check_sqlite(path: Path) -> None:
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            connection.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        raise StartupError(f"cannot read {path}: {error}") from None


def check_postgres(store: StoreSettings) -> None:
    """One connection to the store's own database (`StoreSettings.conninfo`, from
    eventsourcing's variables): an unreachable server is said at once (the store's pool
    would wait 30 s, retrying, before it gave up)."""
    where = f"{store.postgres.get('POSTGRES_HOST', '')}:{store.postgres.get('POSTGRES_PORT', '')}"
    try:
        psycopg.connect(store.conninfo, connect_timeout=PROBE_TIMEOUT).close()
    except psycopg.Error as error:
        reason = " ".join(str(error).split())  # libpq's message spans lines
        raise StartupError(f"cannot reach PostgreSQL at {where}: {reason}") from None
