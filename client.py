"""A small client of a running stratexec server, for `stratexec executions ...`.

Plain `urllib` calls with a bearer token: JSON in, JSON out, and an error answer raised as
`HttpError` carrying the server's own code and message. `follow` reads an execution's SSE
stream and reconnects by itself with `Last-Event-ID`, so that a restart of the server (or a
dropped connection) loses and repeats no event.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

TIMEOUT = 30.0  # seconds for an answer
STREAM_TIMEOUT = 45.0  # seconds of silence before a stream counts as lost (pings: 15 s)
RECONNECT_DELAY = 0.5
RECONNECT_FOR = 60.0  # seconds of failed reconnections before giving up


class HttpError(Exception):
    """The server answered with an error: its status, code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class Unreachable(Exception):
    """No answer from the server (not listening, or gone)."""


@dataclass(frozen=True)
class Frame:
    id: int | None
    event: str
    data: Any


@dataclass(frozen=True)
class Client:
    server: str  # http://host:port
    token: str

    def get(self, path: str, query: Mapping[str, Any] | None = None) -> Any:
        wanted = {key: value for key, value in (query or {}).items() if value is not None}
        return self._call("GET", path + (f"?{urlencode(wanted)}" if wanted else ""))

    def post(self, path: str, body: Any = None) -> Any:
        return self._call("POST", path, body)

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.server.rstrip("/") + path, data=data,
                                         method=method, headers=self._headers())
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise _http_error(error) from None
        except (urllib.error.URLError, OSError) as error:
            raise Unreachable(f"no answer from {self.server}: {_reason(error)}") from None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}

    def follow(self, execution_id: str, after: int) -> Iterator[Frame]:
        """The execution's events after log position `after`, for as long as the caller
        reads; a lost connection is made again from the last event received.
        `Unreachable` once reconnecting has failed for `RECONNECT_FOR` seconds; `HttpError`
        when the server refuses the stream."""
        last = after
        failing_since: float | None = None
        while True:
            try:
                for frame in self._stream(execution_id, last):
                    failing_since = None
                    if frame.id is not None:
                        last = frame.id
                    yield frame
            except Unreachable:
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since > RECONNECT_FOR:
                    raise
            time.sleep(RECONNECT_DELAY)  # the stream ended or broke: connect again

    def _stream(self, execution_id: str, after: int) -> Iterator[Frame]:
        request = urllib.request.Request(
            f"{self.server.rstrip('/')}/api/executions/{quote(execution_id)}/events",
            headers={**self._headers(), "Accept": "text/event-stream",
                     "Last-Event-ID": str(after)})
        try:
            with urllib.request.urlopen(request, timeout=STREAM_TIMEOUT) as response:
                yield from sse_frames(response)
        except urllib.error.HTTPError as error:
            raise _http_error(error) from None
        except (urllib.error.URLError, OSError) as error:
            raise Unreachable(f"no answer from {self.server}: {_reason(error)}") from None


def sse_frames(lines: Any) -> Iterator[Frame]:
    """Frames of an SSE byte stream (an iterable of lines); comments (pings) skipped."""
    fields: dict[str, str] = {}
    data: list[str] = []
    for raw in lines:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if data:
                frame_id = fields.get("id")
                yield Frame(int(frame_id) if frame_id else None, fields.get("event", "message"),
                            json.loads("\n".join(data)))
            fields, data = {}, []
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            else:
                fields[name] = value


def _http_error(error: urllib.error.HTTPError) -> HttpError:
    """The error body's code and message (`{"error": {"code", "message"}}`), or the
    status line's when the body is not stratexec's."""
    try:
        body = json.loads(error.read())
        return HttpError(error.code, body["error"]["code"], body["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return HttpError(error.code, "http_error", str(error.reason))
    finally:
        error.close()


def _reason(error: Exception) -> str:
    reason = getattr(error, "reason", None) or error
    return getattr(reason, "strerror", None) or str(reason)
