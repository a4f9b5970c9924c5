"""The one frozen configuration object and the device-plugin/GFD config file format.

Owns: ``Config``, ``Sharing``, ``MigStrategy``, duration parsing and ``parse_config_file`` (text
in, ``FileSettings`` or ``ConfigError`` out). Must not read ``os.environ`` or flags: the CLI
builds ``Config`` (precedence flag > env > file > default) and hands it to everything else.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, replace
from typing import Any

from mig_labeler import yaml_text
from mig_labeler.errors import ConfigError
from mig_labeler.label_names import PREFIX

DEFAULT_MACHINE_TYPE_FILE = "/sys/class/dmi/id/product_name"
DEFAULT_OUTPUT_FILE = "/etc/kubernetes/node-feature-discovery/features.d/gfd"
SINKS = ("node", "nodefeature", "file")
MIN_SLEEP_INTERVAL = 1.0  # GFD allows 0s, a hot loop re-initialising NVML (gfd-reference §10.13)
GO_MAX_DURATION = (2**63 - 1) / 1e9  # seconds: Go's time.Duration is int64 nanoseconds (2562047h47m16.85s)
GO_MAX_INT = 2**63 - 1  # the device plugin decodes replicas into a Go int; larger numbers fail there


class MigStrategy(str, enum.Enum):
    NONE = "none"
    SINGLE = "single"
    MIXED = "mixed"


def parse_mig_strategy(value: str) -> MigStrategy:
    try:
        return MigStrategy(value)
    except ValueError:
        raise ConfigError(f"unknown MIG strategy {value!r}: use none, single or mixed") from None


@dataclass(frozen=True, slots=True)
class SharedResource:
    name: str  # full resource name, e.g. nvidia.com/gpu or nvidia.com/mig-1g.10gb
    replicas: int
    renamed: bool  # renameByDefault: true → no -SHARED suffix (gfd-reference §4.2)


@dataclass(frozen=True, slots=True)
class Sharing:
    """The sharing block GFD consults: MPS if present, else time-slicing (gfd-reference §4.3)."""

    kind: str = "none"  # "none" | "time-slicing" | "mps"
    resources: tuple[SharedResource, ...] = ()

    @property
    def active_strategy(self) -> str:
        if any(r.replicas > 1 for r in self.resources):
            return self.kind
        return "none"

    def resource(self, name: str) -> SharedResource | None:
        """The first entry for ``name`` wins; later duplicates are ignored, as in GFD."""
        return next((r for r in self.resources if r.name == name), None)


NO_SHARING = Sharing()


@dataclass(frozen=True, slots=True)
class FileSettings:
    """What a config file sets; None means "not set in the file"."""

    mig_strategy: MigStrategy | None = None
    fail_on_init_error: bool | None = None
    oneshot: bool | None = None
    no_timestamp: bool | None = None
    sleep_interval: float | None = None
    machine_type_file: str | None = None
    use_node_feature_api: bool | None = None  # flags.useNodeFeatureAPI: true selects the nodefeature sink
    output_file: str | None = None  # flags.gfd.outputFile: the file sink's path only, never a mode switch
    sharing: Sharing = NO_SHARING
    warnings: tuple[str, ...] = ()  # accepted, but probably not what the author meant


@dataclass(frozen=True, slots=True)
class Config:
    mig_strategy: MigStrategy = MigStrategy.NONE
    sharing: Sharing = NO_SHARING
    no_timestamp: bool = False
    machine_type_file: str | None = None  # None: not given, so a fixture's machine_type, else the DMI file
    fail_on_init_error: bool = True
    gpu_present_label: bool = True
    fixture: str | None = None
    config_file: str | None = None
    oneshot: bool = False
    sleep_interval: float = 60.0
    node_name: str | None = None
    kubeconfig: str | None = None
    metrics_port: int = 8080
    log_format: str = "text"
    oneshot_timeout: float = 30.0  # seconds a --oneshot may spend publishing, retries included
    sinks: tuple[str, ...] = ("node",)  # node | nodefeature | file, in publishing order
    output_file: str = DEFAULT_OUTPUT_FILE  # the file sink's path; "-" is standard output
    namespace: str = "default"  # where the nodefeature sink's NodeFeature lives
    namespace_known: bool = False  # given, or the pod's own: not just the fallback "default"
    pod_name: str | None = None  # our Pod, for the NodeFeature's owner references
    warnings: tuple[str, ...] = ()  # from the config file: logged at start-up and after each reload
    device_discovery_strategy: str = "auto"  # auto | nvml: both NVML (GFD's tegra and vfio are refused)
    driver_root: str = "/driver-root"  # --driver-root-ctr-path: where libnvidia-ml.so.1 is looked for
    kube_api_qps: float = 5.0  # client-side rate limit, as client-go applies it
    kube_api_burst: int = 10
    mig_parted: Any = None  # mig_parted.MigPartedConfig (the file or the ConfigMap); None: not verified
    mig_parted_file: str | None = None  # --mig-parted-config: watched, a change reloads like the config file
    mig_parted_configmap: tuple[str, str, str] | None = None  # (namespace, name, key): read and watched via the API
    mig_config_stuck_after: float = 900.0  # --mig-config-stuck-after: a MIG config request this old is stuck

    def summary(self) -> dict[str, Any]:
        """The effective config as one JSON-able dict, logged once at start-up."""
        return {
            "migStrategy": self.mig_strategy.value,
            "sharing": self.sharing.kind,
            "sharedResources": {r.name: r.replicas for r in self.sharing.resources},
            "noTimestamp": self.no_timestamp,
            "machineTypeFile": self.machine_type_file,  # null: the fixture's, else the DMI file
            "failOnInitError": self.fail_on_init_error,
            "gpuPresentLabel": self.gpu_present_label,
            "fixture": self.fixture,
            "configFile": self.config_file,
            "oneshot": self.oneshot,
            "sleepInterval": self.sleep_interval,
            "nodeName": self.node_name,
            "metricsPort": self.metrics_port,
            "sinks": list(self.sinks),
            "outputFile": self.output_file if "file" in self.sinks else None,
            "namespace": self.namespace if "nodefeature" in self.sinks else None,
            "deviceDiscoveryStrategy": self.device_discovery_strategy,
            "kubeAPIQPS": self.kube_api_qps,
            "kubeAPIBurst": self.kube_api_burst,
            "migPartedConfig": self.mig_parted_file,
            "migPartedConfigMap": "/".join(self.mig_parted_configmap[:2]) + f" key {self.mig_parted_configmap[2]}"
            if self.mig_parted_configmap else None,
            "migConfigStuckAfter": self.mig_config_stuck_after,
        }

    @property
    def needs_kubernetes(self) -> bool:
        """The file sink alone runs without any Kubernetes configuration, unless a node name is
        given: then the Node is read (never written) for the GPU Operator's pause and the handoff
        of labels a previous node-sink mode left."""
        return self.sinks != ("file",) or bool(self.node_name)


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str, option: str = "--sleep-interval", minimum: float = MIN_SLEEP_INTERVAL) -> float:
    """Go duration syntax (``60s``, ``1m30s``, ``500ms``, ``0``) or ``infinite``, in seconds, as
    Go's ``time.ParseDuration`` reads it; the error names ``option``. A bare number other than 0
    is rejected, as Go's parser does: it has no unit."""
    text = text.strip()
    if text == "infinite":
        return math.inf
    body = text[1:] if text[:1] == "+" else text
    if body == "0":  # time.ParseDuration: "0" is the one number without a unit
        seconds = 0.0
    elif not body or _DURATION_PART.sub("", body) != "":
        raise ConfigError(f"{option}: invalid duration {text!r}: use a Go duration such as 60s, 1m or 500ms, "
                          "or 'infinite'")
    else:
        seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(body))
    if not seconds <= GO_MAX_DURATION:  # also catches inf from a thousand-digit number
        raise ConfigError(f"{option}: duration {text!r} is longer than Go's maximum of 2562047h (as GFD's parser "
                          "rejects it); use 'infinite' for no periodic rescans")
    if seconds == 0 or seconds < minimum:
        floor = f"at least {minimum:g}s" if minimum else "more than 0, such as 30s"
        raise ConfigError(f"{option} {text!r} is too short: it must be {floor}")
    return seconds


