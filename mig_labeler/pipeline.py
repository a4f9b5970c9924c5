"""The stages in order for the commands that run them once: sources → labels (→ sinks in the loop).

Owns: GFD's NVML init-failure policy (``read_or_fallback``) and ``desired_labels``, what the
``labels`` command prints. The daemon's pass (``loop``) applies the same steps, then the sinks.
"""

from __future__ import annotations

from dataclasses import replace

from mig_labeler.config import Config
from mig_labeler.errors import FIXTURE_HINT, NvmlUnavailable
from mig_labeler.labels.desired import DesiredLabels, labels_for_topology
from mig_labeler.sources import TopologySource
from mig_labeler.topology import NodeTopology

NO_GPUS = NodeTopology(driver_version="", cuda_driver_version=0, gpus=())


def read_or_fallback(source: TopologySource, config: Config) -> tuple[NodeTopology, list[str]]:
    """GFD's init policy: with --fail-on-init-error NVML init failure is fatal (exit 1);
    without it the node is treated as having no GPUs (vGPU labels are still read: GFD emits them
    on nodes without an NVML-managed GPU). Query failures always propagate."""
    try:
        return source.read(), []
    except NvmlUnavailable as e:
        hint = "" if config.fixture else f"; {FIXTURE_HINT}"
        if config.fail_on_init_error:
            raise NvmlUnavailable(f"{e}{hint}", e.code) from e
        return (replace(NO_GPUS, vgpu=source.vgpu()),
                [f"{e}; labelling as a node without GPUs (--fail-on-init-error=false){hint}"])


def desired_labels(source: TopologySource, config: Config, started_at: int) -> DesiredLabels:
    """For the ``labels`` command: GFD's init-failure policy applies."""
    topology, warnings = read_or_fallback(source, config)
    return labels_for_topology(topology, config, started_at, warnings, source.warnings)
