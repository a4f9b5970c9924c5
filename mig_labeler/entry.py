"""The console script's first instructions: signals are caught before anything heavy is imported.

Owns: ``main``, which installs early handlers for SIGTERM, SIGINT and SIGHUP, then imports the
command line (click, and for ``run`` the Kubernetes client: a few hundred milliseconds) and runs
it. A signal that arrives in between is remembered, not fatal: ``run`` starts with it as its stop
(one line, exit 0), any other command ends with one line and exit 130 (143 for SIGTERM). A SIGHUP
is dropped: the configuration is being read for the first time anyway. Imports nothing heavy
before the handlers are in place (``early_signals``).
"""

from __future__ import annotations

from mig_labeler.early_signals import install_early_handlers


def main(argv: list[str] | None = None) -> None:
    install_early_handlers()
    from mig_labeler.cli import main as command_line  # noqa: PLC0415 - after the handlers, on purpose

    command_line(argv)
