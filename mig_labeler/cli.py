"""The ``mig-labeler`` command line (click).

Owns: parsing flags and environment variables (GFD's names accepted) into one frozen ``Config``
(precedence flag > env > config file > default), logging set-up, and the single place where a
``MigLabelerError`` becomes one line on stderr and an exit code. Commands stay thin: each calls
into ``desired``/``loop``/``kube``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from mig_labeler import __version__
from mig_labeler.config import (
    DEFAULT_OUTPUT_FILE,
    Config,
    FileSettings,
    MigStrategy,
    decode_text,
    parse_config_file,
    parse_duration,
    parse_go_bool,
    parse_mig_strategy,
    parse_sinks,
)
from mig_labeler.errors import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    ConfigError,
    MigLabelerError,
    OutputError,
    WorkloadsDoNotFit,
)
from mig_labeler.signals import Signals

log = logging.getLogger("mig_labeler")

def _option(*names: str, **kwargs: Any) -> Callable[[Any], Any]:
    """Every option has an environment variable, and --help shows it."""
    return click.option(*names, show_envvar=True, **kwargs)


LABEL_OPTIONS: list[Callable[[Any], Any]] = [
    _option("--fixture", envvar="MIG_LABELER_FIXTURE", metavar="PATH|NAME",
                 help="Read a node fixture (a file, or a bundled name such as dgx-a100-mixed) through the fake "
                 "NVML instead of real NVML: no GPU needed."),
    _option("--mig-strategy", envvar=["GFD_MIG_STRATEGY", "MIG_STRATEGY"], metavar="none|single|mixed",
                 help="How MIG devices are labelled.  [default: none]"),
    _option("--config-file", type=click.Path(dir_okay=False), envvar=["GFD_CONFIG_FILE", "CONFIG_FILE"],
                 help="Device-plugin/GFD config file (version: v1; flags, sharing)."),
    _option("--no-timestamp", is_flag=True, default=False, envvar="GFD_NO_TIMESTAMP",
                 help="Do not emit nvidia.com/gfd.timestamp."),
    _option("--machine-type-file", envvar="GFD_MACHINE_TYPE_FILE", metavar="PATH",
                 help="File holding the machine type.  [default: /sys/class/dmi/id/product_name]"),
    _option("--fail-on-init-error", type=click.BOOL, envvar=["GFD_FAIL_ON_INIT_ERROR", "FAIL_ON_INIT_ERROR"],
                 metavar="BOOLEAN", help="labels: exit 1 when NVML cannot start (false: treat the node as "
                 "GPU-less). run never wipes labels for this: it keeps them and retries.  [default: true]"),
    _option("--gpu-present-label/--no-gpu-present-label", default=True,
                 envvar="MIG_LABELER_GPU_PRESENT_LABEL", help="Emit nvidia.com/gpu.present=true.  [default: on]"),
]


KUBE_OPTIONS: list[Callable[[Any], Any]] = [
    _option("--node-name", envvar="NODE_NAME", help="Name of this node (the DaemonSet sets NODE_NAME from "
                 "the downward API)."),
    _option("--kubeconfig", envvar="KUBECONFIG", type=click.Path(dir_okay=False),
                 help="kubeconfig file. Default: the in-cluster service account, else ~/.kube/config."),
]

SINK_OPTIONS: list[Callable[[Any], Any]] = [
    _option("--sink", "sinks", multiple=True, envvar="MIG_LABELER_SINKS", metavar="node|nodefeature|file",
            help="Where labels go: node (server-side apply to the Node), nodefeature (an NFD NodeFeature object), "
            "file (an NFD features.d file). Repeatable; the variable takes a comma-separated list.  [default: node]"),
    _option("--output-file", "--output", "-o", "output_file", envvar="GFD_OUTPUT_FILE", metavar="PATH",
            help="The file sink's path ('-' for standard output). Given without --sink, it selects the file sink "
            "alone, and no Kubernetes configuration is needed.  "
            "[default: /etc/kubernetes/node-feature-discovery/features.d/gfd]"),
    _option("--use-node-feature-api", envvar=["GFD_USE_NODE_FEATURE_API", "USE_NODE_FEATURE_API"],
            metavar="BOOLEAN", help="true without --sink selects the nodefeature sink alone (Go booleans: "
            "true/false, 1/0, t/f).  [default: false]"),
    _option("--namespace", envvar="NAMESPACE", metavar="NAME", help="Namespace of the NodeFeature.  [default: the "
            "service account's namespace, else default]"),
    _option("--pod-name", envvar="POD_NAME", metavar="NAME", help="This Pod, for the NodeFeature's owner "
            "references (its DaemonSet and the Pod, as GFD sets them)."),
]

RUN_OPTIONS: list[Callable[[Any], Any]] = [
    _option("--oneshot", is_flag=True, default=False, envvar="GFD_ONESHOT",
                 help="Label once and exit; exits 1 if publishing failed."),
    _option("--sleep-interval", envvar="GFD_SLEEP_INTERVAL", metavar="DURATION",
                 help="Time between passes: a Go duration (60s, 1m) or 'infinite'.  [default: 60s]"),
    _option("--metrics-port", type=click.IntRange(0, 65535), default=8080, show_default=True,
                 envvar="MIG_LABELER_METRICS_PORT", help="Port for /healthz, /readyz and /metrics; 0 disables."),
    _option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
                 envvar="MIG_LABELER_LOG_FORMAT", help="Log line format on stderr."),
    _option("--oneshot-timeout", envvar="MIG_LABELER_ONESHOT_TIMEOUT", metavar="DURATION",
            help="--oneshot gives up (exit 1) when publishing takes longer than this, retries included.  "
            "[default: 30s]"),
]


def _with(options: list[Callable[[Any], Any]]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


label_options = _with(LABEL_OPTIONS)
kube_options = _with(KUBE_OPTIONS)
run_options = _with(RUN_OPTIONS)
sink_options = _with(SINK_OPTIONS)

SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def _sinks(ctx: click.Context, file: FileSettings) -> tuple[str, ...]:
    """--sink wins; else useNodeFeatureAPI true (flag > env > config file) selects nodefeature,
    and --output-file given as a flag or in the environment selects file (both: both); else the
    node sink. The config file's outputFile only sets the path: GFD's example config carries it,
    and a node-mode install sharing such a file must not switch modes."""
    p = ctx.params
    if p.get("sinks"):
        return parse_sinks(list(p["sinks"]))
    chosen: list[str] = []
    if _explicit(ctx, "use_node_feature_api"):
        use_api = parse_go_bool(p["use_node_feature_api"], "--use-node-feature-api")
    else:
        use_api = bool(file.use_node_feature_api)
    if use_api:
        chosen.append("nodefeature")
    if _explicit(ctx, "output_file"):
        chosen.append("file")
    return tuple(chosen) or ("node",)


def _namespace(ctx: click.Context) -> str:
    if ctx.params.get("namespace"):
        return str(ctx.params["namespace"])
    try:
        return Path(SERVICE_ACCOUNT_NAMESPACE).read_text().strip() or "default"
    except OSError:
        return "default"


def _explicit(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT) and ctx.params.get(name) is not None


def _pick(ctx: click.Context, name: str, file_value: Any, default: Any) -> Any:
    """Flag > env > file > default (gfd-reference §4.4)."""
    if _explicit(ctx, name):
        return ctx.params[name]
    return default if file_value is None else file_value


def load_file_settings(path: str | None) -> FileSettings:
    if not path:
        return FileSettings()
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from e
    return parse_config_file(decode_text(data, f"config file {path}"), path)


def _reject_empty_flags(ctx: click.Context) -> None:
    """One rule for empty values: an environment variable that is set but empty counts as unset
    (click's rule; Helm and kustomize often render empty values), while an empty value typed on
    the command line is a mistake, never a silent fallback (``--fixture ""`` must not mean "real
    NVML")."""
    for name, value in ctx.params.items():
        if value == "" and ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE:
            raise ConfigError(f"--{name.replace('_', '-')} is empty: give a value, or leave the option out")


def build_config(ctx: click.Context) -> Config:
    p = ctx.params
    _reject_empty_flags(ctx)
    file = load_file_settings(p.get("config_file"))
    strategy = p["mig_strategy"] if _explicit(ctx, "mig_strategy") else None
    interval = p.get("sleep_interval") if _explicit(ctx, "sleep_interval") else None
    oneshot_timeout = p.get("oneshot_timeout") if _explicit(ctx, "oneshot_timeout") else None
    return Config(
        mig_strategy=parse_mig_strategy(strategy) if strategy is not None else (file.mig_strategy or MigStrategy.NONE),
        sharing=file.sharing,
        no_timestamp=bool(_pick(ctx, "no_timestamp", file.no_timestamp, False)),
        machine_type_file=_pick(ctx, "machine_type_file", file.machine_type_file, None),
        fail_on_init_error=bool(_pick(ctx, "fail_on_init_error", file.fail_on_init_error, True)),
        gpu_present_label=bool(p["gpu_present_label"]),
        fixture=p.get("fixture"),
        config_file=p.get("config_file"),
        oneshot=bool(_pick(ctx, "oneshot", file.oneshot, False)) if "oneshot" in p else False,
        sleep_interval=parse_duration(interval) if interval is not None else (file.sleep_interval or 60.0),
        node_name=p.get("node_name") or None,
        kubeconfig=p.get("kubeconfig") or None,
        metrics_port=int(p.get("metrics_port") or 0) if "metrics_port" in p else 0,
        log_format=p.get("log_format") or "text",
        oneshot_timeout=30.0 if oneshot_timeout is None else parse_duration(oneshot_timeout, "--oneshot-timeout", 0.0),
        warnings=file.warnings,
        **_sink_settings(ctx, file),
    )


def _sink_settings(ctx: click.Context, file: FileSettings) -> dict[str, Any]:
    if "sinks" not in ctx.params:  # commands without sink options publish nowhere but the Node
        return {}
    return {"sinks": _sinks(ctx, file),
            "output_file": _pick(ctx, "output_file", file.output_file, DEFAULT_OUTPUT_FILE),
            "namespace": _namespace(ctx), "pod_name": ctx.params.get("pod_name") or None}


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"ts": round(record.created, 3), "level": record.levelname.lower(),
                           "msg": record.getMessage()})


