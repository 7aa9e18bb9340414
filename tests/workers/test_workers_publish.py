"""The engine's own Redis publish (`workers.publish`) beside Celery's `send_task`: the same
message on the queue but for what is each message's own, run by a worker like any other."""

from __future__ import annotations

import base64
import json
from typing import Any
from uuid import uuid4

import pytest
from worker_support import RABBITMQ_URL, CeleryEnv, wait_until

from stratexec.actors.messages import AgentTask
from stratexec.workers import wire
from stratexec.workers.connection import TASK_NAME, CelerySettings, celery_app
from stratexec.workers.publish import CelerySender, Message, RedisSender, Unsent, sender

# What differs between two messages: the task's own ids, the delivery's, and the reply
# queue that send_task names (a result consumer's; no result is sent back here).
OWN = {"headers": ("id", "root_id"),
       "properties": ("correlation_id", "delivery_tag", "reply_to")}


TASK = AgentTask(execution_id=uuid4(), workspace_id="w", task_id="t1", item_id="i",
                 title="t", agent="research", priority="medium", order=1, attempt=1)


def _message(key: str) -> Message:
    """The same attempt's arguments under another key each time."""
    return Message(key, (wire.task_to(TASK), 2))


def _shared(queued: bytes | str, key: str) -> dict[str, Any]:
    """The queued envelope without what is the message's own, its body decoded; the key
    is replaced by KEY wherever it is (the repr of the arguments)."""
    text = queued.decode() if isinstance(queued, bytes) else queued
    envelope = json.loads(text.replace(key, "KEY"))
    for part, names in OWN.items():
        for name in names:
            envelope[part].pop(name)
    for name in ("argsrepr", "kwargsrepr"):  # send_task copies its options there too
        envelope["properties"].pop(name, None)
    envelope["body"] = json.loads(base64.b64decode(envelope["body"]))
    return dict(envelope)


def test_the_redis_sender_queues_what_send_task_queues(celery_env: CeleryEnv) -> None:
    app = celery_app(celery_env.settings)
    queue = celery_env.settings.queue("research")
    ours, theirs = _message("ours-key:t1:1"), _message("theirs-key:t1:1")
    assert isinstance(sender(app, celery_env.settings.broker_url), RedisSender)
    RedisSender(app, celery_env.settings.broker_url).send(queue, [ours])
    app.send_task(TASK_NAME, args=theirs.args, task_id=theirs.key, queue=queue,
                  ignore_result=True, argsrepr=theirs.key, kwargsrepr="{}")
    first, second = reversed(celery_env.redis.lrange(queue, 0, -1))  # LPUSH: newest first
    envelope = json.loads(first)
    assert envelope["headers"]["id"] == envelope["properties"]["correlation_id"] == ours.key
    assert _shared(first, ours.key) == _shared(second, theirs.key)


def test_a_turn_of_messages_runs_on_a_worker_each_once(celery_env: CeleryEnv) -> None:
    config = celery_env.config(concurrency=2, duration=0.01, types=("research",))
    celery_env.wait_ready(celery_env.start_worker(config, 2))
    tasks = [AgentTask(execution_id=uuid4(), workspace_id="w", task_id=f"t{number}",
                       item_id="i", title="t", agent="research", priority="medium",
                       order=number, attempt=1) for number in range(5)]
    messages = [Message(t.idempotency_key, (wire.task_to(t), 2)) for t in tasks]
    RedisSender(celery_app(celery_env.settings), celery_env.settings.broker_url).send(
        celery_env.settings.queue("research"), messages)
    wait_until(lambda: len(celery_env.done()) == len(messages), 60, "every attempt to run")
    assert celery_env.runs() == {m.key: 1 for m in messages}


def test_a_broker_not_answering_holds_none_of_them() -> None:
    unreachable = "redis://127.0.0.1:1/0"
    app = celery_app(CelerySettings(unreachable, unreachable, f"test{uuid4().hex[:10]}"))
    with pytest.raises(Unsent) as refused:
        RedisSender(app, unreachable).send("nowhere", [_message("k:t1:1"), _message("k:t2:1")])
    assert refused.value.sent == 0
    assert refused.value.__cause__ is not None


def test_other_brokers_get_send_task() -> None:
    settings = CelerySettings(RABBITMQ_URL, "redis://127.0.0.1:6379/0", "unused")
    assert isinstance(sender(celery_app(settings), RABBITMQ_URL), CelerySender)
