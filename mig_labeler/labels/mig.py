"""MIG strategy labels: ``mig.strategy``, single (incl. MIG-INVALID) and mixed.

Owns gfd-reference §2.3–2.4. Under ``single`` this labeler's ``nvidia.com/gpu.*`` keys override
the full-GPU labeler's (it runs later in ``LABELERS``), exactly as GFD merges them; ``family`` and
``compute.*`` are left to describe the parent. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence

from mig_labeler.config import Config, MigStrategy
from mig_labeler.label_names import GPU_RESOURCE, mig_resource_name, product_value
from mig_labeler.labels.resource import (
    INVALID_SHARING,
    attribute_labels,
    resource_labels,
    sharing_for,
)
from mig_labeler.topology import Gpu, MigDevice, NodeTopology

Placed = tuple[Gpu, MigDevice]


def mig_strategy_labels(topology: NodeTopology, config: Config) -> dict[str, str]:
    if config.mig_strategy is MigStrategy.NONE:
        return {}
    labels = {"nvidia.com/mig.strategy": config.mig_strategy.value}
    if config.mig_strategy is MigStrategy.SINGLE:
        labels.update(single_strategy_labels(topology, config))
    else:
        labels.update(mixed_strategy_labels(topology, config))
    return labels


def placed_devices(topology: NodeTopology) -> list[Placed]:
    """MIG devices of MIG-enabled GPUs only; devices on disabled GPUs are ignored everywhere."""
    return [(g, m) for g in topology.gpus if g.mig_enabled for m in g.mig_devices]


def representative(placed: Sequence[Placed]) -> Placed:
    """GFD labels a profile from the first MIG device in NVML order. Instances of one profile can
    differ (20224 vs 20096 MiB), so we take the smallest memory, a floor every pod can rely on;
    among equals the first in NVML order (``min`` keeps it), which is GFD's choice. So the parent
    named in ``product`` differs from GFD's only when another parent's instance has less memory."""
    return min(placed, key=lambda p: p[1].attributes.memory_mib)


def single_strategy_problem(topology: NodeTopology) -> str | None:
    """Why the node is MIG-INVALID under ``single``, or None (gfd-reference §2.3 order)."""
    enabled = [g for g in topology.gpus if g.mig_enabled]
    if not enabled:
        return None
    if any(not g.mig_devices for g in enabled):
        return "at least one MIG device is enabled but empty"
    if len(enabled) != len(topology.gpus):
        return "devices with MIG enabled and disabled detected"
    if len({m.profile for m in topology.mig_devices}) != 1:
        return "more than one MIG device type present on node"
    return None


def single_strategy_labels(topology: NodeTopology, config: Config) -> dict[str, str]:
    placed = placed_devices(topology)
    enabled = [g for g in topology.gpus if g.mig_enabled]
    if not enabled:
        return {}
    if single_strategy_problem(topology):
        # GFD names the first MIG-enabled GPU in NVML order (newInvalidMigStrategyLabeler(
        # migEnabledDevices[0], ...)); that order is stable on a node, so the choice is deterministic.
        labels = resource_labels(
            GPU_RESOURCE, product_value(enabled[0].name, "MIG", "INVALID"), 0, INVALID_SHARING
        )
        labels[f"{GPU_RESOURCE}.memory"] = "0"
        return labels
    gpu, device = representative(placed)
    return _profile_block(GPU_RESOURCE, gpu, device, len(placed), config)


def mixed_strategy_labels(topology: NodeTopology, config: Config) -> dict[str, str]:
    by_profile: dict[str, list[Placed]] = {}
    for gpu, device in placed_devices(topology):
        by_profile.setdefault(device.profile, []).append((gpu, device))
    labels: dict[str, str] = {}
    for profile in sorted(by_profile):
        gpu, device = representative(by_profile[profile])
        labels.update(_profile_block(mig_resource_name(profile), gpu, device, len(by_profile[profile]), config))
    return labels


def _profile_block(resource: str, gpu: Gpu, device: MigDevice, count: int, config: Config) -> dict[str, str]:
    sharing = sharing_for(resource, config)
    product = product_value(gpu.name, "MIG", device.profile.replace("+", "."), shared=sharing.shared_suffix)
    return resource_labels(resource, product, count, sharing) | attribute_labels(resource, device.attributes)
