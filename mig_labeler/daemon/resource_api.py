"""How pods get this node's GPUs (a device plugin, or DRA), decided each pass, and what that changes.

Owns: ``ResourceApi``: the mode each pass labels for (``--resource-api``; under ``auto``, DRA when
the Node carries the GPU Operator's ``nvidia.com/gpu.deploy.dra-driver=true`` or the API server
has ResourceSlices of the driver ``gpu.nvidia.com`` for this node), said once per change in the log
and always in ``mig_labeler_resource_api``; on a DRA node, the driver's ResourceSlices held against
NVML (a disagreement is one Warning Event, ``DRADevicesDisagree``, and
``mig_labeler_dra_disagreements``); and yielding ``nvidia.com/gpu.clique`` to another field
manager (the DRA driver's ComputeDomain plugin writes it there): we neither write nor remove a key
someone else owns, and say so once. The ResourceSlices are listed at the first pass and then at most
every ``SLICE_INTERVAL`` seconds, so a steady node costs no request per pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mig_labeler.daemon.events import EventReporter
from mig_labeler.daemon.metrics import Metrics
from mig_labeler.daemon.reporting import Warnings
from mig_labeler.errors import ApiError
from mig_labeler.gpu_operator import DEPLOY_DRA_DRIVER, runs_dra_driver
from mig_labeler.kube.client import KubeClient
from mig_labeler.kube.node_state import FIELD_MANAGER, NodeState
from mig_labeler.resource_slices import DRIVER, DraDevices, counts, devices, disagreements
from mig_labeler.topology import NodeTopology

log = logging.getLogger("mig_labeler")

YIELDED = ("nvidia.com/gpu.clique",)  # keys we leave to another field manager that owns them
SLICE_INTERVAL = 300.0


class ResourceApi:
    def __init__(self, setting: str, kube: KubeClient | None, node_name: str, metrics: Metrics, events: EventReporter,
                 warnings: Warnings, clock: Callable[[], float]) -> None:
        """``setting``: --resource-api (auto | device-plugin | dra); ``kube``: None without a cluster
        (the file sink alone): then only the flag decides."""
        self.setting = setting
        self.kube = kube
        self.node_name = node_name
        self.metrics = metrics
        self.events = events
        self.warnings = warnings
        self.clock = clock
        self.mode: tuple[str, str] | None = None  # (mode, reason) last said
        self.published: DraDevices | None = None  # the driver's devices at the last listing
        self.listed_at: float | None = None
        self.slices_readable = True
        self.yielding: frozenset[str] = frozenset()

    def decide(self, node: NodeState | None) -> bool:
        """True when this pass labels for DRA."""
        mode, reason = self._mode(node)
        if (mode, reason) != self.mode:
            log.info("labelling for %s (%s)", mode, {"flag": "--resource-api", "label": f"{DEPLOY_DRA_DRIVER}=true",
                                                     "resourceslices": f"ResourceSlices of the driver {DRIVER}",
                                                     "default": "no sign of a DRA driver"}[reason])
            self.metrics.resource_api.clear()
            self.metrics.resource_api.labels(mode=mode, reason=reason).set(1)
            self.mode = (mode, reason)
        return mode == "dra"

    def _mode(self, node: NodeState | None) -> tuple[str, str]:
        if self.setting != "auto":
            return self.setting, "flag"
        if node is not None and runs_dra_driver(node.labels):
            return "dra", "label"
        self._list_slices()
        if self.published is not None and (self.published.gpus or self.published.mig):
            return "dra", "resourceslices"
        return "device-plugin", "default"

    def _list_slices(self) -> None:
        """The driver's slices for this node, at most every SLICE_INTERVAL; a refusal is said once."""
        now = self.clock()
        if self.kube is None or not self.slices_readable or (
                self.listed_at is not None and now - self.listed_at < SLICE_INTERVAL):
            return
        self.listed_at = now
        try:
            found = self.kube.resource_slices(self.node_name, DRIVER)
        except ApiError as e:
            if e.status == 403:
                self.slices_readable = False
                self.warnings.once(f"cannot list ResourceSlices ({e}): DRA nodes are recognised by "
                                   f"{DEPLOY_DRA_DRIVER}=true or --resource-api dra alone (grant list on "
                                   "resourceslices.resource.k8s.io)")
            else:
                log.warning("could not list this node's ResourceSlices: %s", e)
            return
        self.published = devices(found) if found is not None else None

    def check(self, topology: NodeTopology, dra: bool) -> None:
        """On a DRA node, NVML against the driver's ResourceSlices: one Warning Event per new disagreement."""
        if not dra:
            return
        self._list_slices()
        if self.published is None:
            return
        for (source, kind), number in counts(topology, self.published).items():
            self.metrics.dra_devices.labels(source=source, type=kind).set(number)
        found = disagreements(topology, self.published)
        self.metrics.dra_disagreements.set(len(found))
        if found:
            self.events.report("DRADevicesDisagree", "mig-labeler: the DRA driver's ResourceSlices and NVML disagree: "
                               + "; ".join(found), "Warning")
        else:
            self.events.resolve("DRADevicesDisagree")

    def yielded(self, labels: dict[str, str], node: NodeState | None) -> dict[str, str]:
        """``labels`` without the keys another field manager owns (nfd-master's, which a migration
        from GFD takes over, excepted)."""
        if node is None:
            return labels
        ours = self.kube.field_manager if self.kube is not None else FIELD_MANAGER
        owners = {key: [m for m in node.owners(key) if m != ours] for key in YIELDED if key in labels}
        others = frozenset(key for key, managers in owners.items() if managers and key not in node.nfd_labels)
        for key in sorted(others - self.yielding):
            log.info("leaving %s to %s, which owns it on node %s: mig-labeler neither writes nor removes it",
                     key, ", ".join(owners[key]), node.name)
        self.yielding = others
        return {key: value for key, value in labels.items() if key not in others}
