"""The mig-parted config mig-manager generates from a node's GPUs (mig-manager v0.14+, GPU Operator 26.3+).

Owns: ``generated_config``, mig-parted's ``pkg/mig/builder`` rules over our model table, so that
``labels --gpu MODEL:N --mig-config NAME`` and ``check --gpu`` predict a node whose config was
generated (no config file exists to give): ``all-disabled``; ``all-enabled``; ``all-balanced`` per
GPU type from its base profiles (no ``+me``/``+gfx``/``-me``), 2×1g + 1×2g + 1×3g on 7-slice GPUs
and 2×1g + 1×2g on 4-slice GPUs, for each slice count the profile with the highest maximum count;
``all-<profile>`` (``+`` spelled ``.``) at each profile's maximum count, one entry per maximum
count; compute-instance profiles (``1c.3g.20gb``) never. With several GPU types every entry gets a
``device-filter`` of the types it applies to. Checked against mig-parted's own test expectations
(tests/fixtures/mig-parted/generator-cases.json). A profile the model table has no numbers for
takes part in ``all-balanced`` by name but gets no ``all-<profile>`` entry (its maximum count is
not known here).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mig_labeler.gpu_models import GpuModel

BALANCED = {7: {1: 2, 2: 1, 3: 1}, 4: {1: 2, 2: 1}}  # total slices → {slices: count}


@dataclass(frozen=True, slots=True)
class Profile:
    name: str  # go-nvlib spelling: 1g.10gb, 1g.10gb+me, 1g.24gb-me
    max_count: int  # NVML's instanceCount; 0: not known (not measured)
    device_id: str  # mig-parted's spelling of the PCI device ID: 0x20B010DE

    @property
    def slices(self) -> int:
        return int(re.match(r"(\d+)g", self.name).group(1))  # type: ignore[union-attr]

    @property
    def base(self) -> bool:
        return "+" not in self.name and "-" not in self.name


def model_profiles(model: GpuModel) -> list[Profile]:
    """The GPU-instance profiles mig-manager discovers on one GPU of ``model``, in NVML's order."""
    device = f"0x{model.pci_device_id or 0:08X}"
    known = [Profile(p.name, p.max_count, device) for p in model.profiles]
    return known + [Profile(name, 0, device) for name in model.unmeasured_profiles if "c." not in name]


def generated_config(gpus: Sequence[Sequence[Profile]]) -> dict[str, Any]:
    """The document mig-manager publishes for a node whose GPUs have these profiles."""
    device_ids = sorted({p.device_id for profiles in gpus for p in profiles})
    several = len(device_ids) > 1
    by_name: dict[str, dict[str, Profile]] = {}
    for profiles in gpus:
        for profile in profiles:
            by_name.setdefault(profile.name, {})[profile.device_id] = profile
    configs: dict[str, list[dict[str, Any]]] = {
        "all-disabled": [{"devices": "all", "mig-enabled": False}],
        "all-enabled": [{"devices": "all", "mig-enabled": True, "mig-devices": {}}],
    }
    balanced = _balanced(gpus, several)
    if balanced:
        configs["all-balanced"] = balanced
    for name in sorted(by_name):
        by_count: dict[int, list[str]] = {}
        for device, profile in by_name[name].items():
            if profile.max_count:
                by_count.setdefault(profile.max_count, []).append(device)
        entries = []
        for count in sorted(by_count):
            entry: dict[str, Any] = {"devices": "all", "mig-enabled": True, "mig-devices": {name: count}}
            if several:
                entry["device-filter"] = sorted(by_count[count])
            entries.append(entry)
        if entries:
            configs[f"all-{name.replace('+', '.')}"] = entries
    return {"version": "v1", "mig-configs": configs}


def _balanced(gpus: Sequence[Sequence[Profile]], several: bool) -> list[dict[str, Any]]:
    chosen: dict[str, dict[int, Profile]] = {}
    total: dict[str, int] = {}
    for profiles in gpus:
        for profile in profiles:
            if not profile.base:
                continue
            device = profile.device_id
            total[device] = max(total.get(device, 0), profile.slices)
            held = chosen.setdefault(device, {}).get(profile.slices)
            if 1 <= profile.slices <= 3 and (held is None or profile.max_count > held.max_count):
                chosen[device][profile.slices] = profile
    entries = []
    for device in sorted(chosen):
        formula = BALANCED.get(total[device])
        if formula is None or any(g not in chosen[device] for g in formula):
            continue  # mig-manager logs "missing required profiles for all-balanced" and skips the GPU type
        entry: dict[str, Any] = {"devices": "all", "mig-enabled": True,
                                 "mig-devices": {chosen[device][g].name: n for g, n in sorted(formula.items())}}
        if several:
            entry["device-filter"] = [device]
        entries.append(entry)
    return entries
