"""The command line: the commands (``commands``), their options and GFD's flag grammar
(``options``, ``gfd_flags``), options → ``Config`` (``config_from_options``) and logging set-up
(``logs``). ``main`` is the one place an error becomes one line and an exit code. Nothing below
this wing imports it: the daemon gets a ``Config`` and a way to read it again, never a click
``Context``."""

from mig_labeler.cli.commands import cli, main

__all__ = ["cli", "main"]
