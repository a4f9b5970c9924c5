"""From parsed options to the one frozen ``Config``: precedence flag > environment > config file >
default (gfd-reference §4.4), GFD's booleans and durations in Go's syntax, the sink selection.

Owns: ``GivenOptions`` (what was given, and where from) and ``build_config``. Reads click's parsed
parameters and where each came from, once; the environment only to name the variable a bad value
came from. Every bad value is a ``ConfigError`` (exit 2) that names the flag or variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from mig_labeler.cli.gfd_flags import flag
from mig_labeler.config import (
    DEFAULT_OUTPUT_FILE,
    Config,
    MigStrategy,
    parse_duration,
    parse_go_bool,
    parse_mig_strategy,
    parse_sinks,
)
from mig_labeler.config_file import FileSettings
from mig_labeler.errors import ConfigError
from mig_labeler.label_names import dns_label_error, dns_subdomain_error, key_error
from mig_labeler.node_configs import LABEL, NodeConfigs, parse_fallbacks
from mig_labeler.text_files import load_config_file

SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def _sinks(ctx: GivenOptions, file: FileSettings) -> tuple[str, ...]:
    """--sink wins; else useNodeFeatureAPI true (flag > env > config file) selects nodefeature,
    and --output-file given as a flag or in the environment selects file (both: both); else the
    node sink. The config file's outputFile only sets the path: GFD's example config carries it,
    and a node-mode install sharing such a file must not switch modes."""
    p = ctx.params
    if p.get("sinks"):
        return parse_sinks(list(p["sinks"]))
    chosen: list[str] = []
    if _bool(ctx, "use_node_feature_api", file.use_node_feature_api, False):
        chosen.append("nodefeature")
    if _explicit(ctx, "output_file"):
        chosen.append("file")
    return tuple(chosen) or ("node",)


def _namespace(ctx: GivenOptions) -> tuple[str, bool]:
    """The NodeFeature's namespace, and whether it is known (--namespace/NAMESPACE, or the pod's
    service account) rather than the fallback ``default``."""
    if ctx.params.get("namespace"):
        return str(ctx.params["namespace"]), True
    try:
        found = Path(SERVICE_ACCOUNT_NAMESPACE).read_text().strip()
    except OSError:
        found = ""
    return found or "default", bool(found)


def _explicit(ctx: GivenOptions, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT) and ctx.params.get(name) is not None


def _pick(ctx: GivenOptions, name: str, file_value: Any, default: Any) -> Any:
    """Flag > env > file > default (gfd-reference §4.4)."""
    if _explicit(ctx, name):
        return ctx.params[name]
    return default if file_value is None else file_value


def _bool(ctx: GivenOptions, name: str, file_value: bool | None, default: bool) -> bool:
    """A GFD boolean, flag > env > file > default; flag and variable both in Go's spellings."""
    if name not in ctx.params:
        return default
    if _explicit(ctx, name):
        return parse_go_bool(str(ctx.params[name]), _where(ctx, name))
    return default if file_value is None else file_value


def _where(ctx: GivenOptions, name: str) -> str:
    """The flag, or the environment variable a value came from, for an error message."""
    option = name.replace("_", "-")
    if ctx.get_parameter_source(name) == ParameterSource.ENVIRONMENT:
        return next((v for v in flag(option).envvars if os.environ.get(v)), option.upper())
    return f"--{option}"


def _number(ctx: GivenOptions, name: str, kind: type[float] | type[int], default: float) -> Any:
    if not _explicit(ctx, name):
        return default
    text = str(ctx.params[name])
    try:
        return kind(text)
    except ValueError:
        raise ConfigError(f"{_where(ctx, name)} must be {'an integer' if kind is int else 'a number'}, "
                          f"not {text!r}") from None


DISCOVERY_STRATEGIES = ("auto", "nvml", "tegra", "vfio")  # GFD's validateFlags


def _discovery_strategy(ctx: GivenOptions) -> str:
    value = str(ctx.params.get("device_discovery_strategy") or "auto")
    if value not in DISCOVERY_STRATEGIES:
        raise ConfigError(f"invalid --device-discovery-strategy option {value!r}: use auto or nvml")
    if value in ("tegra", "vfio"):
        raise ConfigError(f"--device-discovery-strategy {value} is not supported: mig-labeler finds GPUs "
                          "through NVML only (auto or nvml)")
    return value


OUTPUT_FORMATS = ("text", "json", "yaml", "wide", "name")


