"""The one frozen configuration object and Go's value syntax.

Owns: ``Config``, ``Sharing``, ``MigStrategy``, and GFD's spellings of values (Go durations, Go
booleans, sink names). Pure: no files (``config_file`` parses the device-plugin/GFD file format,
``text_files`` reads files), no ``os.environ``, no flags. The CLI builds ``Config`` (precedence
flag > env > file > default); at run time ``daemon.live_settings`` is its one owner, and every
other part reads the ``Config`` it is given.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from typing import Any

from mig_labeler.errors import ConfigError
from mig_labeler.node_configs import NodeConfigs

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
    kube_context: str | None = None  # --context: a kubeconfig context other than the current one
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
    node_configs: NodeConfigs | None = None  # --config-file-srcdir: the node's label picks the config file
    resource_api: str = "auto"  # --resource-api: auto | device-plugin | dra (docs/dra.md)

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
            "configFileSrcdir": self.node_configs.directory if self.node_configs else None,
            "resourceAPI": self.resource_api,
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
        examples = "60s, 1m or 1m30s" if minimum >= 1 else "60s, 1m or 500ms"  # only what the option accepts
        raise ConfigError(f"{option}: invalid duration {text!r}: use a Go duration such as {examples}, or 'infinite'")
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
