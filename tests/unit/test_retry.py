"""The retry policy: how many attempts, how long to wait, and which errors never retry."""

from __future__ import annotations

from typing import Any

import pytest

from stratexec.domain.retry import RetryPolicy


def test_the_default_allows_four_attempts_so_three_retries() -> None:
    policy = RetryPolicy()

    assert [policy.should_retry(failures, "timeout") for failures in (1, 2, 3, 4, 5)] == [
        True, True, True, False, False]


def test_the_default_delays_double_from_one_second() -> None:
    policy = RetryPolicy()

    assert [policy.delay(failures) for failures in (1, 2, 3)] == [1.0, 2.0, 4.0]


def test_delays_are_capped_at_the_maximum_interval() -> None:
    policy = RetryPolicy(maximum_attempts=10, initial_interval=10.0, maximum_interval=30.0)

    assert [policy.delay(failures) for failures in (1, 2, 3, 4, 9)] == [
        10.0, 20.0, 30.0, 30.0, 30.0]


def test_the_default_cap_is_sixty_seconds() -> None:
    assert RetryPolicy().delay(20) == 60.0


def test_jitter_spans_ten_percent_either_side() -> None:
    policy = RetryPolicy()

    assert policy.delay(2, random_unit=0.0) == pytest.approx(1.8)
    assert policy.delay(2, random_unit=0.999999) == pytest.approx(2.2, abs=1e-5)
    assert policy.delay(2, random_unit=0.999999) < 2.2


def test_jitter_applies_after_the_cap() -> None:
    policy = RetryPolicy()

    assert policy.delay(20, random_unit=0.0) == pytest.approx(54.0)
    assert policy.delay(20, random_unit=0.999999) == pytest.approx(66.0, abs=1e-4)


def test_jittered_delays_stay_within_bounds() -> None:
    policy = RetryPolicy()

    for step in range(100):
        delay = policy.delay(3, random_unit=step / 100)
        assert 4.0 * 0.9 - 1e-9 <= delay < 4.0 * 1.1


def test_without_jitter_the_random_unit_is_ignored() -> None:
    policy = RetryPolicy(jitter=0.0)

    assert {policy.delay(2, random_unit=u) for u in (0.0, 0.3, 0.99)} == {2.0}


def test_a_zero_initial_interval_retries_at_once() -> None:
    assert RetryPolicy(initial_interval=0.0).delay(3, random_unit=0.0) == 0.0


def test_non_retryable_kinds_are_not_retried() -> None:
    policy = RetryPolicy(non_retryable=frozenset({"auth", "bad_request"}))

    assert not policy.should_retry(1, "auth")
    assert not policy.should_retry(1, "bad_request")
    assert policy.should_retry(1, "timeout")


def test_an_error_marked_not_retryable_is_not_retried() -> None:
    assert not RetryPolicy().should_retry(1, "timeout", retryable=False)


def test_a_single_attempt_never_retries() -> None:
    assert not RetryPolicy(maximum_attempts=1).should_retry(1, "timeout")


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"maximum_attempts": 0}, "maximum_attempts"),
        ({"initial_interval": -1.0}, "initial_interval"),
        ({"initial_interval": 10.0, "maximum_interval": 5.0}, "maximum_interval"),
        ({"backoff_coefficient": 0.5}, "backoff_coefficient"),
        ({"jitter": 1.0}, "jitter"),
        ({"jitter": -0.1}, "jitter"),
    ],
)
def test_an_invalid_policy_is_refused(fields: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        RetryPolicy(**fields)


def test_record_round_trip() -> None:
    policy = RetryPolicy(
        maximum_attempts=6, initial_interval=0.5, backoff_coefficient=3.0,
        maximum_interval=20.0, jitter=0.25, non_retryable=frozenset({"b", "a"}),
    )

    record = policy.as_record()

    assert record == {
        "maximumAttempts": 6, "initialInterval": 0.5, "backoffCoefficient": 3.0,
        "maximumInterval": 20.0, "jitter": 0.25, "nonRetryable": ["a", "b"],
    }
    assert RetryPolicy.from_record(record) == policy
    assert RetryPolicy.from_record(RetryPolicy().as_record()) == RetryPolicy()