def parse_sinks(values: list[str]) -> tuple[str, ...]:
    """``--sink`` values (repeatable, or comma-separated in MIG_LABELER_SINKS), deduplicated in order."""
    found: list[str] = []
    for value in values:
        for name in (v.strip() for v in value.split(",")):
            if name not in SINKS:
                raise ConfigError(f"unknown sink {name!r}: use node, nodefeature or file")
            if name not in found:
                found.append(name)
    return tuple(found)


GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
GO_FALSE = {"0", "f", "F", "FALSE", "false", "False", ""}  # an empty env var is false in GFD


def parse_go_bool(value: str, where: str) -> bool:
    """Go's strconv.ParseBool, as GFD reads boolean flags and environment variables."""
    if value in GO_TRUE:
        return True
    if value in GO_FALSE:
        return False
    raise ConfigError(f"{where} must be a boolean (true/false, 1/0, t/f), not {value!r}")


def _require_bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, not {value!r}")
    return value


def _resource_name(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw:
        raise ConfigError(f"{where}.name must be a non-empty string")
    name = raw if "/" in raw else PREFIX + raw
    prefix, _, short = name.partition("/")
    if len(name) > 63 or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", short):
        raise ConfigError(
            f"{where}.name {raw!r} is not a valid resource name (write mig-1g.10gb.me, not mig-1g.10gb+me)"
        )
    if prefix + "/" != PREFIX:
        raise ConfigError(f"{where}.name {raw!r} must be in the nvidia.com/ namespace")
    return name


def _parse_sharing_block(block: Any, kind: str) -> Sharing:
    where = f"sharing.{'mps' if kind == 'mps' else 'timeSlicing'}"
    if not isinstance(block, dict):
        raise ConfigError(f"{where} must be a mapping")
    rename_by_default = _require_bool(block.get("renameByDefault", False), f"{where}.renameByDefault")
    entries = block.get("resources")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}.resources must be a non-empty list")
    resources = []
    for i, entry in enumerate(entries):
        at = f"{where}.resources[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{at} must be a mapping with name and replicas")
        name = _resource_name(entry.get("name"), at)
        replicas = entry.get("replicas")
        if isinstance(replicas, bool) or not isinstance(replicas, int) or not 2 <= replicas <= GO_MAX_INT:
            raise ConfigError(f"{at}.replicas must be an integer from 2 to {GO_MAX_INT}, not {replicas!r}")
        resources.append(SharedResource(name, replicas, renamed=rename_by_default))
    return Sharing(kind, tuple(resources))


