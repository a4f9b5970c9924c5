"""Stop signals that arrive while Python imports the command line: remembered, not fatal.

Owns: the early handlers ``entry`` installs first (SIGTERM, SIGINT remembered; SIGHUP dropped),
``early_stop`` (which came, for the command to act on) and ``restore_default_handlers`` (for
commands with no handlers of their own). Imports nothing but ``signal``.
"""

from __future__ import annotations

import signal
from typing import Any

EARLY: list[int] = []  # stop signals that arrived before the command installed its own handlers
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _remember(signum: int, frame: Any) -> None:
    if signum in STOP_SIGNALS:
        EARLY.append(signum)


def install_early_handlers() -> None:
    for sig in (*STOP_SIGNALS, signal.SIGHUP):
        signal.signal(sig, _remember)


def restore_default_handlers() -> None:
    """For commands that install none of their own: Ctrl-C interrupts them as usual from here.
    Only our early handlers are replaced (a test calling the command line keeps its own)."""
    if signal.getsignal(signal.SIGINT) is not _remember:
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def early_stop() -> str:
    """The name of the first stop signal that came during start-up, or ""."""
    return signal.Signals(EARLY[0]).name if EARLY else ""
