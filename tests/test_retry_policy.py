"""``RetryPolicy``: its waits, limits and environment, and the loop tenacity runs from
it (pure logic: no database, no real sleeping beyond a few milliseconds)."""

from __future__ import annotations

import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st
from tenacity import RetryCallState

from storelayer import ConfigurationError, RetryPolicy, TransientError
from storelayer._retry import call_with_retries

policies = st.builds(
    RetryPolicy,
    max_attempts=st.none() | st.integers(1, 50),
    initial_delay=st.floats(0, 5),
    max_delay=st.floats(0, 60),
    exponential_base=st.floats(1, 10),
    jitter=st.booleans(),
    max_seconds=st.floats(0.001, 600),
)


def wait_of(policy: RetryPolicy, retry: int) -> float:
    """The wait tenacity computes before the ``retry``-th retry."""
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = retry
    return float(policy.retrying_options(lambda _e: True, None)["wait"](state))


@seed(20261130)
@settings(max_examples=300, deadline=None)
@given(policies, st.integers(1, 200))
def test_waits_grow_to_the_cap_and_jitter_stays_under_it(policy: RetryPolicy, retry: int) -> None:
    longest = policy.delay(retry)
    assert 0 <= longest <= policy.max_delay
    assert longest <= policy.delay(retry + 1) or longest == policy.max_delay
    wait = wait_of(policy, retry)
    if policy.jitter:
        assert 0 <= wait <= longest + 1e-9
    else:
        assert wait == pytest.approx(longest)


def test_the_first_waits_double_from_the_initial_delay() -> None:
    policy = RetryPolicy(initial_delay=0.01, max_delay=0.05, jitter=False)
    assert [policy.delay(n) for n in range(1, 6)] == pytest.approx([0.01, 0.02, 0.04, 0.05, 0.05])


@seed(20261130)
@given(st.integers(0, 100), st.floats(0.01, 100))
def test_retries_and_max_seconds_override_the_limits(retries: int, budget: float) -> None:
    policy = RetryPolicy().limited(retries, budget)
    assert (policy.max_attempts, policy.max_seconds) == (retries + 1, budget)
    assert RetryPolicy().limited() == RetryPolicy()


class Flaky(Exception):
    pass


def failing(times: int) -> tuple[list[int], object]:
    calls: list[int] = []

    def attempt() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise Flaky(f"failure {len(calls)}")
        return "done"

    return calls, attempt


def test_max_attempts_counts_the_first_run() -> None:
    calls, attempt = failing(100)
    policy = RetryPolicy(max_attempts=3, initial_delay=0)
    with pytest.raises(TransientError) as caught:
        call_with_retries(attempt, is_transient=lambda e: isinstance(e, Flaky), policy=policy)  # type: ignore[arg-type]
    assert len(calls) == 3 and caught.value.attempts == 3
    assert isinstance(caught.value.__cause__, Flaky)
    assert "max_attempts=3" in str(caught.value)


def test_a_time_budget_alone_keeps_retrying_past_any_attempt_count() -> None:
    calls, attempt = failing(40)
    policy = RetryPolicy(max_attempts=None, initial_delay=0.0001, max_delay=0.001, max_seconds=30)
    heard: list[int] = []
    result = call_with_retries(
        attempt,  # type: ignore[arg-type]
        is_transient=lambda e: isinstance(e, Flaky),
        policy=policy,
        on_retry=lambda _e, n: heard.append(n),
    )
    assert result == "done" and len(calls) == 41 and heard == list(range(1, 41))


def test_other_errors_are_not_retried() -> None:
    calls, attempt = failing(5)
    with pytest.raises(Flaky):
        call_with_retries(attempt, is_transient=lambda e: False, policy=RetryPolicy())  # type: ignore[arg-type]
    assert len(calls) == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"max_attempts": 0},
        {"max_attempts": True},
        {"max_attempts": None, "max_seconds": None},
        {"max_seconds": 0},
        {"initial_delay": -1},
        {"exponential_base": 0},
    ],
)
def test_impossible_policies_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(**changes)  # type: ignore[arg-type]


def test_negative_retries_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="retries"):
        RetryPolicy().limited(-1)


def test_the_environment_sets_every_field() -> None:
    env = {
        "STORELAYER_RETRY_MAX_ATTEMPTS": "7",
        "STORELAYER_RETRY_INITIAL_DELAY": "0.1",
        "STORELAYER_RETRY_MAX_DELAY": "2",
        "STORELAYER_RETRY_EXPONENTIAL_BASE": "3",
        "STORELAYER_RETRY_JITTER": "off",
        "STORELAYER_RETRY_MAX_SECONDS": "none",
    }
    assert RetryPolicy.from_env(env) == RetryPolicy(7, 0.1, 2.0, 3.0, False, None)
    assert RetryPolicy.from_env({}, max_attempts=2) == RetryPolicy(max_attempts=2)


def test_a_bad_variable_is_named() -> None:
    with pytest.raises(ConfigurationError, match="STORELAYER_RETRY_MAX_DELAY"):
        RetryPolicy.from_env({"STORELAYER_RETRY_MAX_DELAY": "soon"})