def parse_sharing(raw: Any) -> Sharing:
    if raw is None:
        return NO_SHARING
    if not isinstance(raw, dict):
        raise ConfigError("sharing must be a mapping")
    # Both blocks must be valid (the device plugin decodes both); an MPS block then hides the
    # time-slicing block, as in GFD.
    time_slicing = None if raw.get("timeSlicing") is None else _parse_sharing_block(raw["timeSlicing"], "time-slicing")
    if raw.get("mps") is not None:
        return _parse_sharing_block(raw["mps"], "mps")
    return time_slicing or NO_SHARING


MAX_CONFIGMAP_BYTES = 1 << 20  # a ConfigMap holds at most 1 MiB


def read_configmap_file(path: str, what: str) -> str:
    """A file a ConfigMap may hold (our config, a mig-parted config), as text: unreadable, larger
    than 1 MiB (read no further: a 68 MB file is not a config) or not UTF-8 is one ConfigError."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIGMAP_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"cannot read {what} {path}: {e.strerror or e}") from e
    if len(data) > MAX_CONFIGMAP_BYTES:
        raise ConfigError(f"{what} {path} is larger than 1 MiB, the most a ConfigMap holds: not a {what}?")
    return decode_text(data, f"{what} {path}")


def decode_text(data: bytes, what: str, error: type[ConfigError] = ConfigError) -> str:
    """Files we read must be UTF-8, as YAML and JSON require; say where they are not. The one
    place for it: config files, fixtures (``error=FixtureError``), kubeconfigs, workload files."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{what} is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})") from None


def _load_document(text: str, source: str) -> dict[str, Any]:
    doc = yaml_text.load_document(text, f"config file {source}")
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"config file {source} must hold a mapping at the top level")
    return doc


def parse_config_file(text: str, source: str = "<config>") -> FileSettings:
    doc = _load_document(text, source)
    version = doc.get("version", "v1")
    if version != "v1":
        raise ConfigError(f"config file {source}: unknown version {version!r} (only v1 is supported)")
    flags = doc.get("flags") or {}
    if not isinstance(flags, dict) or not isinstance(flags.get("gfd") or {}, dict):
        raise ConfigError(f"config file {source}: flags and flags.gfd must be mappings")
    gfd = flags.get("gfd") or {}
    try:
        settings = _file_settings(flags, gfd, doc.get("sharing"))
    except ConfigError as e:
        raise ConfigError(f"config file {source}: {e}") from None
    return replace(settings, warnings=tuple(f"config file {source}: {w}" for w in config_warnings(doc)))


