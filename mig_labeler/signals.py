"""Process signals as flags: SIGTERM/SIGINT ask the loop to stop, SIGHUP to reload.

Owns: ``Signals`` and installing (and restoring) the handlers. The CLI installs them before
anything else in ``run``, so a SIGTERM during start-up or a ``--oneshot`` is a clean stop with
the documented exit code instead of the default death (143). A signal becomes flags and a wake-up
of the loop, set from a relay thread (see ``handled``); the loop decides what to do.

A stop also ends every wait that can block: a request in flight (``abandonable``: the caller
stops waiting for it at once; an apply is atomic on the server, so nothing needs undoing) and a
retry's backoff (``sleep``). No wait sleeps on its own clock.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mig_labeler.errors import Stopped

log = logging.getLogger("mig_labeler")
T = TypeVar("T")


@dataclass
class Signals:
    """Set by signal handlers (which do nothing else) and by tests; wakes the loop at once."""

    wake: threading.Event = field(default_factory=threading.Event)
    stop: bool = False
    reload: bool = False
    signal_name: str = ""  # the signal that asked us to stop ("" when a test or the code did)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _waits: dict[threading.Event, str] = field(default_factory=dict)  # blocking waits a stop ends, and what

    def request_stop(self, signal_name: str = "") -> None:
        with self._lock:
            first = not self.stop
            self.stop = True
            self.signal_name = self.signal_name or signal_name
            waits = dict(self._waits)
        if first and signal_name:
            abandoning = "; abandoning " + ", ".join(sorted(set(waits.values()))) if any(waits.values()) else ""
            log.info("stopping: %s%s", signal_name, abandoning)
        for event in waits:
            event.set()
        self.wake.set()

    def stopped(self, what: str) -> Stopped:
        by = self.signal_name or "a stop request"
        return Stopped(f"stopped by {by} {what}".rstrip(), self.signal_name)

    @contextmanager
    def _stoppable(self, event: threading.Event, what: str) -> Iterator[None]:
        """``event`` is set by a stop while the block runs (at once, if one came already)."""
        with self._lock:
            self._waits[event] = what
            if self.stop:
                event.set()
        try:
            yield
        finally:
            with self._lock:
                self._waits.pop(event, None)

    def sleep(self, seconds: float) -> None:
        """A retry's backoff: ends at once on a stop, raising ``Stopped``."""
        woken = threading.Event()
        with self._stoppable(woken, ""):
            woken.wait(seconds)
        if self.stop:
            raise self.stopped("during a retry's backoff")

    def abandonable(self, what: str, call: Callable[[], T]) -> T:
        """Run ``call`` (a blocking request, named ``what`` for the stop's log line) in a worker
        thread and wait for it or for a stop, whichever comes first. On a stop the worker is left
        behind (a daemon thread: it dies with the process) and ``Stopped`` is raised."""
        if self.stop:
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

        with self._stoppable(done, what):
            threading.Thread(target=work, name=f"request {what}", daemon=True).start()
            done.wait()
        if not outcome:
            raise self.stopped(f"while waiting for {what}")
        ok, value = outcome[0]
        if not ok:
            raise value
        return value

    def request_reload(self) -> None:
        self.reload = True
        self.wake.set()

    @contextmanager
    def handled(self) -> Iterator[Signals]:
        """Route SIGTERM, SIGINT and SIGHUP here while the block runs; restore the old handlers
        after (tests run commands in-process). Outside the main thread, nothing is installed.

        The Python-level handlers do nothing at all. A Python signal handler runs in the main
        thread between two bytecodes, possibly while that thread holds the lock inside
        ``wake`` (``Event.clear``/``wait``); a handler that called ``wake.set()`` there would
        wait for a lock its own thread holds, and the daemon would hang for good (seen under
        load with SIGHUP). Instead the C-level wakeup fd gets the signal number, and a small
        thread turns it into flags and ``wake.set()`` from outside the main thread."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        actions = {signal.SIGTERM: lambda: self.request_stop("SIGTERM"),
                   signal.SIGINT: lambda: self.request_stop("SIGINT"), signal.SIGHUP: self.request_reload}
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        previous = {sig: signal.signal(sig, _ignore) for sig in actions}
        previous_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        relay = threading.Thread(target=_relay, args=(read_end, actions), name="signals", daemon=True)
        relay.start()
        try:
            yield self
        finally:
            signal.set_wakeup_fd(previous_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(write_end)  # the relay reads EOF and ends
            relay.join(timeout=5)


def _ignore(signum: int, frame: Any) -> None:
    """Installed so the default action (death) does not happen; the wakeup fd carries the signal."""


def _relay(read_end: int, actions: dict[signal.Signals, Callable[[], None]]) -> None:
    try:
        while chunk := os.read(read_end, 64):
            for number in chunk:
                action = actions.get(signal.Signals(number)) if number in _NUMBERS else None
                if action is not None:
                    action()
    finally:
        os.close(read_end)


_NUMBERS = {s.value for s in signal.Signals}
