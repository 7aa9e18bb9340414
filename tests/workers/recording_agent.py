"""A handler for the worker tests (loaded by `stratexec worker` from this folder, which the
tests put on PYTHONPATH): it records in Redis every run of every attempt, which worker ran it,
and how many of its type ran at once, so that the tests can check what really ran where.

Keys, under the test's `STRATEXEC_QUEUE_PREFIX`: `runs` (hash: key -> runs), `done` (hash:
key -> the worker's pid), `running:<worker pid>` (set of the keys running there now),
`now:<type>` and `max:<type>` (the witness of concurrency).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import redis

from stratexec.actors.agents.base import TaskContext
from stratexec.actors.messages import AgentTask

REDIS_URL = "redis://127.0.0.1:6379/0"
_RAISE_MAX = ("if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) "
              "then redis.call('SET', KEYS[1], ARGV[1]) end")


class RecordingAgent:
    def __init__(self, agent_type: str, options: Mapping[str, Any]) -> None:
        self.agent_type = agent_type
        self.duration = float(options.get("duration", 0.0))
        self.prefix = os.environ["STRATEXEC_QUEUE_PREFIX"]
        self.redis = redis.Redis.from_url(REDIS_URL)

    def run(self, task: AgentTask, context: TaskContext) -> dict[str, Any]:
        key, worker = task.idempotency_key, os.getppid()  # a prefork child's parent
        p = self.prefix
        self.redis.hincrby(f"{p}:runs", key, 1)
        self.redis.sadd(f"{p}:running:{worker}", key)
        now = self.redis.incr(f"{p}:now:{self.agent_type}")
        self.redis.eval(_RAISE_MAX, 1, f"{p}:max:{self.agent_type}", now)
        try:
            context.report_progress(0.5, "halfway")
            context.wait_cancelled(self.duration)
        finally:
            self.redis.decr(f"{p}:now:{self.agent_type}")
        self.redis.hset(f"{p}:done", key, worker)
        self.redis.srem(f"{p}:running:{worker}", key)
        return {"ran": key}
