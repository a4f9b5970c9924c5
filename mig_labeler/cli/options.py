"""The command line's options: GFD's flags (built from ``gfd_flags.GFD_FLAGS``, one row each, with
its environment variables) and mig-labeler's own.

Owns: option names, environment variables, metavars and help text, grouped by the commands that
take them. Values stay strings here; ``cli.build_config`` turns them into the one ``Config``
(booleans in Go's spellings, durations in Go's syntax, both for flags and variables).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from mig_labeler.cli.gfd_flags import flag

Decorator = Callable[[Any], Any]
GO_BOOL = "[=BOOL]"  # a bare GFD boolean means true; =false and Go's other spellings work too


def option(*names: str, **kwargs: Any) -> Decorator:
    """Every option has an environment variable, and --help shows it."""
    return click.option(*names, show_envvar=True, **kwargs)


def gfd_option(name: str, help: str, **kwargs: Any) -> Decorator:  # noqa: A002 - click's own keyword
    """A GFD flag, its aliases and environment variables from its row in ``GFD_FLAGS``. A boolean
    takes an optional value: ``--oneshot`` alone, ``--oneshot=false``; ``gfd_flags.translate``
    has already rewritten GFD's grammar into ``--name=value`` by the time click parses it."""
    row = flag(name)
    names = [f"--{row.name}", *(f"-{a}" if len(a) == 1 else f"--{a}" for a in row.aliases)]
    if row.kind == "bool":
        kwargs.update(is_flag=False, flag_value="true", metavar=GO_BOOL)
    return option(*names, kwargs.pop("dest", row.name.replace("-", "_")), envvar=list(row.envvars), help=help,
                  **kwargs)


LABEL_OPTIONS: list[Decorator] = [
    option("--fixture", envvar="MIG_LABELER_FIXTURE", metavar="PATH|NAME",
           help="Read a node fixture (a file, or a bundled name such as dgx-a100-mixed) through the fake "
           "NVML instead of real NVML: no GPU needed."),
    gfd_option("mig-strategy", metavar="none|single|mixed", help="How MIG devices are labelled.  [default: none]"),
    gfd_option("config-file", type=click.Path(dir_okay=False),
               help="Device-plugin/GFD config file (version: v1; flags, sharing)."),
    gfd_option("no-timestamp", help="Do not emit nvidia.com/gfd.timestamp."),
    gfd_option("machine-type-file", metavar="PATH",
               help="File holding the machine type.  [default: /sys/class/dmi/id/product_name]"),
    gfd_option("fail-on-init-error", help="labels: exit 1 when NVML cannot start (false: treat the node as "
               "GPU-less). run never wipes labels for this: it keeps them and retries.  [default: true]"),
    gfd_option("device-discovery-strategy", metavar="auto|nvml", help="How GPUs are found: auto and nvml both "
               "mean NVML (GFD's tegra and vfio are not supported).  [default: auto]"),
    gfd_option("driver-root-ctr-path", metavar="PATH", help="Where the host's driver root is mounted: "
               "libnvidia-ml.so.1 is looked for under it when the loader does not find it (the NVIDIA container "
               "runtime puts it on the loader's path).  [default: /driver-root]"),
    option("--gpu-present-label/--no-gpu-present-label", default=True,
           envvar="MIG_LABELER_GPU_PRESENT_LABEL", help="Emit nvidia.com/gpu.present=true.  [default: on]"),
    option("--resource-api", type=click.Choice(["auto", "device-plugin", "dra"]), default="auto",
           show_default=True, envvar="MIG_LABELER_RESOURCE_API",
           help="How pods get this node's GPUs. dra: Dynamic Resource Allocation (no device plugin): only the "
           "labels that describe the hardware, none that name device-plugin resources (docs/dra.md). auto: "
           "dra when the Node has nvidia.com/gpu.deploy.dra-driver=true or ResourceSlices of the driver "
           "gpu.nvidia.com, else device-plugin (labels, which has no cluster: device-plugin)."),
]

KUBE_OPTIONS: list[Decorator] = [
    gfd_option("node-name", help="Name of this node (the DaemonSet sets NODE_NAME from the downward API)."),
    gfd_option("kubeconfig", metavar="PATH[:PATH...]",
               help="kubeconfig file, or a list merged as kubectl merges it (the first file to set a value wins, "
               "the current context included). Default: the in-cluster service account, else ~/.kube/config."),
    option("--context", "kube_context", envvar="MIG_LABELER_CONTEXT", metavar="NAME",
           help="The kubeconfig context to use, as kubectl's --context.  [default: the current context]"),
    gfd_option("kube-api-qps", metavar="QPS", help="Client-side limit on API requests per second, as "
               "client-go applies it (0: 5; negative: no limit).  [default: 5]"),
    gfd_option("kube-api-burst", metavar="N", help="Requests allowed at once above --kube-api-qps "
               "(0: 10).  [default: 10]"),
]

SINK_OPTIONS: list[Decorator] = [
    option("--sink", "sinks", multiple=True, envvar="MIG_LABELER_SINKS", metavar="node|nodefeature|file",
           help="Where labels go: node (server-side apply to the Node), nodefeature (an NFD NodeFeature object), "
           "file (an NFD features.d file). Repeatable; the variable takes a comma-separated list.  [default: node]"),
    gfd_option("output-file", metavar="PATH",
               help="The file sink's path ('-' for standard output); -o and --output are GFD's aliases (on run a "
               "path, never an output format). Given without --sink, it selects the file sink alone, and no "
               "Kubernetes configuration is needed.  [default: /etc/kubernetes/node-feature-discovery/features.d/gfd]"),
    gfd_option("use-node-feature-api", help="true without --sink selects the nodefeature sink alone (GFD "
               "defaults to true; mig-labeler patches the Node unless told otherwise).  [default: false]"),
    gfd_option("namespace", metavar="NAME", help="Namespace of the NodeFeature.  [default: the service account's "
               "namespace, else default]"),
    gfd_option("pod-name", metavar="NAME", help="This Pod, for the NodeFeature's owner references (its DaemonSet "
               "and the Pod, as GFD sets them)."),
]

