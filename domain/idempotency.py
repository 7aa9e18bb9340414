"""Idempotent starts: an `Idempotency-Key` (as Stripe has them) makes a retried start answer
the execution the first request started instead of starting another.

A key is scoped to who asks and where: the token's user and the workspace of the request.
Within `WINDOW` of the first start, the same key with the same request (its fingerprint) is
that execution again; with another request it is refused. After the window the key is free
again.

Nothing is kept beside the log: the execution started under a key has an id derived from the
scoped key (`execution_id`), and its `Started` event records the key and the fingerprint.
So a retry finds it after a restart or a crash, and two requests racing with one key cannot
both start one: the event store accepts one `Started` per id, and the loser answers the
winner's execution. A key reused after the window takes the next `generation` of ids.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from stratexec.domain.errors import DomainError

WINDOW = timedelta(hours=24)
HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
_NAMESPACE = UUID("6b1f3c1e-5b51-4a55-9a55-7f1d0c8b2e61")  # of every execution id from a key


class IdempotencyKeyReused(DomainError):
    """The key started an execution with another request within the window."""

    code = "idempotency_key_reused"


def key_problem(key: str) -> str | None:
    """What is wrong with a key as a client sent it, or None."""
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        return f"must be 1 to {MAX_KEY_LENGTH} printable ASCII characters"
    return None


@dataclass(frozen=True)
class IdempotentRequest:
    """A request made under a key: who made it, where, under which key, and what it asked."""

    user: str
    workspace_id: str
    key: str
    request: dict[str, Any]

    @property
    def fingerprint(self) -> str:
        canonical = json.dumps(self.request, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def scoped_key(self, generation: int) -> str:
        """What the `Started` event records: the key within its scope (hashed: the key is
        the client's text), and which use of it this is."""
        scope = "\0".join((self.user, self.workspace_id, self.key))
        return f"{hashlib.sha256(scope.encode()).hexdigest()}:{generation}"


def execution_id(scoped_key: str) -> UUID:
    """The id of the execution started under this scoped key: the same in every process."""
    return uuid5(_NAMESPACE, scoped_key)


def answers(request: IdempotentRequest, fingerprint: str | None, started_at: datetime,
            now: datetime) -> bool:
    """Whether the execution started under the key at `started_at`, by a request with
    `fingerprint`, is the answer to `request` (False: the window has passed, the key is
    free again). `IdempotencyKeyReused` when the key is still held by another request."""
    if now - started_at >= WINDOW:
        return False
    if fingerprint != request.fingerprint:
        raise IdempotencyKeyReused(
            f"the {HEADER} {request.key!r} started an execution with another request less "
            f"than {WINDOW.total_seconds() / 3600:g} hours ago; send this request with a new "
            "key", {"header": HEADER})
    return True
