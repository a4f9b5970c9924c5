"""What the GPU Operator's labels on our Node say: its pause, the MIG config request and its state.

Owns: the keys mig-manager and the operator write (never ours to write), ``pause`` (mig-manager or
the driver manager is about to reset GPUs or is halfway through a MIG change: nothing is read and
nothing is published), ``mig_request`` (which config the Node asks for, and how far mig-manager
has got) and ``watch_trigger`` / ``handoff_trigger`` (which Node changes need a pass). Pure: it
looks at label maps only; the daemon feeds it the Node it read or watched.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass

from mig_labeler.label_names import PREFIX

REQUESTED = PREFIX + "mig.config"  # written by the GPU operator's mig-manager, never by us
STATE = PREFIX + "mig.config.state"
RECONFIGURING = frozenset({"pending", "rebooting"})
DEPLOY_CLIENT = PREFIX + "gpu.deploy.client"  # GPU Operator 26.7+: true, or paused-for-* while GPUs change
DEPLOY_GFD = PREFIX + "gpu.deploy.gpu-feature-discovery"  # mig-manager pauses GFD through it
DEPLOY_DRA_DRIVER = PREFIX + "gpu.deploy.dra-driver"  # true: the operator runs its DRA driver here (docs/dra.md)


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


def runs_dra_driver(labels: Mapping[str, str]) -> bool:
    """The operator marks this node as one whose GPUs its DRA driver allocates (no device plugin)."""
    return labels.get(DEPLOY_DRA_DRIVER) == "true"


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
    state = live.get(STATE)
    if state in RECONFIGURING:
        return Pause(f"mig.config.state={state}", f"mig-manager is reconfiguring MIG ({STATE}={state})")
    return None


def watch_trigger(previous: Mapping[str, str], current: Mapping[str, str], owned: Set[str],
                  desired: Mapping[str, str] | None) -> str | None:
    """Why a Node change seen on the watch needs a pass now, or None (our own writes need none)."""
    if pause(previous) is not None and pause(current) is None:
        return "the GPU Operator's pause ended"
    state = current.get(STATE)
    if state != previous.get(STATE) and state in ("success", "failed"):  # failed: publish what NVML shows
        return f"{STATE}={state}"
    if current.get(REQUESTED) != previous.get(REQUESTED):
        return f"{REQUESTED} changed"
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
