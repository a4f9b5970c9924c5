"""``nvidia.com/mig.config.applied``: the MIG layout the Node asked for, verified against NVML.

Owns: comparing, GPU by GPU, what NVML reports with what the mig-parted config named by the
Node's ``nvidia.com/mig.config`` asks for that GPU (its entry as mig-manager picks it: MIG mode,
then the multiset of MIG profiles in go-nvlib spelling), once mig-manager says
``nvidia.com/mig.config.state=success``. A match labels ``mig.config.applied=<name>``; anything
else labels nothing (so a selector on it matches only verified nodes) and says why. mig-labeler
never writes ``mig.config`` or ``mig.config.state``: they are mig-manager's. Pure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from mig_labeler.label_names import PREFIX
from mig_labeler.mig_parted import MigPartedConfig
from mig_labeler.topology import Gpu, NodeTopology

APPLIED = PREFIX + "mig.config.applied"
REQUESTED = PREFIX + "mig.config"
STATE = PREFIX + "mig.config.state"


@dataclass(frozen=True, slots=True)
class Verification:
    labels: dict[str, str]
    mismatch: str | None = None  # why the layout is not the one asked for (a Warning Event)


def verify_mig_config(topology: NodeTopology, mig_parted: MigPartedConfig | None,
                      node_labels: Mapping[str, str] | None) -> Verification:
    if mig_parted is None or node_labels is None:
        return Verification({})  # the feature is off, or there is no Node (labels, check)
    name, state = node_labels.get(REQUESTED), node_labels.get(STATE)
    if not name or state != "success":
        return Verification({})  # nothing asked, or mig-manager is not done: nothing to verify yet
    if name not in mig_parted.configs:
        return Verification({}, f"{REQUESTED}={name} names no config in the mig-parted config (it has "
                                f"{', '.join(sorted(mig_parted.configs)[:8])})")
    for gpu in topology.gpus:
        problem = _gpu_problem(gpu, name, mig_parted)
        if problem:
            return Verification({}, f"GPU {gpu.index}: {problem}")
    return Verification({APPLIED: name})


def _gpu_problem(gpu: Gpu, name: str, mig_parted: MigPartedConfig) -> str | None:
    entry = mig_parted.entry_for(name, gpu.index, gpu.pci_device_id)
    if entry is None:
        return f"no entry of {name} selects it ({gpu.name})"
    if gpu.mig_enabled != entry.mig_enabled:
        return f"MIG is {'on' if gpu.mig_enabled else 'off'}, {name} wants it {'on' if entry.mig_enabled else 'off'}"
    if not entry.mig_enabled:
        return None
    have, want = Counter(d.profile for d in gpu.mig_devices), Counter(entry.layout())
    if have == want:
        return None
    return f"has {_spell(have)}, {name} wants {_spell(want)}"


def _spell(counts: Counter[str]) -> str:
    return " + ".join(f"{n}×{p}" for p, n in sorted(counts.items(), key=lambda i: (-i[1], i[0]))) or "no MIG devices"