RUN_OPTIONS: list[Decorator] = [
    gfd_option("oneshot", help="Label once and exit; exits 1 if publishing failed."),
    gfd_option("sleep-interval", metavar="DURATION",
               help="Time between passes: a Go duration (60s, 1m) or 'infinite'.  [default: 60s]"),
    option("--metrics-port", type=click.IntRange(0, 65535), default=8080, show_default=True,
           envvar="MIG_LABELER_METRICS_PORT", help="Port for /healthz, /readyz and /metrics; 0 disables."),
    option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
           envvar="MIG_LABELER_LOG_FORMAT", help="Log line format on stderr."),
    option("--mig-config-stuck-after", envvar="MIG_LABELER_MIG_CONFIG_STUCK_AFTER", metavar="DURATION",
           help="A MIG config request still pending, rebooting or unanswered by mig-manager after this long is "
           "stuck: a Warning Event and mig_labeler_mig_config_stuck 1 (0: never).  [default: 15m]"),
    option("--oneshot-timeout", envvar="MIG_LABELER_ONESHOT_TIMEOUT", metavar="DURATION",
           help="--oneshot gives up (exit 1) when publishing takes longer than this, retries included.  "
           "[default: 30s]"),
]

# The MIG config a Node asks for, verified (run) or planned (diff) against the mig-parted config.
MIG_CONFIG_OPTIONS: list[Decorator] = [
    option("--mig-parted-config", envvar="MIG_LABELER_MIG_PARTED_CONFIG", metavar="PATH",
           help="The GPU Operator's mig-parted config as a file (its default-mig-parted-config ConfigMap, key "
           "config.yaml, mounted): verify each GPU's layout against the config the Node's nvidia.com/mig.config "
           "names, and label nvidia.com/mig.config.applied=<name> while it matches.  [default: off]"),
    option("--mig-parted-configmap", envvar="MIG_LABELER_MIG_PARTED_CONFIGMAP", metavar="NAMESPACE/NAME",
           help="The same config read through the API from a ConfigMap in another namespace (e.g. "
           "gpu-operator/default-mig-parted-config), watched: a change applies without a restart. Needs get and "
           "watch on that ConfigMap alone. NAMESPACE/auto (auto: gpu-operator/auto) picks the one mig-manager "
           "uses, as the GPU Operator does: the ClusterPolicy's custom config, else the node's generated "
           "<node>-mig-config, else default-mig-parted-config.  [default: off]"),
    option("--mig-parted-configmap-key", envvar="MIG_LABELER_MIG_PARTED_CONFIGMAP_KEY", metavar="KEY",
           default="config.yaml", show_default=True, help="The ConfigMap key that holds the config."),
]

# Per-node device-plugin configs, with NVIDIA config-manager's flag and variable names.
NODE_CONFIG_OPTIONS: list[Decorator] = [
    option("--config-file-srcdir", envvar="CONFIG_FILE_SRCDIR", metavar="DIR",
           help="A directory of named device-plugin/GFD configs (the device-plugin chart's config.map, mounted): "
           "each node uses the one its nvidia.com/device-plugin.config label names, as NVIDIA's config-manager "
           "picks it, and follows a change of the label at once. Instead of --config-file.  [default: off]"),
    option("--node-label", envvar="NODE_LABEL", metavar="KEY", default="nvidia.com/device-plugin.config",
           show_default=True, help="The Node label that names the config."),
    option("--default-config", envvar="DEFAULT_CONFIG", metavar="NAME",
           help="The config of a node without the label (the device-plugin chart's config.default)."),
    option("--fallback-strategies", envvar="FALLBACK_STRATEGIES", metavar="LIST", default="named,single",
           show_default=True, help="Without the label and a default: named (a config called default), single (the "
           "only config), empty (no config), tried in order."),
]

# labels --gpu and check --gpu: the file that defines --mig-config (no ConfigMap: nothing is read
# from a cluster for a node that does not exist).
MIG_PARTED_FILE_OPTION = option("--mig-parted-config", envvar="MIG_LABELER_MIG_PARTED_CONFIG", metavar="PATH",
                                help="The mig-parted config file that defines --mig-config (the GPU Operator's "
                                "default-mig-parted-config, key config.yaml, or a custom one). Without it, the config "
                                "mig-manager generates for such a node (GPU Operator 26.3+).")

TIMEOUT_OPTION = option("--timeout", envvar="MIG_LABELER_TIMEOUT", metavar="DURATION", default="30s",
                        help="Give up (exit 1) when reading from the API server takes longer than this, retries "
                        "included.  [default: 30s]")


def with_options(options: list[Decorator]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        for o in reversed(options):
            f = o(f)
        return f

    return decorate


label_options = with_options(LABEL_OPTIONS)
kube_options = with_options(KUBE_OPTIONS)
run_options = with_options(RUN_OPTIONS)
mig_config_options = with_options(MIG_CONFIG_OPTIONS)
sink_options = with_options(SINK_OPTIONS)
node_config_options = with_options(NODE_CONFIG_OPTIONS)
