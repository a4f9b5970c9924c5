"""What ends the loop's wait before the interval is up.

Owns: ``Wake``: the event the loop waits on, the reload request (SIGHUP, a changed config or
mig-parted file, a changed mig-parted ConfigMap), and when the wake-up that the next pass answers
came (for the reaction-time histogram). A stop ends the wait too: the loop hands the event to the
stop token (``Stop.interrupts``). Set from any thread; the loop decides what to do.
"""

from __future__ import annotations

import threading
import time


class Wake:
    def __init__(self) -> None:
        self.event = threading.Event()
        self._lock = threading.Lock()
        self._reload = False
        self._woken_at: float | None = None  # perf_counter() of the wake-up the next pass answers

    def set(self) -> None:
        """Wake the loop for a pass (the Node is back, a test): no reaction time is measured."""
        self.event.set()

    def now(self) -> None:
        """Wake the loop for a change it must react to; the pass that answers is timed from here."""
        with self._lock:
            self._woken_at = self._woken_at or time.perf_counter()
        self.event.set()

    def request_reload(self) -> None:
        """Read the settings again before the next pass (``LiveSettings.apply_pending``)."""
        with self._lock:
            self._reload = True
        self.now()

    def take_reload(self) -> bool:
        with self._lock:
            asked, self._reload = self._reload, False
            return asked

    @property
    def reload_asked(self) -> bool:
        return self._reload

    def take_woken_at(self) -> float | None:
        with self._lock:
            woken, self._woken_at = self._woken_at, None
            return woken
