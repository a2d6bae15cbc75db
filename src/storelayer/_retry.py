"""Retrying a whole unit of work on the errors a backend calls transient.

tenacity does the looping: exponential backoff with full jitter, a cap on attempts and
a cap on total time (no sleep starts that would end past it). Giving up raises
``TransientError`` chained to the last error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from storelayer.errors import TransientError

T = TypeVar("T")

#: ``on_retry(error, attempt_number)``: called before sleeping ahead of a retry.
OnRetry = Callable[[BaseException, int], None]


def _retrying_options(
    is_transient: Callable[[BaseException], bool],
    retries: int,
    max_seconds: float,
    initial_backoff: float,
    max_backoff: float,
    on_retry: OnRetry | None,
) -> dict[str, Any]:
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be a whole number >= 0, got {retries!r}")
    if max_seconds <= 0:
        raise ValueError(f"max_seconds must be > 0, got {max_seconds!r}")
    options: dict[str, Any] = {
        "stop": stop_after_attempt(retries + 1) | stop_before_delay(max_seconds),
        "wait": wait_random_exponential(multiplier=initial_backoff, max=max_backoff),
        "retry": retry_if_exception(is_transient),
        "reraise": False,
    }
    if on_retry is not None:
        options["before_sleep"] = _before_sleep(on_retry)
    return options


def _before_sleep(on_retry: OnRetry) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        if error is not None:
            on_retry(error, state.attempt_number)

    return before_sleep


def _gave_up(err: RetryError, retries: int, max_seconds: float) -> TransientError:
    last = err.last_attempt.exception()
    n = err.last_attempt.attempt_number
    summary = " ".join(str(last).split())[:300]
    return TransientError(
        f"the unit of work failed {n} time(s) on transient errors and was not retried "
        f"further (retries={retries}, max_seconds={max_seconds:g}); last error: "
        f"{type(last).__name__}: {summary}. Retry later, or raise retries/max_seconds",
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
    on_retry: OnRetry | None = None,
) -> T:
    """Call ``attempt`` until it returns, retrying up to ``retries`` times (with
    exponential backoff and full jitter, within ``max_seconds``) on transient errors.

    A non-transient error propagates at once; running out of retries raises
    ``TransientError`` chained to the last error.
    """
    options = _retrying_options(
        is_transient, retries, max_seconds, initial_backoff, max_backoff, on_retry
    )
    try:
        return Retrying(**options)(attempt)
    except RetryError as err:
        raise _gave_up(err, retries, max_seconds) from err.last_attempt.exception()


async def acall_with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    is_transient: Callable[[BaseException], bool],
    retries: int,
    max_seconds: float,
    initial_backoff: float = 0.02,
    max_backoff: float = 1.0,
    on_retry: OnRetry | None = None,
) -> T:
    """The awaitable twin of :func:`call_with_retries` (sleeps without blocking)."""
    options = _retrying_options(
        is_transient, retries, max_seconds, initial_backoff, max_backoff, on_retry
    )
    try:
        return await AsyncRetrying(**options)(attempt)
    except RetryError as err:
        raise _gave_up(err, retries, max_seconds) from err.last_attempt.exception()
