"""What the DRA driver for NVIDIA GPUs publishes for a node (its ResourceSlices), held against what
NVML says. Pure: the slices come in as the API serves them (``resource.k8s.io/v1``), the topology
from the NVML source.

The driver (``gpu.nvidia.com``) publishes one device per full GPU (attribute ``type: gpu``,
``uuid``, ``productName`` as NVML names it, ``driverVersion`` as a semantic version, capacity
``memory``) and one per MIG device (``type: mig``, ``parentUUID``, ``profile``). With DynamicMIG it
publishes the partitions a GPU could take (devices that consume shared counters) rather than the
MIG devices that exist, so MIG devices are compared only when none consumes counters.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mig_labeler.topology import NodeTopology

DRIVER = "gpu.nvidia.com"
QUANTITY = re.compile(r"^(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?$")
UNITS = {None: 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "k": 10**3, "M": 10**6, "G": 10**9,
         "T": 10**12}


@dataclass(frozen=True, slots=True)
class DraGpu:
    uuid: str
    product: str
    driver_version: str
    memory_bytes: int | None


@dataclass(frozen=True, slots=True)
class DraDevices:
    """This node's devices of the driver, as its ResourceSlices publish them."""

    gpus: tuple[DraGpu, ...]
    mig: tuple[tuple[str, str], ...]  # (parentUUID, profile), one per MIG device
    dynamic_mig: bool  # partitions consume shared counters: MIG devices are made per claim


def _attribute(device: Mapping[str, Any], name: str) -> str:
    value = (device.get("attributes") or {}).get(name) or {}
    if not isinstance(value, Mapping):
        return ""
    return str(next((value[k] for k in ("string", "version", "int", "bool") if k in value), ""))


def _bytes(quantity: Any) -> int | None:
    found = QUANTITY.match(str(quantity or ""))
    return int(found.group(1)) * UNITS[found.group(2)] if found else None


def devices(slices: Iterable[Mapping[str, Any]]) -> DraDevices:
    """The driver's devices in ``slices`` (other drivers' slices are skipped)."""
    gpus: list[DraGpu] = []
    mig: list[tuple[str, str]] = []
    dynamic = False
    for item in slices:
        spec = item.get("spec") or {}
        if not isinstance(spec, Mapping) or spec.get("driver") != DRIVER:
            continue
        for device in spec.get("devices") or []:
            if not isinstance(device, Mapping):
                continue
            dynamic = dynamic or bool(device.get("consumesCounters"))
            kind = _attribute(device, "type")
            if kind == "gpu":
                memory = ((device.get("capacity") or {}).get("memory") or {}).get("value")
                gpus.append(DraGpu(_attribute(device, "uuid"), _attribute(device, "productName"),
                                   _attribute(device, "driverVersion"), _bytes(memory)))
            elif kind == "mig":
                mig.append((_attribute(device, "parentUUID"), _attribute(device, "profile")))
    return DraDevices(tuple(gpus), tuple(mig), dynamic)


def disagreements(topology: NodeTopology, published: DraDevices) -> list[str]:
    """Each way the driver's devices and NVML disagree, one line each; empty when they agree."""
    found: list[str] = []
    nvml = {g.uuid: g for g in topology.gpus}
    parents = {parent for parent, _ in published.mig}
    by_uuid = {g.uuid: g for g in published.gpus}
    for uuid in sorted(set(by_uuid) | parents):
        if uuid not in nvml:
            found.append(f"the DRA driver publishes GPU {uuid}, which NVML does not see")
    for gpu in topology.gpus:
        full = gpu.mig_mode is None or not gpu.mig_mode.enabled
        if gpu.uuid not in by_uuid and gpu.uuid not in parents and (full or not published.dynamic_mig):
            found.append(f"NVML sees GPU {gpu.index} ({gpu.uuid}, {gpu.name}), which the DRA driver does not publish")
        dra = by_uuid.get(gpu.uuid)
        if dra is None:
            continue
        if dra.product and dra.product != gpu.name:
            found.append(f"GPU {gpu.index}: the DRA driver says {dra.product!r}, NVML {gpu.name!r}")
        if dra.memory_bytes is not None and gpu.memory_mib is not None and dra.memory_bytes >> 20 != gpu.memory_mib:
            found.append(f"GPU {gpu.index}: the DRA driver publishes {dra.memory_bytes >> 20} MiB, NVML has "
                         f"{gpu.memory_mib} MiB")
    versions = {g.driver_version for g in published.gpus if g.driver_version}
    if versions and {_version(v) for v in versions} != {_version(topology.driver_version)}:
        found.append(f"the DRA driver publishes driver {', '.join(sorted(versions))}, NVML runs "
                     f"{topology.driver_version}")
    if not published.dynamic_mig:
        have = Counter((g.uuid, d.profile.replace("+", ".")) for g in topology.gpus for d in g.mig_devices)
        said = Counter((parent, profile.replace("+", ".")) for parent, profile in published.mig)
        for (uuid, profile) in sorted(set(have) | set(said)):
            if have[(uuid, profile)] != said[(uuid, profile)] and uuid in nvml:
                found.append(f"GPU {nvml[uuid].index}: {have[(uuid, profile)]} MIG devices {profile} in NVML, "
                             f"{said[(uuid, profile)]} published by the DRA driver")
    return found


def _version(text: str) -> tuple[int, ...]:
    """``580.126.20`` and ``580.126.20`` alike, ``535.104.05`` as the driver's semver ``535.104.5``."""
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def counts(topology: NodeTopology, published: DraDevices) -> dict[tuple[str, str], int]:
    """(source, type) -> devices, for the metric: source nvml | dra, type gpu | mig."""
    return {("nvml", "gpu"): len(topology.gpus),
            ("nvml", "mig"): sum(len(g.mig_devices) for g in topology.gpus),
            ("dra", "gpu"): len({g.uuid for g in published.gpus} | {p for p, _ in published.mig}),
            ("dra", "mig"): len(published.mig)}