def setup_logging(log_format: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("mig-labeler: %(levelname)s: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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
@click.pass_context
def labels(ctx: click.Context, output: str, **_: Any) -> None:
    """Print the labels this node would get. Writes nothing to Kubernetes."""
    from mig_labeler.pipeline import desired_labels  # noqa: PLC0415 - keeps --help fast
    from mig_labeler.sources import open_source  # noqa: PLC0415

    config = build_config(ctx)
    setup_logging("text")
    result = desired_labels(open_source(config.fixture, config.machine_type_file), config, int(time.time()))
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


def _require_node_name(config: Config) -> str:
    if not config.node_name:
        raise ConfigError("no node name: pass --node-name or set NODE_NAME (in a pod, from spec.nodeName)")
    return config.node_name


@cli.command()
@label_options
@kube_options
@sink_options
@run_options
@click.pass_context
def run(ctx: click.Context, **_: Any) -> None:
    """Publish this node's labels, every --sleep-interval (or once with --oneshot): to the Node
    object (the default), an NFD NodeFeature object, or an NFD features.d file (--sink)."""
    signals = Signals()
    with signals.handled():  # first: a SIGTERM during start-up or a oneshot is a clean stop, not exit 143
        from mig_labeler.runner import run_daemon  # noqa: PLC0415 - kubernetes is imported only here

        config = build_config(ctx)
        if config.needs_kubernetes:
            _require_node_name(config)
        setup_logging(config.log_format)
        log.info("mig-labeler %s starting: %s", __version__, json.dumps(config.summary(), sort_keys=True))
        _warn(config.warnings)
        run_daemon(config, reload_config=lambda: build_config(ctx), signals=signals)


TIMEOUT_OPTION = _option("--timeout", envvar="MIG_LABELER_TIMEOUT", metavar="DURATION", default="30s",
                         help="Give up (exit 1) when reading from the API server takes longer than this, retries "
                         "included.  [default: 30s]")


@cli.command()
@label_options
@kube_options
@TIMEOUT_OPTION
@click.pass_context
def diff(ctx: click.Context, timeout: str, **_: Any) -> None:
    """Show what `run --oneshot` would add (+), change (~), remove (-) or adopt (*) on the Node.
    Writes nothing."""
    from mig_labeler.runner import label_diff  # noqa: PLC0415

    config = build_config(ctx)
    _require_node_name(config)
    setup_logging("text")
    lines, warnings = label_diff(config, int(time.time()), timeout=parse_duration(timeout, "--timeout", 0.0))
    _warn(config.warnings + tuple(warnings))
    _emit("".join(f"{line}\n" for line in lines))


@cli.command()
@click.option("-f", "--filename", "files", multiple=True, required=True, metavar="FILE",
              help="Kubernetes YAML or JSON with pod templates (several documents and List objects are fine); "
              "'-' reads standard input. Repeatable.")
@click.option("--fixture", "fixtures", multiple=True, metavar="NAME|PATH[:STRATEGY]",
              help="A node from a fixture (bundled name or file), with its strategy after ':' (none, single, "
              "mixed; default --mig-strategy). Repeatable: one node each.")
@click.option("--labels", "label_files", multiple=True, metavar="FILE",
              help="Nodes from saved labels: one node's map (labels -o json) or an object from node names to "
              "maps. Repeatable.")
@click.option("--node", "node_names", multiple=True, metavar="NAME", help="A node of the live cluster. Repeatable.")
@click.option("--nodes", "all_nodes", is_flag=True, help="Every node of the live cluster (with -l, the selected).")
@click.option("-l", "--selector", metavar="SELECTOR", help="With --nodes: a label selector.")
@click.option("--mig-strategy", metavar="none|single|mixed", help="Strategy of --fixture nodes.  [default: none]")
@click.option("--config-file", type=click.Path(dir_okay=False), help="Device-plugin/GFD config (sharing) for "
              "--fixture nodes.")
@click.option("--kubeconfig", envvar="KUBECONFIG", show_envvar=True, type=click.Path(dir_okay=False),
              help="kubeconfig for --node/--nodes.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@TIMEOUT_OPTION
def check(files: tuple[str, ...], fixtures: tuple[str, ...], label_files: tuple[str, ...],
          node_names: tuple[str, ...], all_nodes: bool, selector: str | None, mig_strategy: str | None,
          config_file: str | None, kubeconfig: str | None, output: str, timeout: str) -> None:
    """Tell whether GPU workloads can land on these nodes, and why not: labels in nodeSelector and
    node affinity, GPU requests, the MIG strategy's resources. Exit 0 when every workload fits
    somewhere, 1 when one does not, 2 when input cannot be read."""
    from mig_labeler import check_input  # noqa: PLC0415 - keeps --help fast

    setup_logging("text")
    sources = sum(bool(x) for x in (fixtures, label_files, node_names or all_nodes))
    if sources != 1:
        raise ConfigError("give the nodes one way: --fixture, --labels, or --node/--nodes")
    if selector and not all_nodes:
        raise ConfigError("-l/--selector goes with --nodes")
    found, skipped = check_input.read_workloads(files)
    if fixtures:
        nodes = check_input.fixture_nodes(fixtures, parse_mig_strategy(mig_strategy or "none"),
                                          load_file_settings(config_file).sharing)
    elif label_files:
        nodes = check_input.label_nodes(label_files)
    else:
        nodes = check_input.cluster_nodes(kubeconfig, list(node_names), selector,
                                          parse_duration(timeout, "--timeout", 0.0))
    results = check_input.run_checks(found, nodes)
    _emit(check_input.render(results, skipped, nodes, output))
    failing = [r for r in results if not r.fits]
    if failing:
        raise WorkloadsDoNotFit(f"{len(failing)} of {len(results)} workloads fit no node")


def main(argv: list[str] | None = None) -> None:
    """Entry point: the only place that turns an error into one line and an exit code."""
    try:
        cli.main(args=argv, prog_name="mig-labeler", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.UsageError as e:  # one line, as every other error; the help is one flag away
        command = e.ctx.command_path if e.ctx is not None else "mig-labeler"
        click.echo(f"mig-labeler: error: {e.format_message().rstrip('.')} (see '{command} --help')", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except click.ClickException as e:
        click.echo(f"mig-labeler: error: {e.format_message()}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except click.exceptions.Abort:  # Ctrl-C outside `run` (click turns KeyboardInterrupt into Abort)
        click.echo("mig-labeler: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except MigLabelerError as e:
        click.echo(f"mig-labeler: error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(0)
    sys.exit(0)

