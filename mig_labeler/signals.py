"""Process signals as flags: SIGTERM/SIGINT ask the loop to stop, SIGHUP to reload.

Owns: ``Signals`` and installing (and restoring) the handlers. The CLI installs them before
anything else in ``run``, so a SIGTERM during start-up or a ``--oneshot`` is a clean stop with
the documented exit code instead of the default death (143). Handlers only set flags and wake
the loop; the loop decides what to do.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Signals:
    """Set by signal handlers (which do nothing else) and by tests; wakes the loop at once."""

    wake: threading.Event = field(default_factory=threading.Event)
    stop: bool = False
    reload: bool = False

    def request_stop(self) -> None:
        self.stop = True
        self.wake.set()

    def request_reload(self) -> None:
        self.reload = True
        self.wake.set()

    @contextmanager
    def handled(self) -> Iterator[Signals]:
        """Route SIGTERM, SIGINT and SIGHUP here while the block runs; restore the old handlers
        after (tests run commands in-process). Outside the main thread, nothing is installed."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        handlers: dict[signal.Signals, Any] = {
            signal.SIGTERM: lambda *_: self.request_stop(),
            signal.SIGINT: lambda *_: self.request_stop(),
            signal.SIGHUP: lambda *_: self.request_reload(),
        }
        previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
