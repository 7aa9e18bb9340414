"""The rules of an Idempotency-Key: its window, its scope, and what a key may be."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stratexec.domain.idempotency import (
    WINDOW,
    IdempotencyKeyReused,
    IdempotentRequest,
    answers,
    execution_id,
    key_problem,
)

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
REQUEST = IdempotentRequest("ada", "demo", "order-1", {"strategyId": "s", "workspaceId": "demo"})


def test_the_same_request_within_the_window_is_answered_by_the_first_execution() -> None:
    assert answers(REQUEST, REQUEST.fingerprint, NOW - WINDOW + timedelta(seconds=1), NOW)


def test_another_request_within_the_window_is_refused() -> None:
    other = IdempotentRequest("ada", "demo", "order-1", {"strategyId": "t",
                                                          "workspaceId": "demo"})
    with pytest.raises(IdempotencyKeyReused) as refused:
        answers(other, REQUEST.fingerprint, NOW - timedelta(hours=1), NOW)
    assert refused.value.details == {"header": "Idempotency-Key"}


def test_after_the_window_the_key_is_free_again() -> None:
    assert not answers(REQUEST, REQUEST.fingerprint, NOW - WINDOW, NOW)
    assert not answers(REQUEST, "another fingerprint", NOW - WINDOW, NOW)


def test_the_fingerprint_ignores_key_order_and_the_scope_keeps_users_apart() -> None:
    same = IdempotentRequest("ada", "demo", "order-1", {"workspaceId": "demo",
                                                         "strategyId": "s"})
    assert same.fingerprint == REQUEST.fingerprint
    other_user = IdempotentRequest("bob", "demo", "order-1", REQUEST.request)
    other_workspace = IdempotentRequest("ada", "acme", "order-1", REQUEST.request)
    ids = {execution_id(request.scoped_key(0))
           for request in (REQUEST, other_user, other_workspace)}
    assert len(ids) == 3
    assert execution_id(REQUEST.scoped_key(1)) not in ids  # the next use after the window
    assert execution_id(REQUEST.scoped_key(0)) == execution_id(same.scoped_key(0))


@pytest.mark.parametrize(("key", "fine"), [
    ("order-1", True), ("x" * 255, True), ("", False), ("x" * 256, False), ("clé", False),
    ("new\nline", False)])
def test_what_a_key_may_be(key: str, fine: bool) -> None:
    assert (key_problem(key) is None) == fine
