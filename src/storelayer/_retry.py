"""Retrying a whole unit of work on the errors a backend calls transient.

``RetryPolicy`` says how often and how long: attempts, exponential backoff (initial
delay, cap, base, full jitter) and a time budget. tenacity does the looping; no sleep
starts that would end past the budget. Giving up raises ``TransientError`` chained to
the last error.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_any,
    wait_exponential,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from storelayer.config import parse_flag, parse_number
from storelayer.errors import ConfigurationError, TransientError

T = TypeVar("T")

#: ``on_retry(error, attempt_number)``: called before sleeping ahead of a retry.
OnRetry = Callable[[BaseException, int], None]
#: Environment variable of each ``RetryPolicy`` field.
ENVIRONMENT: Mapping[str, str] = {
    "max_attempts": "STORELAYER_RETRY_MAX_ATTEMPTS",
    "initial_delay": "STORELAYER_RETRY_INITIAL_DELAY",
    "max_delay": "STORELAYER_RETRY_MAX_DELAY",
    "exponential_base": "STORELAYER_RETRY_EXPONENTIAL_BASE",
    "jitter": "STORELAYER_RETRY_JITTER",
    "max_seconds": "STORELAYER_RETRY_MAX_SECONDS",
}
_NONE = {"none", "unlimited"}


@dataclass(frozen=True)
class RetryPolicy:
    """How ``run_in_transaction`` retries a unit of work that failed on a transient error.

    The n-th retry waits ``initial_delay * exponential_base ** (n - 1)`` seconds, capped
    at ``max_delay``; with ``jitter``, a random time between 0 and that ("full jitter",
    so that writers that collided do not collide again in step). Retrying stops after
    ``max_attempts`` runs of the unit, or before a wait that would end more than
    ``max_seconds`` after the first failure, whichever comes first; None lifts that
    limit (one of the two must stay).
    """

    #: Runs of the unit in all, the first included; None: only the time budget limits.
    max_attempts: int | None = None
    #: Seconds before the first retry (before jitter).
    initial_delay: float = 0.01
    #: Seconds no single wait exceeds.
    max_delay: float = 0.5
    #: Factor between two successive waits.
    exponential_base: float = 2.0
    #: Wait a random time up to the computed one.
    jitter: bool = True
    #: The time budget in seconds; None: only ``max_attempts`` limits.
    max_seconds: float | None = 30.0

    def __post_init__(self) -> None:
        attempts = self.max_attempts
        if attempts is not None and (
            isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1
        ):
            raise ConfigurationError(f"max_attempts must be a whole number >= 1, got {attempts!r}")
        if self.max_attempts is None and self.max_seconds is None:
            raise ConfigurationError(
                "a retry policy needs a limit: set max_attempts or max_seconds (or both)"
            )
        positive = {"max_seconds": self.max_seconds, "exponential_base": self.exponential_base}
        for name, value in positive.items():
            if value is not None and not value > 0:
                raise ConfigurationError(f"{name} must be > 0, got {value!r}")
        for name in ("initial_delay", "max_delay"):
            if not getattr(self, name) >= 0:
                raise ConfigurationError(f"{name} must be >= 0, got {getattr(self, name)!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> RetryPolicy:
        """The policy from ``STORELAYER_RETRY_*`` variables, then ``overrides`` on top."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, variable in ENVIRONMENT.items():
            raw = env.get(variable, "").strip()
            if raw:
                values[name] = _parse(name, variable, raw)
        values.update(overrides)
        return cls(**values)

    def limited(self, retries: int | None = None, max_seconds: float | None = None) -> RetryPolicy:
        """A copy with the older arguments applied: ``retries`` retries (so
        ``retries + 1`` attempts), a time budget of ``max_seconds``."""
        if retries is not None and (
            isinstance(retries, bool) or not isinstance(retries, int) or retries < 0
        ):
            raise ConfigurationError(f"retries must be a whole number >= 0, got {retries!r}")
        changes: dict[str, Any] = {}
        if retries is not None:
            changes["max_attempts"] = retries + 1
        if max_seconds is not None:
            changes["max_seconds"] = max_seconds
        return replace(self, **changes) if changes else self

    def delay(self, retry: int) -> float:
        """The longest wait before the ``retry``-th retry (1 for the first), in seconds;
        with ``jitter`` the wait is drawn between 0 and this."""
        try:
            grown = self.initial_delay * self.exponential_base ** (retry - 1)
        except OverflowError:
            grown = self.max_delay
        return max(0.0, min(self.max_delay, grown))

    def describe(self) -> str:
        """The limits, as shown when a unit gives up."""
        budget = "none" if self.max_seconds is None else f"{self.max_seconds:g}"
        return f"max_attempts={self.max_attempts}, max_seconds={budget}"

    def retrying_options(
        self, is_transient: Callable[[BaseException], bool], on_retry: OnRetry | None
    ) -> dict[str, Any]:
        """Keyword arguments of tenacity's ``Retrying`` and ``AsyncRetrying``."""
        limits: list[stop_base] = []
        if self.max_attempts is not None:
            limits.append(stop_after_attempt(self.max_attempts))
        if self.max_seconds is not None:
            limits.append(RetryingFor(self.max_seconds))
        wait = wait_random_exponential if self.jitter else wait_exponential
        options: dict[str, Any] = {
            "stop": stop_any(*limits),
            "wait": wait(
                multiplier=self.initial_delay, max=self.max_delay, exp_base=self.exponential_base
            ),
            "retry": retry_if_exception(is_transient),
            "reraise": False,
        }
        if on_retry is not None:
            options["before_sleep"] = _before_sleep(on_retry)
        return options


