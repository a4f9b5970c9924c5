"""The labels of a node whose GPUs are allocated through DRA (Dynamic Resource Allocation), not a
device plugin. Pure.

On such a node no device plugin advertises ``nvidia.com/gpu`` or ``nvidia.com/mig-<profile>``:
the DRA driver (``gpu.nvidia.com``) publishes every GPU and MIG device in ResourceSlices, and with
DynamicMIG creates MIG devices when a claim is allocated. So the labels that describe the hardware
stay, with the values they have in device-plugin mode under ``--mig-strategy none`` (the whole
GPUs: product, count, memory, family, compute capability, driver and CUDA versions, machine, MIG
capability), and every key that describes a device-plugin resource goes: the MIG strategy, the
sharing replicas and strategy, MPS, and all per-profile ``mig-<profile>.*`` keys (they count
resources nobody advertises, and on a DynamicMIG node they would change with every claim).
docs/dra.md has the table, with the CEL expression on ResourceSlice attributes for each label.
"""

from __future__ import annotations

import re
from dataclasses import replace

from mig_labeler.config import NO_SHARING, Config, MigStrategy

# Keys that describe what a device plugin advertises, not the hardware.
DEVICE_PLUGIN_KEYS = frozenset({
    "nvidia.com/mig.strategy", "nvidia.com/gpu.replicas", "nvidia.com/gpu.sharing-strategy",
    "nvidia.com/mps.capable",
})
# Per-profile MIG keys (mixed), and the slice attributes single puts on gpu.* (never under none).
DEVICE_PLUGIN_PATTERN = re.compile(r"nvidia\.com/(mig-[^/]+\.[a-z-]+|gpu\.engines\.[a-z]+|gpu\.slices\.[a-z]+"
                                   r"|gpu\.multiprocessors)")


def dra_config(config: Config) -> Config:
    """The settings labels are computed with on a DRA node: whole GPUs (strategy none), no sharing."""
    return replace(config, mig_strategy=MigStrategy.NONE, sharing=NO_SHARING)


def describes_device_plugin(key: str) -> bool:
    return key in DEVICE_PLUGIN_KEYS or DEVICE_PLUGIN_PATTERN.fullmatch(key) is not None


def dra_labels(labels: dict[str, str]) -> dict[str, str]:
    """``labels`` (computed with ``dra_config``) without the keys that describe device-plugin resources."""
    return {key: value for key, value in labels.items() if not describes_device_plugin(key)}
