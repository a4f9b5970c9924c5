"""``nvidia.com/gpu.clique``: the NVLink fabric clique of the node's GPUs (IMEX on GB200 NVL72 and
HGX B200), as GFD's ``internal/lm/imex.go`` computes it (gfd-reference §1.10). Pure.
"""

from __future__ import annotations

from mig_labeler.config import Config
from mig_labeler.topology import NodeTopology

CLIQUE_KEY = "nvidia.com/gpu.clique"


def cliques(topology: NodeTopology) -> set[str]:
    """``<clusterUUID>.<cliqueId>`` of every fabric-attached GPU; unattached GPUs are ignored."""
    return {f"{g.fabric.cluster_uuid}.{g.fabric.clique_id}" for g in topology.gpus
            if g.fabric is not None and g.fabric.attached}


def clique_labels(topology: NodeTopology, config: Config) -> dict[str, str]:
    found = cliques(topology)
    return {CLIQUE_KEY: next(iter(found))} if len(found) == 1 else {}


def clique_problem(topology: NodeTopology) -> str | None:
    """GFD logs a warning and writes no label when attached GPUs disagree."""
    found = cliques(topology)
    if len(found) > 1:
        return f"GPUs on this node are in different fabric cliques ({', '.join(sorted(found))}); no {CLIQUE_KEY}"
    return None