# Keys of the device-plugin/GFD config format (gfd-reference §4.1). GFD ignores unknown keys
# silently; we accept them too (one file serves the device plugin, whose keys we do not use) but
# warn, because a misspelt key such as `migstrategy` otherwise changes nothing without a word.
_KNOWN = {
    "": {"version", "flags", "sharing", "resources", "imex"},
    "flags": {"migStrategy", "failOnInitError", "useNodeFeatureAPI", "deviceDiscoveryStrategy", "gfd", "plugin",
              "mpsRoot", "nvidiaDriverRoot", "nvidiaDevRoot", "gdrcopyEnabled", "gdsEnabled", "mofedEnabled"},
    "flags.gfd": {"oneshot", "noTimestamp", "sleepInterval", "outputFile", "machineTypeFile"},
    "sharing": {"timeSlicing", "mps"},
    "sharing.block": {"renameByDefault", "failRequestsGreaterThanOne", "resources"},
    "sharing.resource": {"name", "replicas", "rename", "devices"},
}


def config_warnings(doc: dict[str, Any]) -> list[str]:
    """What a valid file says that is probably a mistake: unknown keys, an MPS block that hides a
    time-slicing block, a resource listed twice (the first entry wins, as in GFD)."""
    warnings = _unknown_keys(doc, "", "")
    flags = doc.get("flags") or {}
    warnings += _unknown_keys(flags, "flags", "flags.")
    warnings += _unknown_keys(flags.get("gfd") or {}, "flags.gfd", "flags.gfd.")
    sharing = doc.get("sharing") or {}
    warnings += _unknown_keys(sharing, "sharing", "sharing.")
    if sharing.get("mps") is not None and sharing.get("timeSlicing") is not None:
        warnings.append("sharing has both mps and timeSlicing; mps is used and timeSlicing is ignored, as in GFD")
    for kind in ("timeSlicing", "mps"):
        block = sharing.get(kind) or {}
        warnings += _unknown_keys(block, "sharing.block", f"sharing.{kind}.")
        seen: set[str] = set()
        repeats: list[str] = []
        for i, entry in enumerate(block.get("resources") or []):
            warnings += _unknown_keys(entry, "sharing.resource", f"sharing.{kind}.resources[{i}].")
            name = _resource_name(entry.get("name"), f"sharing.{kind}.resources[{i}]")
            if name in seen:
                repeats.append(f"resources[{i}] repeats {name}")
            seen.add(name)
        if repeats:  # one line however many: a generated file can repeat an entry thousands of times
            more = f" and {len(repeats) - 3} more" if len(repeats) > 3 else ""
            warnings.append(f"sharing.{kind}: {', '.join(repeats[:3])}{more}; the first entry of each is used")
    return _summarised(warnings)


MAX_WARNINGS = 20


def _summarised(warnings: list[str]) -> list[str]:
    """At most MAX_WARNINGS lines: a file with 200,000 unknown keys must not log 200,000 lines."""
    if len(warnings) <= MAX_WARNINGS:
        return warnings
    return [*warnings[:MAX_WARNINGS], f"... and {len(warnings) - MAX_WARNINGS} more warnings about this file"]


def _unknown_keys(section: dict[str, Any], kind: str, where: str) -> list[str]:
    return [f"unknown key {where}{k} is ignored" for k in section if k not in _KNOWN[kind]]


def _optional(section: dict[str, Any], key: str, where: str) -> bool | None:
    return None if section.get(key) is None else _require_bool(section[key], where)


def _optional_str(section: dict[str, Any], key: str, where: str) -> str | None:
    value = section.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where} must be a string")
    return value


def _file_settings(flags: dict[str, Any], gfd: dict[str, Any], sharing: Any) -> FileSettings:
    strategy = flags.get("migStrategy")
    interval = gfd.get("sleepInterval")
    if interval is not None and not isinstance(interval, str):
        raise ConfigError(f"flags.gfd.sleepInterval must be a duration string such as 60s, not {interval!r}")
    output = _optional_str(gfd, "outputFile", "flags.gfd.outputFile")
    return FileSettings(
        mig_strategy=None if strategy is None else parse_mig_strategy(str(strategy)),
        fail_on_init_error=_optional(flags, "failOnInitError", "flags.failOnInitError"),
        oneshot=_optional(gfd, "oneshot", "flags.gfd.oneshot"),
        no_timestamp=_optional(gfd, "noTimestamp", "flags.gfd.noTimestamp"),
        sleep_interval=None if interval is None else parse_duration(interval, "flags.gfd.sleepInterval"),
        machine_type_file=_optional_str(gfd, "machineTypeFile", "flags.gfd.machineTypeFile"),
        use_node_feature_api=_optional(flags, "useNodeFeatureAPI", "flags.useNodeFeatureAPI"),
        output_file=None if output is None else (output or "-"),  # GFD: "" is standard output
        sharing=parse_sharing(sharing),
    )
