"""GFD's command line: its flag table and Go's flag grammar, translated for click.

Owns: ``GFD_FLAGS`` (every flag of gpu-feature-discovery v0.20, from ``cmd/gpu-feature-discovery/
main.go`` and ``internal/flags/`` of NVIDIA/k8s-device-plugin, with its aliases, environment
variables and GFD's default) and ``translate``, which rewrites an argument list written in GFD's
grammar into the one click parses. The CLI builds its options for these flags from the same rows.
Pure: arguments in, arguments or ``ConfigError`` out; no click, no environment.

GFD parses with urfave/cli over Go's ``flag`` package:
- ``-flag`` and ``--flag`` are the same flag; single-dash words are never bundles of short options,
  so ``-oneshot`` is ``--oneshot`` (click alone would read ``-o neshot``);
- ``-flag=value`` and ``-flag value`` for flags with a value;
- booleans are bare (``--oneshot``) with an optional ``=value`` in ``strconv.ParseBool``'s
  spellings; they never take the next argument;
- the binary has no subcommands: when the first argument is a flag, the command is ``run``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from mig_labeler.config import parse_go_bool
from mig_labeler.errors import ConfigError


@dataclass(frozen=True, slots=True)
class GfdFlag:
    name: str  # GFD's flag name, and ours: --name
    kind: str  # bool | string | duration | float | int
    envvars: tuple[str, ...]
    gfd_default: str
    ours: str  # what mig-labeler does with it (README, "GFD's options")
    aliases: tuple[str, ...] = ()
    commands: frozenset[str] = frozenset({"run"})  # our commands that take it


LABELLING = frozenset({"run", "labels", "diff"})
KUBE = frozenset({"run", "diff"})

GFD_FLAGS: tuple[GfdFlag, ...] = (
    GfdFlag("mig-strategy", "string", ("GFD_MIG_STRATEGY", "MIG_STRATEGY"), "none", "same",
            commands=LABELLING),
    GfdFlag("fail-on-init-error", "bool", ("GFD_FAIL_ON_INIT_ERROR", "FAIL_ON_INIT_ERROR"), "true",
            "labels: same; run keeps the last good labels and retries instead of exiting", commands=LABELLING),
    GfdFlag("oneshot", "bool", ("GFD_ONESHOT",), "false", "same; exits 1 if publishing failed"),
    GfdFlag("no-timestamp", "bool", ("GFD_NO_TIMESTAMP",), "false", "same", commands=LABELLING),
    GfdFlag("sleep-interval", "duration", ("GFD_SLEEP_INTERVAL",), "60s",
            "same Go durations and 'infinite'; at least 1s (GFD allows a hot loop at 0s)"),
    GfdFlag("output-file", "string", ("GFD_OUTPUT_FILE",), "/etc/kubernetes/node-feature-discovery/features.d/gfd",
            "the file sink's path; given as a flag or variable, it selects the file sink", ("output", "o")),
    GfdFlag("machine-type-file", "string", ("GFD_MACHINE_TYPE_FILE",), "/sys/class/dmi/id/product_name", "same",
            commands=LABELLING),
    GfdFlag("config-file", "string", ("GFD_CONFIG_FILE", "CONFIG_FILE"), "", "same format (version: v1)",
            commands=LABELLING),
    GfdFlag("use-node-feature-api", "bool", ("GFD_USE_NODE_FEATURE_API", "USE_NODE_FEATURE_API"), "true",
            "true selects the nodefeature sink; default false: mig-labeler patches the Node"),
    GfdFlag("device-discovery-strategy", "string", ("DEVICE_DISCOVERY_STRATEGY",), "auto",
            "auto and nvml (NVML); tegra and vfio are refused with exit 2", commands=LABELLING),
    GfdFlag("driver-root-ctr-path", "string", ("DRIVER_ROOT_CTR_PATH", "CONTAINER_DRIVER_ROOT"), "/driver-root",
            "where libnvidia-ml.so.1 is looked for when the loader does not find it", ("container-driver-root",),
            commands=LABELLING),
    GfdFlag("kubeconfig", "string", ("KUBECONFIG",), "", "same", commands=KUBE),
    GfdFlag("kube-api-qps", "float", ("KUBE_API_QPS",), "5", "same client-side rate limit (client-go's token bucket)",
            commands=KUBE),
    GfdFlag("kube-api-burst", "int", ("KUBE_API_BURST",), "10", "same", commands=KUBE),
    GfdFlag("namespace", "string", ("NAMESPACE",), "default", "the NodeFeature's namespace"),
    GfdFlag("node-name", "string", ("NODE_NAME",), "", "same; required for the node and nodefeature sinks",
            commands=KUBE),
    GfdFlag("pod-name", "string", ("POD_NAME",), "", "same: the NodeFeature's owner references"),
)

BY_NAME = {n: f for f in GFD_FLAGS for n in (f.name, *f.aliases)}
TOP_LEVEL = {"help": "--help", "h": "--help", "version": "--version", "v": "--version"}
COMMANDS = ("run", "labels", "diff", "check")


def flag(name: str) -> GfdFlag:
    return BY_NAME[name]


# Variables that say "configured as GFD" when the binary runs with no arguments; KUBECONFIG and
# NAMESPACE are set on many workstations for other reasons, so a newcomer there still gets the help.
NOT_GFD_ALONE = {"KUBECONFIG", "NAMESPACE"}


def configured_by_environment(environ: Mapping[str, str]) -> bool:
    """GFD's pods run its binary with no arguments and configure it by environment alone (its
    static manifests set MIG_STRATEGY; its README's table the GFD_* names): any of those, set and
    not empty, or NODE_NAME (every DaemonSet sets it), means ``run``."""
    names = {v for f in GFD_FLAGS for v in f.envvars} - NOT_GFD_ALONE
    return any(environ.get(name) for name in names)


def translate(argv: Sequence[str], own: Mapping[str, tuple[Collection[str], Collection[str]]],
              in_pod: bool = False) -> list[str]:
    """``argv`` after the program name, rewritten for click. ``own`` gives, per command, our own
    option names (long, without dashes) and short letters, which keep their meaning. No
    arguments at all: ``run`` in a pod (``in_pod``: ``configured_by_environment``), else the help,
    for a newcomer at a terminal."""
    args = list(argv)
    if not args:
        return ["run"] if in_pod else ["--help"]
    if args[0] == "help":  # urfave/cli's help command: `help` and `help COMMAND`
        return [args[1], "--help"] if len(args) == 2 and args[1] in own else ["--help"]
    first = args[0]
    if first.startswith("-") and first != "-":
        word = first.lstrip("-").partition("=")[0]
        if word in TOP_LEVEL and len(args) == 1:
            return [TOP_LEVEL[word]]
        args = ["run", *args]  # GFD's binary has no subcommands: its flags mean `run`
    command, rest = args[0], args[1:]
    if command not in own or command == "check":
        return args
    long_names, short = own[command]
    return [command, *_translate_flags(command, rest, set(long_names), set(short))]


def _translate_flags(command: str, args: list[str], long_names: set[str], short: set[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        i += 1
        if token == "--":
            return [*out, *args[i - 1:]]  # after --, nothing is a flag
        if not token.startswith("-") or token == "-":
            out.append(token)  # click reports a stray argument
            continue
        dashes = 2 if token.startswith("--") else 1
        name, eq, value = token[dashes:].partition("=")
        gfd = BY_NAME.get(name)
        if gfd is not None and command in gfd.commands:
            if gfd.kind == "bool":
                out.append(f"--{gfd.name}={'true' if not eq or parse_go_bool(value, token) else 'false'}")
                continue
            if not eq:
                if i >= len(args):
                    raise ConfigError(f"flag needs an argument: {token}")
                value, i = args[i], i + 1
            out.extend([f"--{gfd.name}", value])
            continue
        out.append(_own_option(command, token, dashes, name, gfd, long_names, short))
    return out


def _own_option(command: str, token: str, dashes: int, name: str, gfd: GfdFlag | None, long_names: set[str],
                short: set[str]) -> str:
    """A token that is not one of this command's GFD flags."""
    if dashes == 1 and name[:1] in short and len(name) == 1 or name in ("help", "h"):
        return "--help" if name in ("help", "h") else token  # our short options: -o on labels and check
    if gfd is not None:
        raise ConfigError(f"{token} is not an option of `mig-labeler {command}` (`mig-labeler run` takes it)")
    if dashes == 2 or name in long_names:
        return f"--{token[dashes:]}"  # ours; an unknown one is click's to report, with suggestions
    raise ConfigError(f"unknown flag {token}: a single dash starts one whole flag, as in GFD (-oneshot is "
                      f"--oneshot), never a bundle of short options (see 'mig-labeler {command} --help')")
