"""``nvidia.com/mig.config.applied``: the MIG layout the Node asked for, verified against NVML.

Owns: comparing, GPU by GPU, what NVML reports with what the mig-parted config named by the
Node's ``nvidia.com/mig.config`` asks for that GPU (its entry as mig-manager picks it: MIG mode,
then the multiset of MIG profiles in go-nvlib spelling), once mig-manager says
``nvidia.com/mig.config.state=success`` for that request. A match labels
``mig.config.applied=<name>``; anything else labels nothing (so a selector on it matches only
verified nodes) and says why. mig-labeler never writes ``mig.config`` or ``mig.config.state``:
they are mig-manager's. Pure: since when each label has held comes from the Node cache.
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


UNANSWERED = "unanswered"  # our name for: mig.config changed after mig-manager last set the state


@dataclass(frozen=True, slots=True)
class MigRequest:
    """What the Node asks of mig-manager, and how far mig-manager has got: ``state`` is the
    ``mig.config.state`` label, or ``unanswered`` while ``mig.config`` is newer than it (the admin
    changed the config and mig-manager has not even set ``pending``: between the two a stale
    ``success`` must not be verified against the new name); ``since`` is when it began (epoch s)."""

    config: str
    state: str
    since: float


def mig_request(labels: Mapping[str, str], held: Mapping[str, tuple[str, float]]) -> MigRequest | None:
    """The request the Node's labels make, or None when it names no config. ``held``: since when
    each label has held its value (``NodeCache.held``); a state that is not newer than the config
    it answers is ``unanswered``."""
    name = labels.get(REQUESTED)
    if not name:
        return None
    state = labels.get(STATE, "")
    config_since = _since(held, REQUESTED, name, 0.0)
    state_since = _since(held, STATE, state, config_since)
    if state_since < config_since:
        return MigRequest(name, UNANSWERED, config_since)
    return MigRequest(name, state or UNANSWERED, state_since)


def _since(held: Mapping[str, tuple[str, float]], key: str, value: str, otherwise: float) -> float:
    """Since when ``key`` has had ``value``; ``otherwise`` when the record is of another value
    (the labels and the record come from two reads of the Node)."""
    seen = held.get(key)
    return seen[1] if seen is not None and seen[0] == value else otherwise


@dataclass(frozen=True, slots=True)
class Verification:
    labels: dict[str, str]
    mismatch: str | None = None  # why the layout is not the one asked for (a Warning Event)
    config: str | None = None  # the config the layout was compared with; None: nothing was compared


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
    for gpu in topology.gpus:
        problem = _gpu_problem(gpu, name, mig_parted)
        if problem:
            return Verification({}, f"GPU {gpu.index}: {problem}", name)
    return Verification({APPLIED: name}, config=name)


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
