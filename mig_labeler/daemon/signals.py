"""Process signals: SIGTERM/SIGINT request the stop, SIGHUP a reload.

Owns: installing (and restoring) the handlers. The CLI installs them before anything else in
``run``, so a SIGTERM during start-up or a ``--oneshot`` is a clean stop with the documented exit
code instead of the default death (143). What a signal means is the stop token's and the wake-up's
business (``stop.Stop``, ``daemon.wake.Wake``); this room only delivers it.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from mig_labeler.daemon.wake import Wake
from mig_labeler.stop import Stop


@contextmanager
def handled(stop: Stop, wake: Wake) -> Iterator[None]:
    """Route SIGTERM, SIGINT and SIGHUP to ``stop`` and ``wake`` while the block runs; restore the
    old handlers after (tests run commands in-process). Outside the main thread, nothing is installed.

    The Python-level handlers do nothing at all. A Python signal handler runs in the main thread
    between two bytecodes, possibly while that thread holds the lock inside an Event
    (``clear``/``wait``); a handler that set an Event there would wait for a lock its own thread
    holds, and the daemon would hang for good (seen under load with SIGHUP). Instead the C-level
    wakeup fd gets the signal number, and a small thread acts on it from outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    actions = {signal.SIGTERM: lambda: stop.request("SIGTERM"), signal.SIGINT: lambda: stop.request("SIGINT"),
               signal.SIGHUP: wake.request_reload}
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    previous = {sig: signal.signal(sig, _ignore) for sig in actions}
    previous_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    relay = threading.Thread(target=_relay, args=(read_end, actions), name="signals", daemon=True)
    relay.start()
    try:
        yield
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
