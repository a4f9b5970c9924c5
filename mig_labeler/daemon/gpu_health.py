"""What an operator sees of GPUs that stop answering or leave NVML's list.

Owns: ``GpuHealthReporter``: the ``mig_labeler_gpus{state}`` gauge (healthy: answering; lost:
enumerated by NVML but gone, e.g. GPU_IS_LOST; missing: on the PCI bus, not in NVML's list), one
Warning Event ``GPULost`` per pass that finds GPUs newly lost (naming index, UUID and PCI bus ID as
far as known), one Normal ``GPURecovered`` when they answer again (no restart needed: every pass
re-reads the GPU list), and one Warning ``GPUMissingFromNVML`` per newly missing bus address. A
held Warning whose GPU is back before its window ends is dropped, not posted as current.
"""

from __future__ import annotations

import logging

from mig_labeler.daemon.events import EventReporter
from mig_labeler.daemon.metrics import Metrics
from mig_labeler.topology import LostGpu, NodeTopology

log = logging.getLogger("mig_labeler")


def _key(gpu: LostGpu) -> str:
    """Who the GPU is across passes: NVML's index can shift when a GPU leaves the list."""
    return gpu.uuid or gpu.pci_bus_id or f"index {gpu.index}"


class GpuHealthReporter:
    def __init__(self, metrics: Metrics, events: EventReporter) -> None:
        self.metrics = metrics
        self.events = events
        self.lost: dict[str, LostGpu] = {}  # as last reported
        self.missing: frozenset[str] = frozenset()

    def observe(self, topology: NodeTopology) -> None:
        answering = {k for g in topology.gpus for k in (g.uuid, g.pci_bus_id, f"index {g.index}") if k}
        self._report(len(topology.gpus), answering, topology.lost, topology.missing_from_nvml)

    def all_lost(self, lost: tuple[LostGpu, ...]) -> None:
        """The pass failed because no GPU answers (``AllGpusLost``); the PCI bus was not compared."""
        self._report(0, set(), lost, tuple(self.missing))

    def _report(self, healthy: int, answering: set[str], lost: tuple[LostGpu, ...], missing: tuple[str, ...]) -> None:
        gauge = self.metrics.gpus
        gauge.labels(state="healthy").set(healthy)
        gauge.labels(state="lost").set(len(lost))
        gauge.labels(state="missing").set(len(missing))
        now = {_key(g): g for g in lost}
        new = [g for k, g in now.items() if k not in self.lost]
        back = [g for k, g in self.lost.items() if k not in now and (k in answering)]
        if new:
            said = "; ".join(f"{g.describe()}: {g.error}" for g in new)
            log.warning("GPU lost: %s; it is left out of the labels until it answers again", said)
            self.events.report("GPULost", f"mig-labeler: {said}. Left out of the labels (nvidia.com/gpu.healthy-count="
                               f"{healthy}); gpu.count still counts it. A GPU reset or a reboot brings it back.",
                               "Warning")
        if not now:
            self.events.resolve("GPULost")
        if back:
            said = ", ".join(g.describe() for g in back)
            log.info("GPU answers again: %s", said)
            self.events.report("GPURecovered", f"mig-labeler: {said} answers NVML again and is labelled", "Normal")
        self.lost = now
        fresh = sorted(set(missing) - self.missing)
        if fresh:
            said = ", ".join(fresh)
            log.warning("NVIDIA GPU on the PCI bus but not in NVML's list: %s", said)
            self.events.report("GPUMissingFromNVML", f"mig-labeler: the PCI bus shows NVIDIA GPU {said} bound to the "
                               "nvidia driver, but NVML does not list it (fallen off the bus?); gpu.count counts "
                               "only what NVML lists", "Warning")
        if not missing:
            self.events.resolve("GPUMissingFromNVML")
        self.missing = frozenset(missing)
