"""How the engine puts its attempts on the broker: the Celery task messages of one agent
actor turn, sent together.

`send_task` costs about 1 ms of CPU a message (kombu makes a Redis client for each publish,
binds a copy of the queue to declare it, wraps it in its retry policy), and on a machine the
engine shares with its workers that is CPU taken from them. So with Redis as the broker (the
default) `RedisSender` pushes a turn's messages onto the queue's list itself, in one
transaction on a client of its own: one round trip, about a quarter of the CPU. Each message
is the one `send_task` sends: built by Celery (`app.amqp.as_task_v2`, protocol 2) and wrapped
as kombu's Redis transport wraps it (`envelope`); the workers cannot tell the difference, and
`tests/workers/test_workers_publish.py` holds the two side by side. A message is pushed at
most once per call, but a reply lost after the transaction ran would make a retry push it
twice: harmless, since a second delivery of a key runs nothing (see `workers.task`). Any
other broker (RabbitMQ) gets `CelerySender`: `send_task`, one message at a time, which is
what kombu does for it anyway.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import redis

from stratexec.workers.connection import TASK_NAME

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
PERSISTENT = 2  # kombu's delivery_mode for Celery's default, "persistent"


@dataclass(frozen=True)
class Message:
    """One attempt's task message: its key (the Celery task id) and the task's arguments."""

    key: str
    args: tuple[Any, ...]


class Unsent(Exception):
    """The broker could not be reached: the first `sent` messages are on it, the rest not."""

    def __init__(self, sent: int) -> None:
        super().__init__(f"the broker holds {sent} of the messages")
        self.sent = sent


class Sender(Protocol):
    def send(self, queue: str, messages: Sequence[Message]) -> None:
        """Send the messages to `queue`, in order, or raise `Unsent` (its cause says why)."""


class RedisSender:
    """All of a call's messages in one MULTI/EXEC: on the broker together, or none of them."""

    def __init__(self, app: Any, broker_url: str) -> None:
        self._app = app
        self._client = redis.Redis.from_url(broker_url)

    def send(self, queue: str, messages: Sequence[Message]) -> None:
        encoded = [json.dumps(envelope(self._app, queue, m)) for m in messages]
        try:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.lpush(queue, *encoded)
                pipe.execute()
        except Exception as error:
            raise Unsent(0) from error


class CelerySender:
    """`send_task` for each message: one publish each, as kombu sends them to RabbitMQ."""

    def __init__(self, app: Any) -> None:
        self._app = app

    def send(self, queue: str, messages: Sequence[Message]) -> None:
        for sent, message in enumerate(messages):
            try:
                self._app.send_task(TASK_NAME, args=message.args, task_id=message.key,
                                    queue=queue, ignore_result=True,
                                    argsrepr=message.key, kwargsrepr="{}")
            except Exception as error:
                raise Unsent(sent) from error


def sender(app: Any, broker_url: str) -> Sender:
    if broker_url.startswith(REDIS_SCHEMES):
        return RedisSender(app, broker_url)
    return CelerySender(app)


def envelope(app: Any, queue: str, message: Message) -> dict[str, Any]:
    """What `send_task(TASK_NAME, args, task_id=key, queue=queue, ignore_result=True)`
    pushes onto a Redis broker's list `queue`: Celery's message (headers, properties,
    JSON body) in kombu's envelope (the body base64-encoded, the delivery's details and a
    delivery tag of its own), at priority 0, which kombu keeps in the list named after the
    queue. The arguments' repr, which only the workers' logs show, is the key."""
    headers, properties, body, _ = app.amqp.as_task_v2(
        message.key, TASK_NAME, message.args, None, ignore_result=True,
        argsrepr=message.key, kwargsrepr="{}")
    return {
        "body": base64.b64encode(json.dumps(body).encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": headers,
        "properties": {
            **properties, "delivery_mode": PERSISTENT,
            "delivery_info": {"exchange": "", "routing_key": queue}, "priority": 0,
            "body_encoding": "base64", "delivery_tag": str(uuid.uuid4())},
    }
