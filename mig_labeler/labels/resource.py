"""Per-resource label blocks shared by the full-GPU and MIG labelers.

Owns: how a resource's sharing config becomes ``replicas``/``sharing-strategy``/``-SHARED``
(gfd-reference §4.3), and the key layout ``<resource>.<suffix>`` (GFD's ``resourceLabeler.key``).
Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from mig_labeler.config import Config
from mig_labeler.topology import MigAttributes


@dataclass(frozen=True, slots=True)
class ResourceSharing:
    replicas: int
    strategy: str
    shared_suffix: bool


# MIG-enabled parents in the full-GPU labels: replicas 0, strategy none, no -SHARED.
WITHOUT_SHARING = ResourceSharing(replicas=0, strategy="none", shared_suffix=False)
# Single-strategy INVALID: replicas 0 and an *empty* sharing-strategy, as GFD writes it.
INVALID_SHARING = ResourceSharing(replicas=0, strategy="", shared_suffix=False)


def sharing_for(resource: str, config: Config) -> ResourceSharing:
    entry = config.sharing.resource(resource)
    if entry is None:
        return ResourceSharing(replicas=1, strategy="none", shared_suffix=False)
    strategy = config.sharing.active_strategy if entry.replicas > 1 else "none"
    return ResourceSharing(entry.replicas, strategy, shared_suffix=entry.replicas > 1 and not entry.renamed)


def resource_labels(resource: str, product: str, count: int, sharing: ResourceSharing) -> dict[str, str]:
    return {
        f"{resource}.product": product,
        f"{resource}.count": str(count),
        f"{resource}.replicas": str(sharing.replicas),
        f"{resource}.sharing-strategy": sharing.strategy,
    }


def attribute_labels(resource: str, attributes: MigAttributes) -> dict[str, str]:
    return {
        f"{resource}.memory": str(attributes.memory_mib),
        f"{resource}.multiprocessors": str(attributes.multiprocessors),
        f"{resource}.slices.gi": str(attributes.slices_gi),
        f"{resource}.slices.ci": str(attributes.slices_ci),
        f"{resource}.engines.copy": str(attributes.copy_engines),
        f"{resource}.engines.decoder": str(attributes.decoders),
        f"{resource}.engines.encoder": str(attributes.encoders),
        f"{resource}.engines.jpeg": str(attributes.jpeg),
        f"{resource}.engines.ofa": str(attributes.ofa),
    }
