"""``nvidia.com/mig.config.applied``: the MIG layout the Node asked for, verified against NVML.

Owns: comparing, GPU by GPU, what NVML reports with what the mig-parted config named by the
Node's ``nvidia.com/mig.config`` asks for that GPU (its entry as mig-manager picks it: MIG mode,
then the multiset of MIG profiles in go-nvlib spelling), once mig-manager says
``nvidia.com/mig.config.state=success`` for that request. A match labels
``mig.config.applied=<name>``; anything else labels nothing (so a selector on it matches only
verified nodes) and says why. mig-labeler never writes ``mig.config`` or ``mig.config.state``:
they are mig-manager's. Pure: the request and since when it has held are
``gpu_operator.mig_request``'s.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from mig_labeler.gpu_operator import REQUESTED, MigRequest
from mig_labeler.label_names import PREFIX
from mig_labeler.mig_parted import MigPartedConfig
from mig_labeler.topology import Gpu, NodeTopology

APPLIED = PREFIX + "mig.config.applied"
@dataclass(frozen=True, slots=True)
class Verification:
    labels: dict[str, str]
    mismatch: str | None = None  # why the layout is not the one asked for (a Warning Event)
    config: str | None = None  # the config the layout was compared with; None: nothing was compared
    digest: str | None = None  # a hash of that config's content, as compared
    source: str = ""  # where the mig-parted config came from


def verify_mig_config(topology: NodeTopology, mig_parted: MigPartedConfig | None,
                      request: MigRequest | None) -> Verification:
    if mig_parted is None or request is None:
        return Verification({})  # the feature is off, no config is asked for, or there is no Node
    name = request.config
    if request.state != "success":
        return Verification({})  # mig-manager is not done (or has not started): nothing to verify yet
    if name not in mig_parted.configs:
        return Verification({}, f"{REQUESTED}={name} names no config in the mig-parted config (it has "
                                f"{', '.join(sorted(mig_parted.configs)[:8])})", name)
    content = {"digest": mig_parted.digest(name), "source": mig_parted.source}
    problems: dict[str, list[int]] = {}  # what differs → the GPUs it differs on, in NVML order
    for gpu in topology.gpus:
        problem = _gpu_problem(gpu, name, mig_parted)
        if problem:
            problems.setdefault(problem, []).append(gpu.index)
    if problems:
        said = "; ".join(f"{_gpus(indices)}: {problem}" for problem, indices in problems.items())
        return Verification({}, said, name, **content)
    return Verification({APPLIED: name}, config=name, **content)


def _gpus(indices: list[int]) -> str:
    """``GPU 4``, ``GPUs 4, 5, 7``: every GPU that differs in the same way, named once."""
    return f"GPU {indices[0]}" if len(indices) == 1 else "GPUs " + ", ".join(str(i) for i in indices)


def _gpu_problem(gpu: Gpu, name: str, mig_parted: MigPartedConfig) -> str | None:
    entry = mig_parted.entry_for(name, gpu.index, gpu.pci_device_id, gpu.pci_subsystem_id)
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
