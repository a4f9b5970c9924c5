"""The GPU Operator's pause fence: when NVML must be left alone, and which Node changes need a pass.

Owns: ``pause`` (mig-manager or the driver manager is about to reset GPUs or is halfway through a MIG
change: nothing is read and nothing is published) and ``watch_trigger``. Pure: it looks at label
maps only; the loop feeds it the Node it read or watched.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass

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


def handoff_trigger(previous_nfd: Set[str], current_nfd: Set[str], owned: Set[str]) -> str | None:
    """For a sink that feeds nfd-master: nfd-master has just begun to list labels mig-labeler set
    on the Node itself (its ``feature-labels`` annotation), so the leftovers of a switch away from
    node mode can be dropped now, not at the next interval (``sinks.handoff_labels``)."""
    taken = (current_nfd - previous_nfd) & owned
    return f"nfd-master took over {len(taken)} labels mig-labeler had set on the Node" if taken else None
