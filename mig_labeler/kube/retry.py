"""The one retry policy for Kubernetes API calls (tenacity).

Owns: which failures are retried (``errors.is_transient``), exponential backoff with jitter,
honouring ``Retry-After`` (the server's value wins when it is longer, as kopf does), the bound on
attempts so a pass never hangs, and logging before each sleep. ``sleep`` is injectable so retry
tests take milliseconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from mig_labeler.errors import is_transient
from mig_labeler.stop import Stop

log = logging.getLogger("mig_labeler")

MAX_RETRY_AFTER = 60.0


class wait_retry_after(wait_base):  # noqa: N801 - tenacity's naming style
    """The fallback backoff, or the server's Retry-After when that is longer (capped)."""

    def __init__(self, fallback: wait_base) -> None:
        self.fallback = fallback

    def __call__(self, retry_state: RetryCallState) -> float:
        delay = self.fallback(retry_state)
        error = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after:
            return max(delay, min(float(retry_after), MAX_RETRY_AFTER))
        return delay


def _log_retry(attempts: int) -> Callable[[RetryCallState], None]:
    """One INFO line per retry: what failed, which attempt comes next and after how long."""
    def log_retry(retry_state: RetryCallState) -> None:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        sleep = retry_state.next_action.sleep if retry_state.next_action else 0.0
        log.info("%s; retry %d of %d in %.1f s", error, retry_state.attempt_number, attempts - 1, sleep)

    return log_retry


def api_retry_policy(attempts: int = 5, max_backoff: float = 10.0, *, stop: Stop | None = None,
                     sleep: Callable[[float], None] | None = None, deadline: float | None = None) -> Retrying:
    """``stop``: the stop token, which ends a backoff at once; ``deadline``: seconds the whole call
    may take, retries included (``--oneshot-timeout``): no retry starts whose backoff would end past
    it. ``sleep`` replaces the backoff's clock (tests pass a fake clock's)."""
    give_up: stop_base = stop_after_attempt(attempts)
    if deadline is not None:
        give_up = give_up | stop_before_delay(deadline)
    return Retrying(
        retry=retry_if_exception(is_transient),
        stop=give_up,
        wait=wait_retry_after(wait_exponential_jitter(multiplier=0.5, max=max_backoff, jitter=0.5)),
        sleep=sleep or (stop.sleep if stop is not None else time.sleep),
        before_sleep=_log_retry(attempts),
        reraise=True,
    )
