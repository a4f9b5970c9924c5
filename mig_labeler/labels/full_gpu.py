"""Whole-GPU labels under ``nvidia.com/gpu.*``: product, count, replicas, memory, family.

Owns the full-GPU half of gfd-reference §2.1 and the multi-model rule of labels.md #1. Pure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from mig_labeler.config import Config
from mig_labeler.label_names import GPU_RESOURCE, product_value
from mig_labeler.labels.resource import WITHOUT_SHARING, resource_labels, sharing_for
from mig_labeler.topology import Gpu, NodeTopology

# gfd-reference §1.6; CC major 0 means "no family/compute labels at all".
_FAMILY_BY_MAJOR = {1: "tesla", 2: "fermi", 3: "kepler", 5: "maxwell", 6: "pascal", 9: "hopper",
                    10: "blackwell", 12: "blackwell", 13: "rubin"}


def gpu_family(major: int, minor: int) -> str:
    if major == 7:
        return "volta" if minor < 5 else "turing"
    if major == 8:
        return "ampere" if minor < 9 else "ada-lovelace"
    return _FAMILY_BY_MAJOR.get(major, "undefined")


def labelled_model(gpus: Sequence[Gpu]) -> str:
    """labels.md #1: the model whose ``nvidia.com/gpu.*`` labels the node carries.

    GFD (``newGPULabelers`` in ``internal/lm/mig-strategy.go``) merges the labelers of models with
    full (MIG-disabled) GPUs after those of MIG-enabled models, so a model with a full GPU always
    wins; it is random (Go map order) only among models that are all full or all MIG-enabled. We
    follow the first rule exactly and replace the randomness: among the models that have a full GPU
    (or, when no GPU is full, among all), the one with the most GPUs (MIG-enabled ones of the model
    count too, as in GFD's ``counts``), ties to the lexically smallest NVML name."""
    counts = Counter(g.name for g in gpus)
    with_full = {g.name for g in gpus if not g.mig_enabled}
    candidates = with_full or set(counts)
    return min(candidates, key=lambda name: (-counts[name], name))


def representative(gpus: Sequence[Gpu]) -> Gpu:
    """The GPU whose memory and compute capability label the model. GFD takes the last one in
    NVML order; we take the smallest known memory (a floor every pod can rely on), then UUID,
    so the choice does not depend on enumeration order."""
    return min(gpus, key=lambda g: (g.memory_mib is None, g.memory_mib or 0, g.compute_capability, g.uuid))


def full_gpu_labels(topology: NodeTopology, config: Config) -> dict[str, str]:
    model = labelled_model(topology.gpus)
    same_model = [g for g in topology.gpus if g.name == model]
    full = [g for g in same_model if not g.mig_enabled]
    # A full GPU of the model overrides its MIG-enabled siblings, as GFD merges full models last.
    sharing = sharing_for(GPU_RESOURCE, config) if full else WITHOUT_SHARING
    gpu = representative(full or same_model)
    # A lost GPU of the model still counts (the node has it; the device plugin keeps it in the
    # capacity, unhealthy); its other facts are not read. gpu.healthy-count says how many answer.
    count = len(same_model) + sum(1 for lost in topology.lost if lost.name == model)
    labels = resource_labels(GPU_RESOURCE, product_value(model, shared=sharing.shared_suffix), count, sharing)
    if gpu.memory_mib:
        labels[f"{GPU_RESOURCE}.memory"] = str(gpu.memory_mib)
    major, minor = gpu.compute_capability
    if major != 0:
        labels[f"{GPU_RESOURCE}.family"] = gpu_family(major, minor)
        labels[f"{GPU_RESOURCE}.compute.major"] = str(major)
        labels[f"{GPU_RESOURCE}.compute.minor"] = str(minor)
    return labels
