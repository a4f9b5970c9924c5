"""One read → compute → validate step: what the node's labels should be right now.

Owns: turning a topology and a config into the validated desired label map plus the warnings a
human should see (rejected labels, MIG-INVALID reason, NVML absent). Shared by the ``labels``
command and every daemon pass, so both print/publish exactly the same map. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from mig_labeler.config import Config, MigStrategy
from mig_labeler.errors import FIXTURE_HINT
from mig_labeler.label_names import Rejected, validate_labels
from mig_labeler.labels import compute_labels
from mig_labeler.labels.fabric import clique_problem
from mig_labeler.labels.full_gpu import labelled_model
from mig_labeler.labels.mig import single_strategy_problem
from mig_labeler.topology import NodeTopology


@dataclass(frozen=True, slots=True)
class DesiredLabels:
    labels: dict[str, str]
    rejected: tuple[Rejected, ...]
    warnings: tuple[str, ...]


def labels_for_topology(topology: NodeTopology, config: Config, started_at: int,
                        warnings: list[str] | None = None) -> DesiredLabels:
    warnings = list(warnings or [])
    if not topology.gpus and not warnings and not config.fixture:
        warnings.append(f"NVML found no GPUs on this node; {FIXTURE_HINT}")
    if config.mig_strategy is MigStrategy.SINGLE:
        problem = single_strategy_problem(topology)
        if problem:
            warnings.append(f"MIG strategy single is INVALID on this node: {problem}")
    if len({g.name for g in topology.gpus}) > 1:
        warnings.append(
            f"several GPU models on this node; nvidia.com/gpu.* describes {labelled_model(topology.gpus)} "
            "(a model with full GPUs first, then most GPUs, then lexically smallest name)"
        )
    clique = clique_problem(topology)
    if clique:
        warnings.append(clique)
    labels, rejected = validate_labels(compute_labels(topology, config, started_at))
    warnings.extend(f"not publishing {r.key}={r.value!r}: {r.reason}" for r in rejected)
    return DesiredLabels(labels, rejected, tuple(warnings))
