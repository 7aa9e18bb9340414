"""SSE subscribers for the latency workload, in a process of their own.

`python -m bench.clients URL TOKEN WORKSPACE COUNT` opens COUNT connections to the
workspace's stream, prints "ready" once every snapshot has arrived, then records for each
frame its position and its latency (arrival time minus the event's recorded time) until
`execution-completed`, and prints one JSON list, one entry per subscriber.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from datetime import datetime
from typing import Any

import aiohttp

_ID = re.compile(rb"^id: (\d+)", re.MULTILINE)
_RECORDED = re.compile(rb'"recordedAt":"([^"]+)"')


async def subscriber(session: aiohttp.ClientSession, path: str, ready: asyncio.Event,
                     count: list[int], total: int) -> dict[str, Any]:
    positions: list[int] = []
    latencies: list[float] = []
    async with session.get(path) as stream:
        await stream.content.readuntil(b"\r\n\r\n")  # the snapshot
        count[0] += 1
        if count[0] == total:
            ready.set()
        buffer = b""
        async for chunk in stream.content.iter_any():
            arrived = time.time()
            buffer += chunk
            *frames, buffer = buffer.split(b"\r\n\r\n")
            for frame in frames:
                found = _ID.search(frame)
                recorded = _RECORDED.search(frame)
                if found is None or recorded is None:
                    continue  # a keep-alive comment
                positions.append(int(found.group(1)))
                sent = datetime.fromisoformat(recorded.group(1).decode()).timestamp()
                latencies.append((arrived - sent) * 1000)
                if b"event: execution-completed" in frame:
                    return {"positions": positions, "latenciesMs": latencies}
    raise RuntimeError("the stream ended before execution-completed")


async def main(url: str, token: str, workspace: str, total: int) -> None:
    ready = asyncio.Event()
    count = [0]
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(url, headers={"Authorization": f"Bearer {token}"},
                                     connector=connector) as session:
        tasks = [asyncio.create_task(subscriber(
            session, f"/api/workspaces/{workspace}/events", ready, count, total))
            for _ in range(total)]
        await ready.wait()
        print("ready", flush=True)
        results = await asyncio.gather(*tasks)
    print(json.dumps(results))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
