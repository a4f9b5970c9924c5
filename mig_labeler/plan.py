"""Pure planning of a label update: what to add, change, adopt and remove on the Node.

Owns: ``plan_update`` and ``LabelPlan``, in the style of NFD's ``createPatches`` and
cosmicpython's ``determine_actions``. No I/O. Removal is only ever planned for keys recorded as
ours (the server-side-apply field manager's keys), so labels written by mig-manager, the GPU
operator or an admin are never touched (labels.md, "Ownership").
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LabelPlan:
    desired: dict[str, str]
    add: dict[str, str]
    change: dict[str, tuple[str, str]]  # key → (live, desired)
    adopt: tuple[str, ...]  # right value already live, but not yet recorded as ours
    remove: dict[str, str]  # key → live value; only keys we own

    @property
    def empty(self) -> bool:
        return not (self.add or self.change or self.adopt or self.remove)

    def summary(self) -> str:
        parts = [f"{len(self.add)} added", f"{len(self.change)} changed", f"{len(self.remove)} removed"]
        if self.adopt:
            parts.append(f"{len(self.adopt)} adopted")
        return ", ".join(parts)

    def lines(self) -> list[str]:
        """Human-readable diff, sorted by key: ``+`` add, ``~`` change, ``-`` remove, ``*`` adopt."""
        rows = [(k, f"+ {k}={v}") for k, v in self.add.items()]
        rows += [(k, f"~ {k}: {old!r} -> {new!r}") for k, (old, new) in self.change.items()]
        rows += [(k, f"- {k} (was {old!r})") for k, old in self.remove.items()]
        rows += [(k, f"* {k}={self.desired[k]} (already set; mig-labeler takes ownership)") for k in self.adopt]
        return [line for _, line in sorted(rows)]


def plan_update(live: Mapping[str, str], owned: Set[str], desired: Mapping[str, str],
                shared: Set[str] = frozenset()) -> LabelPlan:
    """``shared``: keys we own that other managers own too. A key with the right value is adopted
    unless we already own it alone: a shared key would survive our dropping it later."""
    add = {k: v for k, v in sorted(desired.items()) if k not in live}
    change = {k: (live[k], v) for k, v in sorted(desired.items()) if k in live and live[k] != v}
    adopt = tuple(sorted(k for k, v in desired.items() if live.get(k) == v and (k not in owned or k in shared)))
    remove = {k: live[k] for k in sorted(owned) if k not in desired and k in live}
    return LabelPlan(dict(desired), add, change, adopt, remove)


def observed_changes(plan: LabelPlan, before: Mapping[str, str], after: Mapping[str, str],
                     adopted: Set[str]) -> LabelPlan:
    """What the API server's answer shows really happened to the keys the plan touched (another
    writer's changes in between are not ours to report). ``adopted``: planned adoptions that we
    now own alone."""
    touched = set(plan.desired) | set(plan.remove)
    add = {k: after[k] for k in sorted(touched) if k in after and k not in before}
    change = {k: (before[k], after[k]) for k in sorted(touched) if k in after and k in before and before[k] != after[k]}
    remove = {k: before[k] for k in sorted(touched) if k in before and k not in after}
    return LabelPlan(dict(plan.desired), add, change, tuple(k for k in plan.adopt if k in adopted), remove)


MIG_CONFIG = "nvidia.com/mig.config"  # written by the GPU operator's mig-manager, never by us
MIG_CONFIG_STATE = "nvidia.com/mig.config.state"
RECONFIGURING = frozenset({"pending", "rebooting"})
DEPLOY_CLIENT = "nvidia.com/gpu.deploy.client"  # GPU Operator 26.7+: true, or paused-for-* while GPUs change
DEPLOY_GFD = "nvidia.com/gpu.deploy.gpu-feature-discovery"  # mig-manager pauses GFD through it


@dataclass(frozen=True, slots=True)
class Pause:
    reason: str  # for the mig_labeler_paused{reason} gauge: the label and its value
    message: str


def pause(live: Mapping[str, str]) -> Pause | None:
    """Why NVML must be left alone now: mig-manager or the driver manager is about to reset the
    GPUs (a reset fails while any process holds NVML open), or is halfway through a MIG change
    (NVML would show a half-built layout). Nothing is read and nothing is published; the labels
    on the Node stay as they are."""
    client = live.get(DEPLOY_CLIENT)
    if client is not None and client != "true":
        return Pause(f"gpu.deploy.client={client}", f"the GPU Operator set {DEPLOY_CLIENT}={client}")
    gfd = live.get(DEPLOY_GFD, "")
    if gfd.startswith("paused-"):
        return Pause(f"gpu.deploy.gpu-feature-discovery={gfd}", f"the GPU Operator set {DEPLOY_GFD}={gfd}")
    state = live.get(MIG_CONFIG_STATE)
    if state in RECONFIGURING:
        return Pause(f"mig.config.state={state}", f"mig-manager is reconfiguring MIG ({MIG_CONFIG_STATE}={state})")
    return None


def watch_trigger(previous: Mapping[str, str], current: Mapping[str, str], owned: Set[str],
                  desired: Mapping[str, str] | None) -> str | None:
    """Why a Node change seen on the watch needs a pass now, or None (our own writes need none)."""
    if pause(previous) is not None and pause(current) is None:
        return "the GPU Operator's pause ended"
    state = current.get(MIG_CONFIG_STATE)
    if state != previous.get(MIG_CONFIG_STATE) and state in ("success", "failed"):  # failed: publish what NVML shows
        return f"{MIG_CONFIG_STATE}={state}"
    if current.get(MIG_CONFIG) != previous.get(MIG_CONFIG):
        return f"{MIG_CONFIG} changed"
    if desired is None:
        return None
    if any(current.get(k) != v for k, v in desired.items()):
        return "a label mig-labeler owns was changed or removed"
    if any(k in current and k not in desired for k in owned):
        return "a stale label mig-labeler owns is back"
    return None
