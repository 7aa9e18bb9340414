"""The benchmark's smoke test: tiny sizes, so that it cannot rot. It checks that every
workload runs and reports consistent figures; it asserts no speed (the benchmark does)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import stratexec.bench.clients as bench_clients

ROOT = Path(__file__).resolve().parents[2]


def test_bench_runs_every_workload_and_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "stratexec", "bench", "--sizes", "10,30", "--latency-size", "10",
         "--subscribers", "1,3", "--replay-min-events", "100", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "Throughput" in result.stdout
    assert "Replay:" in result.stdout
    figures = json.loads(out.read_text())
    assert [row["engine"]["n"] for row in figures["throughput"]] == [10, 30]
    for row in figures["throughput"]:
        engine = row["engine"]
        assert engine["tasks"] == 2 * engine["n"]
        assert engine["events"] >= 3 * engine["tasks"]  # assigned, started, succeeded
        assert engine["liveExecutionsAfter"] == 0
        assert row["asyncio"]["tasks"] == engine["tasks"]
        assert row["store"]["groupedAsTheEngine"]["events"] == engine["events"]
        assert row["ratioToAsyncio"] > 0
    assert [row["subscribers"] for row in figures["latency"]] == [1, 3]
    for row in figures["latency"]:
        assert (row["missingPerSubscriber"], row["duplicatedPerSubscriber"]) == (0, 0)
        assert 0 <= row["p50Ms"] <= row["p99Ms"] <= row["maxMs"]
    assert figures["replay"]["events"] >= figures["throughput"][-1]["engine"]["events"]
    assert figures["replay"]["meetsMinimum"] is True
    assert figures["memory"]["peakRssKiB"] > 0
    assert figures["memory"]["rssAfterAgainKiB"] > 0  # the largest size ran a second time


def chunked(body: bytes, size: int) -> bytes:
    """`body` in HTTP/1.1 chunked transfer encoding, `size` bytes per chunk."""
    parts = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"


def test_the_latency_client_decodes_frames_whatever_the_pieces_they_arrive_in() -> None:
    frames = [b"event: snapshot\r\ndata: {}", b"id: 7\r\nevent: task-progress\r\ndata: {}",
              b": ping", b"id: 9\r\nevent: execution-completed\r\ndata: {}"]
    body = b"".join(frame + b"\r\n\r\n" for frame in frames)
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    response = head + chunked(body, 11)
    for piece_size in (1, 2, 3, 5, 16, len(response)):
        pieces = [(float(i), response[i:i + piece_size])
                  for i in range(0, len(response), piece_size)]
        assert [frame for _, frame in bench_clients.frames(pieces)] == frames, piece_size
    # One byte per piece, arriving at its offset: each frame is complete once the blank
    # line after it has arrived, and before the next frame's first byte.
    response = head + chunked(body, len(body))
    pieces = [(float(i), response[i:i + 1]) for i in range(len(response))]
    arrivals = [arrived for arrived, _ in bench_clients.frames(pieces)]
    starts = [response.index(frame[:6]) for frame in frames] + [len(response)]
    for k, arrived in enumerate(arrivals):
        assert starts[k] + len(frames[k]) <= arrived < starts[k + 1], k
