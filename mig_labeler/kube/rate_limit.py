"""Client-side rate limit for API requests, as client-go applies ``--kube-api-qps``/``--kube-api-burst``.

Owns: ``TokenBucket`` (client-go's ``flowcontrol.NewTokenBucketRateLimiter``: ``burst`` requests at
once, refilled at ``qps`` per second) and client-go's defaults (QPS 0 means 5, burst 0 means 10, a
negative QPS means no limit). Pure arithmetic on an injected clock: the caller does the waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

DEFAULT_QPS = 5.0
DEFAULT_BURST = 10


class TokenBucket:
    def __init__(self, qps: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.qps = qps
        self.burst = max(1, burst)
        self.clock = clock
        self.tokens = float(self.burst)
        self.last = clock()
        self.lock = threading.Lock()

    def reserve(self) -> float:
        """Take a token; returns how many seconds to wait before sending (0 when one was there)."""
        with self.lock:
            now = self.clock()
            self.tokens = min(float(self.burst), self.tokens + (now - self.last) * self.qps)
            self.last = now
            self.tokens -= 1
            return 0.0 if self.tokens >= 0 else -self.tokens / self.qps


def client_go_limiter(qps: float, burst: int) -> TokenBucket | None:
    """What client-go's rest.RESTClientFor builds from a rest.Config's QPS and Burst."""
    qps = DEFAULT_QPS if qps == 0 else qps
    burst = DEFAULT_BURST if burst == 0 else burst
    return TokenBucket(qps, burst) if qps > 0 else None
