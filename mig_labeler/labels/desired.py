"""One read → compute → validate step: what the node's labels should be right now.

Owns: turning a topology and a config into the validated desired label map plus the warnings a
human should see (rejected labels, MIG-INVALID reason, NVML absent). Shared by the ``labels``
command and every daemon pass, so both print/publish exactly the same map. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from mig_labeler.config import NO_SHARING, Config, MigStrategy
from mig_labeler.errors import FIXTURE_HINT
from mig_labeler.gpu_operator import MigRequest
from mig_labeler.label_names import Rejected, validate_labels
from mig_labeler.labels import compute_labels
from mig_labeler.labels.advertised import advertised_resources
from mig_labeler.labels.dra import dra_config, dra_labels
from mig_labeler.labels.fabric import clique_problem
from mig_labeler.labels.full_gpu import labelled_model
from mig_labeler.labels.mig import single_strategy_problem
from mig_labeler.labels.mig_config import Verification, verify_mig_config
from mig_labeler.topology import NodeTopology


@dataclass(frozen=True, slots=True)
class DesiredLabels:
    labels: dict[str, str]
    rejected: tuple[Rejected, ...]
    warnings: tuple[str, ...]
    verification: Verification = Verification({})  # the Node's MIG config against NVML (labels.mig_config)


def labels_for_topology(topology: NodeTopology, config: Config, started_at: int,
                        warnings: list[str] | None = None, source_warnings: Sequence[str] = (),
                        mig_request: MigRequest | None = None, dra: bool = False) -> DesiredLabels:
    """``warnings``: NVML's init failure, when the node is labelled as GPU-less for it;
    ``source_warnings``: inputs the source could not use (a machine-type file); ``mig_request``:
    the MIG config the Node asks for, verified against the topology (none: not verified); ``dra``:
    the node's GPUs are allocated through DRA, so only the hardware's labels (``labels.dra``): as
    the daemon decided it for this pass, or --resource-api dra."""
    dra = dra or config.resource_api == "dra"
    if dra:
        config = dra_config(config)
    warnings = list(warnings or [])
    if not topology.gpus and not warnings and not config.fixture:
        warnings.append(f"NVML found no GPUs on this node; {FIXTURE_HINT}")
    warnings.extend(source_warnings)
    warnings.extend(unmatched_sharing(topology, config))
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
    verified = verify_mig_config(topology, config.mig_parted, mig_request)
    computed = compute_labels(topology, config, started_at) | verified.labels
    labels, rejected = validate_labels(dra_labels(computed) if dra else computed)
    warnings.extend(f"not publishing {r.key}={_shortened(r.value)}: {r.reason}" for r in rejected)
    return DesiredLabels(labels, rejected, tuple(warnings), verified)


def _shortened(value: str, limit: int = 60) -> str:
    """A value for a warning line: a binary machine-type file gives a value of a thousand bytes."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value)} characters)"


def unmatched_sharing(topology: NodeTopology, config: Config) -> list[str]:
    """Sharing entries for a resource this node does not advertise: a typo (mig-1g.10gb for
    mig-1g.10gb.me) or a config written for other nodes. Accepted, as GFD does, but said."""
    if not topology.gpus or not config.sharing.resources:
        return []
    advertised = set(advertised_resources(topology, replace(config, sharing=NO_SHARING)))
    missing = [r.name for r in config.sharing.resources if r.name not in advertised]
    if not missing:
        return []
    return [f"the sharing config names {', '.join(missing)}, which this node does not advertise "
            f"(it has {', '.join(sorted(advertised)) or 'no GPU resources'}); that entry changes nothing here"]
