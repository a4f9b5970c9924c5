"""The console script's first instructions: signals are caught before anything heavy is imported.

Owns: ``main``, which installs early handlers for SIGTERM, SIGINT and SIGHUP, then imports the
command line (click, and for ``run`` the Kubernetes client: a few hundred milliseconds) and runs
it. A signal that arrives in between is remembered, not fatal: ``run`` starts with it as its stop
(one line, exit 0), any other command ends with one line and exit 130 (143 for SIGTERM). A SIGHUP
is dropped: the configuration is being read for the first time anyway. Imports nothing heavy
before the handlers are in place (``early_signals``). Once the command is done, the process exits
without the interpreter's finalization (module teardown and garbage collection of everything the
command imported: about 0.1 to 0.2 s, longer than a stopped daemon takes to finish its work); the
output, the logs and the ``atexit`` handlers (temporary files) are flushed and run first.
"""

from __future__ import annotations

import time

from mig_labeler.early_signals import install_early_handlers


def main(argv: list[str] | None = None) -> None:
    started = time.monotonic()  # time limits (--oneshot-timeout, diff --timeout) count from here
    install_early_handlers()
    from mig_labeler.cli import main as command_line  # noqa: PLC0415 - after the handlers, on purpose

    try:
        command_line(argv, started=started)
    except SystemExit as e:
        _exit_now(e.code)
    _exit_now(0)


def _exit_now(code: object) -> None:
    import atexit  # noqa: PLC0415 - the standard library's, loaded already
    import logging  # noqa: PLC0415
    import os  # noqa: PLC0415
    import sys  # noqa: PLC0415

    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"), as Python prints it
        print(code, file=sys.stderr)
        code = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or full stream: the command has said so already
            pass
    atexit._run_exitfuncs()
    os._exit(code)
