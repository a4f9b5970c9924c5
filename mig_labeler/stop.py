"""The one stop token: created first, handed to every part that can wait.

Owns: ``Stop``. Set once (SIGTERM/SIGINT through ``daemon.signals``, or a test), it ends every
wait that can block, at once: a request in flight (``abandonable``: the caller stops waiting for
it; an apply is atomic on the server, so nothing needs undoing), a retry's backoff and a rate-limit
wait (``sleep``), a watcher's reconnect delay (``wait``) and the loop's wait between passes (the
loop hands its wake-up event to ``interrupts``). No wait sleeps on its own clock. Knows nothing
about signals, passes or the API.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from mig_labeler.errors import Stopped

log = logging.getLogger("mig_labeler")
T = TypeVar("T")


class Stop:
    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_name = ""  # the signal that asked us to stop ("" when a test or the code did)
        self._lock = threading.Lock()
        self._waits: dict[threading.Event, str] = {}  # blocking waits a stop ends, and what they wait for

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def request(self, signal_name: str = "") -> None:
        with self._lock:
            first = not self._event.is_set()
            self._event.set()
            self.signal_name = self.signal_name or signal_name
            waits = dict(self._waits)
        if first and signal_name:
            abandoning = "; abandoning " + ", ".join(sorted(set(waits.values()) - {""})) if any(waits.values()) else ""
            log.info("stopping: %s%s", signal_name, abandoning)
        for event in waits:
            event.set()

    def wait(self, timeout: float | None) -> bool:
        """Wait up to ``timeout`` seconds; True when a stop came (at once, if it came already)."""
        return self._event.wait(timeout)

    def stopped(self, what: str) -> Stopped:
        by = self.signal_name or "a stop request"
        return Stopped(f"stopped by {by} {what}".rstrip(), self.signal_name)

    @contextmanager
    def interrupts(self, event: threading.Event, what: str = "") -> Iterator[None]:
        """``event`` is set by a stop while the block runs (at once, if one came already)."""
        with self._lock:
            self._waits[event] = what
            if self._event.is_set():
                event.set()
        try:
            yield
        finally:
            with self._lock:
                self._waits.pop(event, None)

    def sleep(self, seconds: float) -> None:
        """A retry's backoff or a rate-limit wait: ends at once on a stop, raising ``Stopped``."""
        if self._event.wait(seconds):
            raise self.stopped("during a retry's backoff")

    def abandonable(self, what: str, call: Callable[[], T], timeout: float | None = None) -> T:
        """Run ``call`` (a blocking request, named ``what`` for the stop's log line) in a worker
        thread and wait for it, for a stop, or for ``timeout`` seconds, whichever comes first. On a
        stop the worker is left behind (a daemon thread: it dies with the process) and ``Stopped``
        is raised; when the time is up, ``TimeoutError`` (a server that trickles bytes never trips
        a socket's read timeout, so only this bounds the whole request)."""
        if self._event.is_set():
            raise self.stopped(f"before {what}")
        done = threading.Event()
        outcome: list[tuple[bool, Any]] = []

        def work() -> None:
            try:
                outcome.append((True, call()))
            except BaseException as e:  # noqa: BLE001 - handed to the waiting thread as it is
                outcome.append((False, e))
            finally:
                done.set()

        with self.interrupts(done, what):
            threading.Thread(target=work, name=f"request {what}", daemon=True).start()
            done.wait(timeout)
        if not outcome and self._event.is_set():
            raise self.stopped(f"while waiting for {what}")
        if not outcome:
            raise TimeoutError(what)
        ok, value = outcome[0]
        if not ok:
            raise value
        return value
