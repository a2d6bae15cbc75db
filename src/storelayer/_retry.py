"""Retrying a whole unit of work on the errors a backend calls transient."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from storelayer.errors import TransientError

T = TypeVar("T")


def _retrying_options(
    is_transient: Callable[[BaseException], bool],
    retries: int,
    max_seconds: float,
    initial_backoff: float,
    max_backoff: float,
) -> dict[str, Any]:
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    return {
        "stop": stop_after_attempt(retries + 1) | stop_after_delay(max_seconds),
        "wait": wait_random_exponential(multiplier=initial_backoff, max=max_backoff),
        "retry": retry_if_exception(is_transient),
        "reraise": False,
    }


def _gave_up(err: RetryError, retries: int) -> TransientError:
    last = err.last_attempt.exception()
    n = err.last_attempt.attempt_number
    summary = " ".join(str(last).split())[:300]
    return TransientError(
        f"the unit of work failed {n} time(s) on transient errors and was not retried "
        f"further (retries={retries}); last error: {summary}",
        attempts=n,
    )


def call_with_retries(
    attempt: Callable[[], T],
    *,
    is_transient: Callable[[BaseException], bool],
    retries: int,
    max_seconds: float,
    initial_backoff: float = 0.02,
    max_backoff: float = 1.0,
) -> T:
    """Call ``attempt`` until it returns, retrying up to ``retries`` times (with
    exponential backoff and full jitter, within ``max_seconds``) on transient errors.

    A non-transient error propagates at once; running out of retries raises
    ``TransientError`` chained to the last error.
    """
    options = _retrying_options(is_transient, retries, max_seconds, initial_backoff, max_backoff)
    try:
        return Retrying(**options)(attempt)
    except RetryError as err:
        raise _gave_up(err, retries) from err.last_attempt.exception()


async def acall_with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    is_transient: Callable[[BaseException], bool],
    retries: int,
    max_seconds: float,
    initial_backoff: float = 0.02,
    max_backoff: float = 1.0,
) -> T:
    """The awaitable twin of :func:`call_with_retries` (sleeps without blocking)."""
    options = _retrying_options(is_transient, retries, max_seconds, initial_backoff, max_backoff)
    try:
        return await AsyncRetrying(**options)(attempt)
    except RetryError as err:
        raise _gave_up(err, retries) from err.last_attempt.exception()