class RetryingFor(stop_base):
    """Stop before a wait that would end more than ``seconds`` after the first
    failure: the budget is for retrying, so a slow first attempt (a long wait for a
    pooled connection, a long query) does not use it up. One per retry loop."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.first_failure: float | None = None

    def __call__(self, retry_state: RetryCallState) -> bool:
        now = retry_state.outcome_timestamp or time.monotonic()
        if self.first_failure is None:
            self.first_failure = now
        return now - self.first_failure + (retry_state.upcoming_sleep or 0) >= self.seconds


def _parse(name: str, variable: str, raw: str) -> Any:
    if name in ("max_attempts", "max_seconds") and raw.lower() in _NONE:
        return None
    if name == "jitter":
        return parse_flag(variable, raw)
    return parse_number(variable, raw, int if name == "max_attempts" else float)


def _before_sleep(on_retry: OnRetry) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        if error is not None:
            on_retry(error, state.attempt_number)

    return before_sleep


def _gave_up(err: RetryError, policy: RetryPolicy) -> TransientError:
    last = err.last_attempt.exception()
    n = err.last_attempt.attempt_number
    summary = " ".join(str(last).split())[:300]
    return TransientError(
        f"the unit of work failed {n} time(s) on transient errors and was not retried "
        f"further ({policy.describe()}); last error: {type(last).__name__}: {summary}. "
        "Retry later, or give run_in_transaction() a RetryPolicy with higher limits",
        attempts=n,
    )


def call_with_retries(
    attempt: Callable[[], T],
    *,
    is_transient: Callable[[BaseException], bool],
    policy: RetryPolicy,
    on_retry: OnRetry | None = None,
) -> T:
    """Call ``attempt`` until it returns, retrying as ``policy`` says on transient errors.

    A non-transient error propagates at once; giving up raises ``TransientError``
    chained to the last error.
    """
    try:
        return Retrying(**policy.retrying_options(is_transient, on_retry))(attempt)
    except RetryError as err:
        raise _gave_up(err, policy) from err.last_attempt.exception()


async def acall_with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    is_transient: Callable[[BaseException], bool],
    policy: RetryPolicy,
    on_retry: OnRetry | None = None,
) -> T:
    """The awaitable twin of :func:`call_with_retries` (sleeps without blocking)."""
    try:
        return await AsyncRetrying(**policy.retrying_options(is_transient, on_retry))(attempt)
    except RetryError as err:
        raise _gave_up(err, policy) from err.last_attempt.exception()
