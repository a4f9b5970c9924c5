"""The console script's first instructions: signals are caught before anything heavy is imported.

Owns: ``main``, which installs early handlers for SIGTERM, SIGINT and SIGHUP, then imports the
command line (click, and for ``run`` the Kubernetes client: a few hundred milliseconds) and runs
it. A signal that arrives in between is remembered, not fatal: ``run`` starts with it as its stop
(one line, exit 0; a ``--oneshot`` exits 1), any other command ends with one line and exit 130
(143 for SIGTERM). A SIGHUP is dropped: the configuration is being read for the first time anyway.
Imports nothing but the standard library's ``signal`` and ``sys``.
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


def main(argv: list[str] | None = None) -> None:
    install_early_handlers()
    from mig_labeler.cli import main as command_line  # noqa: PLC0415 - after the handlers, on purpose

    command_line(argv)
