"""``compute_labels``: the ordered tuple of labelers and their merge.

Like GFD's ``internal/lm``: many small labelers, each a pure function (topology, config) → map,
merged in the fixed order of ``LABELERS`` (later wins; only the single strategy overrides
``nvidia.com/gpu.*``). No I/O, no clock: the session start time is passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from mig_labeler.config import Config
from mig_labeler.label_names import TIMESTAMP_KEY
from mig_labeler.labels import fabric, full_gpu, mig, system, vgpu
from mig_labeler.topology import NodeTopology

Labeler = Callable[[NodeTopology, Config], Mapping[str, str]]

LABELERS: tuple[Labeler, ...] = (
    system.machine,
    system.versions,
    system.capabilities,
    full_gpu.full_gpu_labels,
    mig.mig_strategy_labels,
    system.gpu_mode,
    system.gpu_present,
    system.gpu_health,
    fabric.clique_labels,
)



def compute_labels(topology: NodeTopology, config: Config, started_at: int) -> dict[str, str]:
    """The complete label map for a node. ``started_at`` (Unix seconds) is the session start:
    like GFD, the timestamp marks when labelling started, not each pass (labels.md)."""
    labels: dict[str, str] = {}
    if not config.no_timestamp:
        labels[TIMESTAMP_KEY] = str(started_at)
    if topology.gpus:  # GFD: no GPU, no device labels at all (gfd-reference §1.13)
        for labeler in LABELERS:
            labels.update(labeler(topology, config))
    labels.update(vgpu.vgpu_labels(topology, config))  # on nodes without an NVML GPU too, as GFD
    return labels
