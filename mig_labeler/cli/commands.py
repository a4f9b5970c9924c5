"""The ``mig-labeler`` command line (click).

Owns: parsing flags and environment variables (GFD's names accepted) into one frozen ``Config``
(precedence flag > env > config file > default), logging set-up, and the single place where a
``MigLabelerError`` becomes one line on stderr and an exit code. Commands stay thin: each calls
into ``pipeline`` (labels), ``daemon`` (run, diff) or ``check``.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import click

from mig_labeler import __version__
from mig_labeler.cli.config_from_options import GivenOptions, build_config
from mig_labeler.cli.gfd_flags import COMMANDS, configured_by_environment, translate
from mig_labeler.cli.logs import fatal_line, setup_logging, use_format
from mig_labeler.cli.options import (
    MIG_PARTED_FILE_OPTION,
    TIMEOUT_OPTION,
    kube_options,
    label_options,
    mig_config_options,
    node_config_options,
    run_options,
    sink_options,
)
from mig_labeler.config import (
    Config,
    parse_duration,
)
from mig_labeler.daemon.signals import handled
from mig_labeler.daemon.wake import Wake
from mig_labeler.early_signals import early_stop, restore_default_handlers
from mig_labeler.errors import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    ConfigError,
    Interrupted,
    MigLabelerError,
    OutputError,
    WorkloadsDoNotFit,
)
from mig_labeler.stop import Stop

log = logging.getLogger("mig_labeler")

class GfdGroup(click.Group):
    """GFD's command lines work unchanged: Go's flag grammar, and flags without a command mean
    ``run`` (GFD's binary has none). ``gfd_flags.translate`` rewrites them before click parses."""

    def main(self, args: Any = None, *rest: Any, **kwargs: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        own = {name: _own_names(command) for name, command in self.commands.items() if name in COMMANDS}
        args = translate(argv, own, in_pod=configured_by_environment(os.environ))
        use_format(_log_format(args))
        _refuse_repeated(args)
        return super().main(args, *rest, **kwargs)


ONE_EACH = ("--fixture", "--gpu", "--mig-config", "--config-file", "--node-name")  # click keeps the last silently


def _refuse_repeated(args: list[str]) -> None:
    """``labels --gpu A:8 --gpu B:2`` would label B alone without a word: one of each, or exit 2
    (``check`` takes several nodes: its --fixture and --gpu repeat on purpose)."""
    if not args or args[0] == "check":
        return
    for name in ONE_EACH:
        given = [a for a in args if a == name or a.startswith(f"{name}=")]
        if len(given) > 1:
            hint = "; check takes several nodes (check --gpu A --gpu B)" if name in ("--fixture", "--gpu") else ""
            raise ConfigError(f"{name} is given {len(given)} times; give it once{hint}")


def _log_format(args: list[str]) -> str:
    """--log-format as given (flag > environment), before click parses: a usage error or a bad
    config file is then printed in the format the log uses."""
    for i, arg in enumerate(args):
        if arg.startswith("--log-format="):
            return arg.partition("=")[2]
        if arg == "--log-format" and i + 1 < len(args):
            return args[i + 1]
    return os.environ.get("MIG_LABELER_LOG_FORMAT", "text")


def _own_names(command: click.Command) -> tuple[set[str], set[str]]:
    """A command's option names: long ones without dashes, and the letters of short ones."""
    long_names: set[str] = set()
    short: set[str] = set()
    for param in command.params:
        for opt in (*param.opts, *getattr(param, "secondary_opts", ())):
            if opt.startswith("--"):
                long_names.add(opt[2:])
            elif opt.startswith("-"):
                short.add(opt[1:])
    return long_names, short | {"h"}


@click.group(cls=GfdGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="mig-labeler")
def cli() -> None:
    """GFD-compatible Kubernetes node labels for NVIDIA GPUs and MIG devices.

    \b
    Try it without a GPU:
      mig-labeler labels --fixture dgx-a100-mixed --mig-strategy mixed
    """


@cli.command()
@label_options
@click.option("-o", "--output", type=click.Choice(["text", "json", "yaml"]), default="text", show_default=True,
              help="text: sorted key=value lines; json: one object with sorted keys; yaml: a mapping with every "
              "value quoted, ready to paste under a nodeSelector.")
@click.option("--gpu", metavar="MODEL[:COUNT]", help="Predict a node that does not exist yet: COUNT GPUs of MODEL "
              "(a key of the model table, e.g. A100-SXM4-80GB:8), partitioned by --mig-config.")
@click.option("--mig-config", metavar="NAME", help="With --gpu: the mig-parted config to apply (what a node's "
              "nvidia.com/mig.config would name, e.g. all-balanced).")
@MIG_PARTED_FILE_OPTION
@click.pass_context
def labels(ctx: click.Context, output: str, gpu: str | None, mig_config: str | None,
           **_: Any) -> None:
    """Print the labels this node would get, or (--gpu) a node of that model partitioned by a
    mig-parted config would get. Writes nothing to Kubernetes."""
    _interruptible()
    from mig_labeler.pipeline import desired_labels  # noqa: PLC0415 - keeps --help fast
    from mig_labeler.sources import open_predicted_source, open_source  # noqa: PLC0415

    config = build_config(ctx)
    setup_logging("text")
    if gpu and config.fixture:
        raise ConfigError("give --gpu or --fixture, not both")
    if mig_config and not gpu:
        raise ConfigError("--mig-config goes with --gpu MODEL[:COUNT] (a node's real layout comes from NVML)")
    if mig_config and config.mig_strategy.value == "none":
        log.warning("--mig-config %s partitions the GPUs, but the MIG strategy is none, so no MIG device is "
                    "labelled: add --mig-strategy mixed (or single), as the node's device plugin would use", mig_config)
    source = (open_predicted_source(gpu, mig_config, config.mig_parted) if gpu else
              open_source(config.fixture, config.machine_type_file, config.driver_root))
    result = desired_labels(source, config, int(time.time()))
    _warn(config.warnings + result.warnings)
    _emit(format_labels(result.labels, output))


def format_labels(labels: dict[str, str], output: str) -> str:
    if output == "json":
        return json.dumps(labels, indent=2, sort_keys=True) + "\n"
    if output == "yaml":
        # Every value as a quoted string: a nodeSelector takes strings only, and YAML would read
        # 8, true or 1.10 as a number or a boolean, which the API server rejects.
        return "".join(f"{json.dumps(k)}: {json.dumps(labels[k])}\n" for k in sorted(labels))
    return "".join(f"{key}={labels[key]}\n" for key in sorted(labels))


def _emit(text: str) -> None:
    """Write the command's output. A closed pipe (``| head``) ends the command quietly with 0, as
    standard tools do; any other write failure (``> /dev/full``) is one line and exit 2."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()
        raise SystemExit(0) from None
    except OSError as e:
        _discard_stdout()
        raise OutputError(f"cannot write the output: {e.strerror or e}") from None


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush cannot fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (a test's capture buffer)
        pass


def _warn(warnings: tuple[str, ...]) -> None:
    for warning in warnings:
        log.warning("%s", warning)


def _interruptible() -> None:
    """For commands without signal handlers of their own: a stop signal that came during start-up
    ends them now, with one line; from here on Ctrl-C interrupts them as usual (exit 130)."""
    name = early_stop()
    restore_default_handlers()
    if name:
        raise Interrupted(name)


def _require_node_name(config: Config) -> str:
    if not config.node_name:
        raise ConfigError("no node name: pass --node-name or set NODE_NAME (in a pod, from spec.nodeName)")
    return config.node_name


@cli.command()
@label_options
@kube_options
@sink_options
@run_options
@mig_config_options
@node_config_options
@click.pass_context
def run(ctx: click.Context, **_: Any) -> None:
    """Publish this node's labels, every --sleep-interval (or once with --oneshot): to the Node
    object (the default), an NFD NodeFeature object, or an NFD features.d file (--sink)."""
    stop, wake = Stop(), Wake()
    with handled(stop, wake):  # first: a SIGTERM during start-up or a oneshot is a clean stop, not exit 143
        from mig_labeler.daemon.root import run_daemon  # noqa: PLC0415 - kubernetes is imported only here

        given = GivenOptions.of(ctx)
        config = given.read()
        if config.needs_kubernetes:
            _require_node_name(config)
        setup_logging(config.log_format)
        log.info("mig-labeler %s starting", __version__, extra={"fields": {"settings": config.summary()}})
        _warn(config.warnings)
        if early_stop():  # it came while Python imported us, before the handlers above existed
            stop.request(early_stop())
        run_daemon(config, given, stop=stop, wake=wake, started=_invocation(ctx).started)


@cli.command()
@label_options
@kube_options
@mig_config_options
@node_config_options
@TIMEOUT_OPTION
@click.pass_context
def diff(ctx: click.Context, timeout: str, **_: Any) -> None:
    """Show what `run --oneshot` would add (+), change (~), remove (-) or adopt (*) on the Node.
    Writes nothing."""
    _interruptible()
    from mig_labeler.daemon.diff import label_diff  # noqa: PLC0415

    given = GivenOptions.of(ctx)
    config = given.read()
    _require_node_name(config)
    setup_logging("text")
    lines, warnings = label_diff(config, int(time.time()), timeout=parse_duration(timeout, "--timeout", 0.0),
                                 options=given, since=_invocation(ctx).started)
    _warn(config.warnings + tuple(warnings))
    _emit("".join(f"{line}\n" for line in lines))


@cli.command()
@click.option("-f", "--filename", "files", multiple=True, required=True, metavar="FILE",
              help="Kubernetes YAML or JSON with pod templates (several documents and List objects are fine); "
              "'-' reads standard input. Repeatable.")
@click.option("--fixture", "fixtures", multiple=True, metavar="NAME|PATH[:STRATEGY|dra]",
              help="A node from a fixture (bundled name or file), with its strategy after ':' (none, single, "
              "mixed; default --mig-strategy), or ':dra' for a DRA node (no device plugin; docs/dra.md). "
              "Repeatable: one node each.")
@click.option("--gpu", "gpus", multiple=True, metavar="MODEL[:COUNT]",
              help="A node that does not exist yet: COUNT GPUs of MODEL (a key of the model table), partitioned by "
              "--mig-config, labelled as labels --gpu labels it. Repeatable: one node each.")
@click.option("--mig-config", metavar="NAME", help="With --gpu: the mig-parted config its nodes get (e.g. "
              "all-balanced), from --mig-parted-config, else the config mig-manager generates for such a node. "
              "Without it, their GPUs are whole.")
@MIG_PARTED_FILE_OPTION
@click.option("--labels", "label_files", multiple=True, metavar="FILE",
              help="Nodes from saved labels: one node's map (labels -o json) or an object from node names to "
              "maps. Repeatable.")
@click.option("--node", "node_names", multiple=True, metavar="NAME", help="A node of the live cluster. Repeatable.")
@click.option("--nodes", "all_nodes", is_flag=True, help="Every node of the live cluster (with -l, the selected).")
@click.option("-l", "--selector", metavar="SELECTOR", help="With --nodes: a label selector.")
@click.option("--mig-strategy", metavar="none|single|mixed", help="Strategy of --fixture nodes.  [default: none]")
@click.option("--config-file", type=click.Path(dir_okay=False), help="Device-plugin/GFD config (sharing) for "
              "--fixture nodes.")
@click.option("--kubeconfig", envvar="KUBECONFIG", show_envvar=True, metavar="PATH[:PATH...]",
              help="kubeconfig for --node/--nodes (a list merges as kubectl merges it).")
@click.option("--context", "kube_context", envvar="MIG_LABELER_CONTEXT", show_envvar=True, metavar="NAME",
              help="The kubeconfig context for --node/--nodes, as kubectl's --context.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--list-nodes", is_flag=True, help="With -o json: each workload lists the names of the nodes it "
              "fits (nodes_matching) besides its node groups; on a large fleet that is workloads × nodes names.")
@TIMEOUT_OPTION
def check(files: tuple[str, ...], fixtures: tuple[str, ...], gpus: tuple[str, ...], mig_config: str | None,
          mig_parted_config: str | None, label_files: tuple[str, ...], node_names: tuple[str, ...], all_nodes: bool,
          selector: str | None, mig_strategy: str | None, config_file: str | None, kubeconfig: str | None,
          kube_context: str | None, output: str, list_nodes: bool, timeout: str) -> None:
    """Tell whether GPU workloads can land on these nodes, and why not: labels in nodeSelector and
    node affinity, GPU requests, the MIG strategy's resources. Exit 0 when every workload fits
    somewhere, 1 when one does not, 2 when input cannot be read."""
    _interruptible()
    from mig_labeler.check import input as check_input  # noqa: PLC0415 - keeps --help fast
    from mig_labeler.check import report  # noqa: PLC0415

    setup_logging("text")
    given = check_input.NodeSources(fixtures, gpus, mig_config, mig_parted_config, label_files, node_names, all_nodes,
                                    selector, mig_strategy, config_file, kubeconfig,
                                    parse_duration(timeout, "--timeout", 0.0), kube_context)
    found, skipped, autoscalers = check_input.read_workloads(files)
    nodes = check_input.nodes_from(given)
    results = check_input.run_checks(found, nodes)
    _emit(report.render(results, skipped, nodes, output, autoscalers, list_nodes))
    failing = [r for r in results if not r.fits]
    broken = [a for a in autoscalers if not a.ok]
    if failing or broken:
        parts = [f"{len(failing)} of {len(results)} workloads fit no node"] if failing else []
        parts += [f"{len(broken)} autoscalers would be refused"] if broken else []
        raise WorkloadsDoNotFit("; ".join(parts))


@dataclass(frozen=True)
class Invocation:
    """What the command line knows before click parses: when the process started."""

    started: float


def _invocation(ctx: click.Context) -> Invocation:
    found = ctx.find_object(Invocation)
    return found if found is not None else Invocation(time.monotonic())  # invoked without main (tests)


def main(argv: list[str] | None = None, started: float | None = None) -> None:
    """Entry point: the only place that turns an error into one line and an exit code. ``started``:
    when the process started (``time.monotonic()``), which time limits count from; default now."""
    try:
        cli.main(args=argv, prog_name="mig-labeler", standalone_mode=False,
                 obj=Invocation(time.monotonic() if started is None else started))
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.UsageError as e:  # one line, as every other error; the help is one flag away
        command = e.ctx.command_path if e.ctx is not None else "mig-labeler"
        click.echo(fatal_line(f"error: {e.format_message().rstrip('.')} (see '{command} --help')"), err=True)
        sys.exit(EXIT_BAD_INPUT)
    except click.ClickException as e:
        click.echo(fatal_line(f"error: {e.format_message()}"), err=True)
        sys.exit(EXIT_BAD_INPUT)
    except click.exceptions.Abort:  # Ctrl-C outside `run` (click turns KeyboardInterrupt into Abort)
        click.echo(fatal_line("interrupted"), err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Interrupted as e:  # a stop signal during start-up, before a command other than run
        click.echo(fatal_line(str(e)), err=True)
        sys.exit(e.exit_code)
    except MigLabelerError as e:
        click.echo(fatal_line(f"error: {e}"), err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(0)
    except BrokenPipeError:  # click's own output (--help, --version) into a closed pipe
        _discard_stdout()
        sys.exit(0)
    except OSError as e:
        if e.errno not in OUTPUT_ERRNOS:
            raise
        _discard_stdout()  # click's own output (--help, --version) to a full disk
        click.echo(fatal_line(f"error: cannot write the output: {e.strerror}"), err=True)
        sys.exit(EXIT_BAD_INPUT)
    sys.exit(0)


OUTPUT_ERRNOS = {errno.ENOSPC, errno.EIO, errno.EFBIG, errno.EDQUOT}