def _output_file(ctx: GivenOptions, file: FileSettings) -> str:
    """``-o`` on run is GFD's alias for --output-file: a path. A value that reads as an output
    format (``run --oneshot -o json``) is refused instead of becoming a file named json."""
    path = str(_pick(ctx, "output_file", file.output_file, DEFAULT_OUTPUT_FILE))
    if path in OUTPUT_FORMATS and ctx.get_parameter_source("output_file") == ParameterSource.COMMANDLINE:
        raise ConfigError(f"-o/--output on run is GFD's --output-file, a path, not an output format: to write a "
                          f"file named {path}, give ./{path}; to see the labels, use `mig-labeler labels -o {path}`")
    return path


def _reject_empty_flags(ctx: GivenOptions) -> None:
    """One rule for empty values: an environment variable that is set but empty counts as unset
    (click's rule; Helm and kustomize often render empty values), while an empty value typed on
    the command line is a mistake, never a silent fallback (``--fixture ""`` must not mean "real
    NVML")."""
    for name, value in ctx.params.items():
        if value == "" and ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE:
            raise ConfigError(f"--{name.replace('_', '-')} is empty: give a value, or leave the option out")


@dataclass(frozen=True)
class GivenOptions:
    """What the command line was given: each parameter's value and where it came from (the
    command line, the environment, the default). Plain data, no click ``Context``: the daemon
    holds it as its ``ConfigSource`` and reads the configuration again on a reload (the config
    file may have changed; flags and environment cannot)."""

    params: Mapping[str, Any]
    sources: Mapping[str, ParameterSource | None]
    info_name: str | None

    @classmethod
    def of(cls, ctx: click.Context) -> GivenOptions:
        return cls(dict(ctx.params), {name: ctx.get_parameter_source(name) for name in ctx.params}, ctx.info_name)

    def get_parameter_source(self, name: str) -> ParameterSource | None:
        return self.sources.get(name)

    def read(self) -> Config:
        return _build(self)

    def read_with(self, config_file: str | None) -> Config:
        """As ``read``, with ``config_file`` (a node's config from --config-file-srcdir; None: the
        empty config) in place of --config-file."""
        return _build(GivenOptions({**self.params, "config_file": config_file, "config_file_srcdir": None},
                                   self.sources, self.info_name), self.params.get("config_file_srcdir"))


def build_config(ctx: click.Context) -> Config:
    """The ``Config`` a command's parsed options give (flag > env > config file > default)."""
    return GivenOptions.of(ctx).read()


def _build(ctx: GivenOptions, chosen_from: str | None = None) -> Config:
    p = ctx.params
    _reject_empty_flags(ctx)
    file = load_config_file(p.get("config_file"))
    strategy = p["mig_strategy"] if _explicit(ctx, "mig_strategy") else None
    interval = p.get("sleep_interval") if _explicit(ctx, "sleep_interval") else None
    oneshot_timeout = p.get("oneshot_timeout") if _explicit(ctx, "oneshot_timeout") else None
    config = Config(
        mig_strategy=parse_mig_strategy(strategy) if strategy is not None else (file.mig_strategy or MigStrategy.NONE),
        sharing=file.sharing,
        no_timestamp=_bool(ctx, "no_timestamp", file.no_timestamp, False),
        machine_type_file=_pick(ctx, "machine_type_file", file.machine_type_file, None),
        fail_on_init_error=_bool(ctx, "fail_on_init_error", file.fail_on_init_error, True),
        gpu_present_label=bool(p["gpu_present_label"]),
        fixture=p.get("fixture"),
        config_file=p.get("config_file"),
        oneshot=_bool(ctx, "oneshot", file.oneshot, False),
        device_discovery_strategy=_discovery_strategy(ctx),
        driver_root=str(p.get("driver_root_ctr_path") or flag("driver-root-ctr-path").gfd_default),
        kube_api_qps=float(_number(ctx, "kube_api_qps", float, 5.0)),
        kube_api_burst=int(_number(ctx, "kube_api_burst", int, 10)),
        sleep_interval=parse_duration(interval, _where(ctx, "sleep_interval")) if interval is not None
        else (file.sleep_interval or 60.0),
        node_name=p.get("node_name") or None,
        kubeconfig=p.get("kubeconfig") or None,
        kube_context=p.get("kube_context") or None,
        metrics_port=int(p.get("metrics_port") or 0) if "metrics_port" in p else 0,
        log_format=p.get("log_format") or "text",
        oneshot_timeout=30.0 if oneshot_timeout is None else parse_duration(oneshot_timeout, "--oneshot-timeout", 0.0),
        warnings=file.warnings,
        mig_parted=_mig_parted(ctx),
        mig_parted_file=str(ctx.params["mig_parted_config"]) if ctx.params.get("mig_parted_config") else None,
        mig_parted_configmap=_mig_parted_configmap(ctx),
        mig_config_stuck_after=_stuck_after(ctx),
        resource_api=str(p.get("resource_api") or "auto"),
        node_configs=_node_configs(ctx, chosen_from),
        **_sink_settings(ctx, file),
    )
    if config.mig_parted is not None and config.mig_parted.warnings:
        config = replace(config, warnings=(*config.warnings, *config.mig_parted.warnings))
    return _unused_mig_parted(config, ctx.info_name)


