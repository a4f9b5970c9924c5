"""When a pass runs: pass, then wait for the interval or a wake-up; return when settings change or on a stop.

Owns: ``RunLoop.run`` (returns ``RELOAD`` when the settings owner has a change, so the composition
root can build the parts again; ``STOP`` on a stop), the wait between passes (the interval, shorter
while a MIG mode change settles, and the Events held back by the rate window in between), a pass
that fails never ending the process, and ``Progress`` (passes finished, which outlives a reload).
The pass itself is ``one_pass.OnePass``'s; this room only decides when one runs.
"""

from __future__ import annotations

import logging
import threading
import time

from mig_labeler.daemon.events import EventReporter
from mig_labeler.daemon.health import HealthState
from mig_labeler.daemon.live_settings import LiveSettings
from mig_labeler.daemon.metrics import Metrics
from mig_labeler.daemon.one_pass import OnePass
from mig_labeler.daemon.wake import Wake
from mig_labeler.errors import MigLabelerError, NodeNotFound, Stopped
from mig_labeler.stop import Stop

log = logging.getLogger("mig_labeler")

SETTLE_INTERVAL = 5.0  # rescan this often while a GPU's pending MIG mode differs from its current one
RELOAD = "reload"
STOP = "stop"


class Progress:
    """Passes the loop finished, whatever their result: what a caller (a test, the bench) means
    by "the daemon is done with that", instead of sleeping and hoping."""

    def __init__(self) -> None:
        self.done = 0
        self.condition = threading.Condition()

    def finished(self) -> None:
        with self.condition:
            self.done += 1
            self.condition.notify_all()

    def wait_for(self, count: int, timeout: float | None = None) -> bool:
        with self.condition:
            return self.condition.wait_for(lambda: self.done >= count, timeout)


def next_wait(interval: float, settling: bool) -> float | None:
    """Seconds until the next pass is due; None: only a wake-up starts one."""
    if settling:
        return min(interval, SETTLE_INTERVAL)
    # threading refuses timeouts above TIMEOUT_MAX (OverflowError); the config caps durations
    # below it already, and this keeps any other path from killing the loop.
    return None if interval >= threading.TIMEOUT_MAX else interval


class RunLoop:
    def __init__(self, one_pass: OnePass, settings: LiveSettings, *, stop: Stop, wake: Wake, events: EventReporter,
                 progress: Progress, health: HealthState, metrics: Metrics) -> None:
        self.one_pass = one_pass
        self.settings = settings
        self.interval = settings.config.sleep_interval
        self.stop = stop
        self.wake = wake
        self.events = events
        self.progress = progress
        self.health = health
        self.metrics = metrics
        self.node_missing = False  # the last pass found no Node (said once; the watch says when it is back)

    def run(self) -> str:
        """Pass, then wait for the interval or a wake-up: the Node watch, SIGHUP or a changed file
        or ConfigMap (``RELOAD``: the root reads the settings and builds again), SIGTERM/SIGINT
        (finish the pass, ``STOP``). The interval stays as a safety net."""
        with self.stop.interrupts(self.wake.event):
            try:
                while not self.stop.requested:
                    if self.settings.pending:
                        return RELOAD
                    settling = self._guarded_pass()
                    self._wait(next_wait(self.interval, settling))
                    # Cleared only after the wait: a wake-up that comes during a pass or a reload
                    # (a SIGHUP while the file is read) ends the wait at once instead of being lost.
                    self.wake.event.clear()
            except Stopped:
                pass  # a stop abandoned an Event the wait was posting (the stop token logged it)
        return STOP

    def _guarded_pass(self) -> bool:
        """The daemon outlives any one pass: even a node that vanished or a bug in a pass is
        logged, counted and retried at the next wake-up, never the end of the process. Returns
        whether a MIG mode change is settling."""
        try:
            return self._contained_pass()
        finally:
            self.progress.finished()

    def _contained_pass(self) -> bool:
        try:
            result = self.one_pass.run()
        except Stopped:
            return False  # a stop abandoned the pass (the stop token logged it); the loop ends
        except MigLabelerError as e:
            self.health.end_pass(False, str(e))
            self.metrics.passes.labels(result="error").inc()
            if isinstance(e, NodeNotFound) and self.node_missing:
                log.debug("pass failed: %s", e)  # said once already; the watch wakes us when it is back
            else:
                log.error("pass failed: %s", e)
            self.node_missing = isinstance(e, NodeNotFound)
            return False
        except Exception:  # noqa: BLE001 - last line of defence for the daemon, logged with traceback
            self.health.end_pass(False, "internal error")
            self.metrics.passes.labels(result="error").inc()
            log.exception("pass failed with an internal error")
            return False
        self.node_missing = False
        return result.settling

    def _wait(self, wait: float | None) -> None:
        """Until the next pass is due or something wakes the loop; Events held back by the rate
        window are posted when their window ends, in between."""
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            due = self.events.due_in()
            timeout = left if due is None else (due if left is None else min(left, due))
            if self.wake.event.wait(timeout) or self.stop.requested:
                return
            self.events.flush()
            if deadline is not None and time.monotonic() >= deadline:
                return
