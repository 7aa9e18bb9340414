"""SSE subscribers for the latency workload, in a process of their own.

`python -m bench.clients URL TOKEN WORKSPACE COUNT` opens COUNT connections to the
workspace's stream, prints "ready" once every snapshot has arrived, then records for each
frame its position and its latency (arrival time minus the event's recorded time) until
`execution-completed`, and prints one JSON list, one entry per subscriber.

Each subscriber is a bare asyncio protocol that only notes when each piece of the response
arrived; the HTTP and SSE parsing happens after the run. A client that parses as it reads
measures its own parsing: with 100 subscribers in one process, aiohttp's client kept that
process two-thirds busy, and events waited in its socket buffers, not in the server.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

_ID = re.compile(rb"^id: (\d+)", re.MULTILINE)
_RECORDED = re.compile(rb'"recordedAt":"([^"]+)"')
_DONE = b"event: execution-completed"
_SNAPSHOT = b"event: snapshot"
Pieces = list[tuple[float, bytes]]  # (arrival time, bytes) in the order they came


class Subscriber(asyncio.Protocol):
    def __init__(self, request: bytes) -> None:
        self.pieces: Pieces = []
        self.ready = asyncio.get_running_loop().create_future()  # the snapshot arrived
        self.done = asyncio.get_running_loop().create_future()  # execution-completed
        self._request = request
        self._head = b""  # until ready: what arrived so far
        self._tail = b""  # the end of the last piece, for a marker split across two

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        self.pieces.append((time.time(), data))
        if not self.ready.done():
            self._head += data
            snapshot = self._head.find(_SNAPSHOT)
            if snapshot >= 0 and self._head.find(b"\r\n\r\n", snapshot) >= 0:
                self.ready.set_result(None)
        elif not self.done.done() and (_DONE in data or _DONE in self._tail + data[:len(_DONE)]):
            self.done.set_result(None)
        self._tail = data[-len(_DONE):]

    def connection_lost(self, exc: Exception | None) -> None:
        for future in (self.ready, self.done):
            if not future.done():
                future.set_exception(exc or ConnectionError("the server closed the stream"))


def frames(pieces: Pieces) -> list[tuple[float, bytes]]:
    """The SSE frames of a recorded response, each with the arrival of its last byte.

    Undoes the HTTP head and the chunked transfer encoding piece by piece, so that each
    frame keeps the time at which it became complete."""
    out: list[tuple[float, bytes]] = []
    raw = b""  # received and not yet decoded
    body = b""  # decoded and not yet split into frames
    head_done, chunked, chunk_left = False, False, 0
    for arrived, data in pieces:
        raw += data
        if not head_done:
            end = raw.find(b"\r\n\r\n")
            if end < 0:
                continue
            head, raw = raw[:end].lower(), raw[end + 4:]
            if not head.startswith(b"http/1.1 200"):
                raise RuntimeError(f"the stream answered {head.splitlines()[0]!r}")
            head_done, chunked = True, b"transfer-encoding: chunked" in head
        if not chunked:
            body, raw = body + raw, b""
        while chunked and raw:
            if chunk_left == 0:
                line_end = raw.find(b"\r\n")
                if line_end < 0:
                    break
                chunk_left = int(raw[:line_end].split(b";")[0], 16) + 2  # and its CRLF
                raw = raw[line_end + 2:]
            take = raw[:chunk_left]
            raw, chunk_left = raw[len(take):], chunk_left - len(take)
            body += take[:-2] if chunk_left == 0 else take
            if chunk_left == 1:  # the CR arrived, the LF did not: the CR is not data
                body = body[:-1]
        *complete, body = body.split(b"\r\n\r\n")
        out.extend((arrived, frame) for frame in complete)
    return out


def latencies(pieces: Pieces) -> dict[str, Any]:
    """Each event frame's position and latency, up to execution-completed."""
    positions: list[int] = []
    milliseconds: list[float] = []
    for arrived, frame in frames(pieces):
        found, recorded = _ID.search(frame), _RECORDED.search(frame)
        if found is None or recorded is None:
            continue  # the snapshot or a keep-alive comment
        positions.append(int(found.group(1)))
        sent = datetime.fromisoformat(recorded.group(1).decode()).timestamp()
        milliseconds.append((arrived - sent) * 1000)
        if _DONE in frame:
            break
    return {"positions": positions, "latenciesMs": milliseconds}


async def main(url: str, token: str, workspace: str, total: int) -> None:
    loop = asyncio.get_running_loop()
    address = urlsplit(url)
    host, port = address.hostname or "127.0.0.1", address.port or 80
    request = (f"GET /api/workspaces/{workspace}/events HTTP/1.1\r\nHost: {host}:{port}\r\n"
               f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n").encode()
    connections = [await loop.create_connection(lambda: Subscriber(request), host, port)
                   for _ in range(total)]
    subscribers = [protocol for _, protocol in connections]
    await asyncio.gather(*(s.ready for s in subscribers))
    print("ready", flush=True)
    await asyncio.gather(*(s.done for s in subscribers))
    for transport, _ in connections:
        transport.close()
    print(json.dumps([latencies(s.pieces) for s in subscribers]))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