def _sink_settings(ctx: GivenOptions, file: FileSettings) -> dict[str, Any]:
    if "sinks" not in ctx.params:  # commands without sink options publish nowhere but the Node
        return {}
    namespace, known = _namespace(ctx)
    return {"sinks": _sinks(ctx, file),
            "output_file": _output_file(ctx, file),
            "namespace": namespace, "namespace_known": known, "pod_name": ctx.params.get("pod_name") or None}


def _unused_mig_parted(config: Config, command: str | None) -> Config:
    """run with the file sink alone and no Node: there is no nvidia.com/mig.config to verify."""
    if command != "run" or not (config.mig_parted or config.mig_parted_configmap) or config.needs_kubernetes:
        return config
    flag = "--mig-parted-config" if config.mig_parted else "--mig-parted-configmap"
    return replace(config, warnings=(*config.warnings, f"{flag} is not used without --node-name: what it verifies "
                                     "is the layout the Node's nvidia.com/mig.config asks for"))


def _node_configs(ctx: GivenOptions, chosen_from: str | None) -> NodeConfigs | None:
    """--config-file-srcdir and how a node picks its config (config-manager's names and defaults).
    ``chosen_from``: the directory a node's config was just taken from (``read_with``)."""
    directory = chosen_from or str(ctx.params.get("config_file_srcdir") or "").strip()
    if not directory:
        return None
    if ctx.params.get("config_file") and not chosen_from:
        raise ConfigError("--config-file and --config-file-srcdir name two sources of the config: give one (the "
                          "directory when nodes pick their config by the nvidia.com/device-plugin.config label)")
    label = str(ctx.params.get("node_label") or LABEL)
    if key_error(label):
        raise ConfigError(f"--node-label {label!r}: {key_error(label)}")
    fallbacks = parse_fallbacks(str(ctx.params.get("fallback_strategies") or ""), "--fallback-strategies")
    return NodeConfigs(directory, label, str(ctx.params.get("default_config") or ""), fallbacks)


def _mig_parted_configmap(ctx: GivenOptions) -> tuple[str, str, str] | None:
    """``--mig-parted-configmap NAMESPACE/NAME`` with its key; one source of the config only."""
    value = str(ctx.params.get("mig_parted_configmap") or "").strip()
    if not value:
        return None
    if ctx.params.get("mig_parted_config"):
        raise ConfigError("--mig-parted-config and --mig-parted-configmap name two sources of the same config: "
                          "give one (the file for a ConfigMap mounted from our namespace, the ConfigMap for "
                          "one in the GPU Operator's)")
    namespace, _, name = value.partition("/") if value != "auto" else ("gpu-operator", "/", "auto")
    key = str(ctx.params.get("mig_parted_configmap_key") or "config.yaml")
    if not re.fullmatch(r"[-._a-zA-Z0-9]{1,253}", key):
        raise ConfigError(f"--mig-parted-configmap-key {key!r} is not a ConfigMap key (alphanumerics, '-', '_', '.')")
    problem = next((why for why in (dns_label_error(namespace, "namespace"), dns_subdomain_error(name, "name"))
                    if why), None)
    if problem or "/" in name:
        raise ConfigError(f"--mig-parted-configmap {value!r}: {problem or 'one slash only'}; use NAMESPACE/NAME, "
                          "e.g. gpu-operator/default-mig-parted-config")
    return namespace, name, key


def _stuck_after(ctx: GivenOptions) -> float:
    text = str(ctx.params.get("mig_config_stuck_after") or "15m").strip()
    return 0.0 if text in ("0", "+0") else parse_duration(text, "--mig-config-stuck-after", 1.0)


def _mig_parted(ctx: GivenOptions) -> Any:
    """``--mig-parted-config`` (run: verify; labels: predict), parsed once here: a bad file is
    exit 2 at start-up and keeps the running configuration on a reload."""
    path = ctx.params.get("mig_parted_config")
    if not path:
        return None
    from mig_labeler.text_files import load_mig_parted  # noqa: PLC0415 - only when the feature is on

    return load_mig_parted(str(path))
