"""Label key building, value sanitising and Kubernetes label validation.

Owns: every spelling rule for keys and values (GFD's ``sanitise``, product assembly, ``+`` → ``.``)
and ``validate_labels``. Pure: no I/O. Every labeler builds keys and values through here so that
spelling cannot drift between labelers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

PREFIX = "nvidia.com/"
TIMESTAMP_KEY = PREFIX + "gfd.timestamp"  # set once per process start (labels.md); no Event for it alone
GPU_RESOURCE = "nvidia.com/gpu"

_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9._ -]")
_EDGE = re.compile(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$")
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def sanitise(part: str) -> str:
    """GFD's sanitise byte for byte: drop everything outside ``[A-Za-z0-9._ -]``, then join the
    space-separated words with ``-`` (so ``A - B`` → ``A---B``, tabs glue words; gfd-reference §3)."""
    return "-".join(_NOT_ALLOWED.sub("", part).split())


def trim_edges(value: str) -> str:
    """labels.md #2: strip leading/trailing non-alphanumerics so ``O.E.M.`` → ``O.E.M``."""
    return _EDGE.sub("", value)


def product_value(*parts: str, shared: bool = False) -> str:
    """GFD's getProductName: skip empty parts, sanitise each, join with ``-``, append ``-SHARED``."""
    value = "-".join(sanitise(p) for p in parts if p)
    if shared:
        value += "-SHARED"
    return trim_edges(value)


def machine_value(machine_type: str | None) -> str:
    if machine_type is None:
        return "unknown"
    return trim_edges(sanitise(machine_type.strip()))


def mig_resource_name(profile: str) -> str:
    """``1g.10gb+me`` → ``nvidia.com/mig-1g.10gb.me``; ``-me`` stays (``-`` is legal)."""
    return f"{PREFIX}mig-{profile.replace('+', '.')}"


def key_error(key: str) -> str | None:
    """Why ``key`` is not a valid qualified label name, or None."""
    prefix, slash, name = key.rpartition("/")
    if slash:
        if not prefix or len(prefix) > 253 or not all(_DNS_LABEL.match(p) for p in prefix.split(".")):
            return f"prefix {prefix!r} is not a DNS subdomain of at most 253 characters"
    if len(name) > 63:
        return f"name part is {len(name)} characters, more than 63"
    if not _NAME.match(name):
        return "name part must be alphanumeric, '-', '_' or '.', starting and ending alphanumeric"
    return None


def dns_label_error(value: str, what: str) -> str | None:
    """Why ``value`` is not a DNS-1123 label (a namespace's name), or None."""
    if len(value) > 63 or not _DNS_LABEL.match(value):
        return f"{what} {value!r} is not a DNS label (lower-case alphanumerics and '-', at most 63)"
    return None


def dns_subdomain_error(value: str, what: str) -> str | None:
    """Why ``value`` is not a DNS-1123 subdomain (a ConfigMap's name), or None."""
    if not value or len(value) > 253 or not all(_DNS_LABEL.match(p) for p in value.split(".")):
        return f"{what} {value!r} is not a DNS subdomain (lower-case alphanumerics, '-' and '.', at most 253)"
    return None


def value_error(value: str) -> str | None:
    """Why ``value`` is not a valid label value, or None."""
    if len(value) > 63:
        return f"value is {len(value)} characters, more than 63"
    if not _VALUE.match(value):
        return "value must be empty or alphanumeric, '-', '_' or '.', starting and ending alphanumeric"
    return None


@dataclass(frozen=True, slots=True)
class Rejected:
    key: str
    value: str
    reason: str


def validate_labels(labels: Mapping[str, str]) -> tuple[dict[str, str], tuple[Rejected, ...]]:
    """Split a computed map into publishable labels and rejected ones (never silently dropped:
    the caller logs and counts every rejection, labels.md #2)."""
    valid: dict[str, str] = {}
    rejected: list[Rejected] = []
    for key in sorted(labels):
        value = labels[key]
        reason = key_error(key) or value_error(value)
        if reason:
            rejected.append(Rejected(key, value, reason))
        else:
            valid[key] = value
    return valid, tuple(rejected)


# -- the keys mig-labeler may own ------------------------------------------------------------------
# Defined once: the admission policy (manifests/components/node-restriction) allows the labeler's
# ServiceAccount to add, change or remove exactly these keys, and tests check that the policy and
# this set agree, and that every key the labelers compute is in it. Other tools' keys under
# nvidia.com/ (mig.config, mig.config.state, gpu.deploy.*, device-plugin.config,
# gpu.workload.config) are not, and neither is anything outside nvidia.com/.
OWNABLE_KEYS = frozenset(PREFIX + k for k in (
    "gfd.timestamp",
    "cuda.driver.major", "cuda.driver.minor", "cuda.driver.rev",
    "cuda.runtime.major", "cuda.runtime.minor",
    "cuda.driver-version.major", "cuda.driver-version.minor", "cuda.driver-version.revision",
    "cuda.driver-version.full",
    "cuda.runtime-version.major", "cuda.runtime-version.minor", "cuda.runtime-version.full",
    "gpu.machine", "gpu.mode", "gpu.present", "gpu.product", "gpu.count", "gpu.memory", "gpu.family",
    "gpu.replicas", "gpu.sharing-strategy", "gpu.compute.major", "gpu.compute.minor", "gpu.multiprocessors",
    "gpu.slices.gi", "gpu.slices.ci",
    "gpu.engines.copy", "gpu.engines.decoder", "gpu.engines.encoder", "gpu.engines.jpeg", "gpu.engines.ofa",
    "mig.capable", "mig.strategy", "mps.capable", "gpu.clique", "mig.config.applied", "gpu.healthy-count",
    "vgpu.present", "vgpu.host-driver-version", "vgpu.host-driver-branch",
))
# Per-profile MIG keys: nvidia.com/mig-<profile>.<attribute>, the profile as mig_resource_name
# spells it (1g.10gb, 1g.10gb.me, 1g.10gb-me, 1c.3g.20gb, 1g.24gb.gfx, ...). RE2 syntax, so the
# policy's CEL matches() reads the same pattern.
MIG_KEY_PATTERN = (r"^nvidia[.]com/mig-[0-9]+[cg][-.a-z0-9]*[.]"
                   r"(count|product|memory|multiprocessors|replicas|sharing-strategy|ci|gi|copy|decoder|encoder|jpeg|ofa)$")
_MIG_KEY = re.compile(MIG_KEY_PATTERN)


def ownable(key: str) -> bool:
    """May mig-labeler write, own, adopt or remove this label key?"""
    return key in OWNABLE_KEYS or bool(_MIG_KEY.match(key))
