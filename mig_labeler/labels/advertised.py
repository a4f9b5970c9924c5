"""What the NVIDIA device plugin advertises on a node (``status.allocatable``), derived from the
same topology and config the labels come from, or from the labels themselves. Pure.

Used by ``mig-labeler check``. The device plugin's rules, per MIG strategy:
- none: every GPU is one ``nvidia.com/gpu``, MIG or not;
- single: each MIG device is one ``nvidia.com/gpu`` (GPUs without MIG count as one each);
- mixed: ``nvidia.com/gpu`` for GPUs without MIG, ``nvidia.com/mig-<profile>`` per MIG device.
Sharing (time-slicing or MPS) multiplies a resource by its replicas; with ``renameByDefault`` the
resource is advertised as ``<name>.shared`` instead.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping

from mig_labeler.config import Config, MigStrategy
from mig_labeler.label_names import GPU_RESOURCE, PREFIX, mig_resource_name
from mig_labeler.labels.mig import single_strategy_problem
from mig_labeler.topology import NodeTopology


def advertised_resources(topology: NodeTopology, config: Config) -> dict[str, int]:
    if config.mig_strategy is MigStrategy.SINGLE and single_strategy_problem(topology):
        return {}  # the plugin refuses a layout single cannot describe (the labels say MIG-INVALID)
    counts: Counter[str] = Counter()
    for gpu in topology.gpus:
        if config.mig_strategy is MigStrategy.NONE or not gpu.mig_enabled:
            counts[GPU_RESOURCE] += 1
        elif config.mig_strategy is MigStrategy.SINGLE:
            counts[GPU_RESOURCE] += len(gpu.mig_devices)
        else:
            for device in gpu.mig_devices:
                counts[mig_resource_name(device.profile)] += 1
    return _shared({name: n for name, n in counts.items() if n}, config)


def _shared(counts: Mapping[str, int], config: Config) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, count in sorted(counts.items()):
        entry = config.sharing.resource(name)
        if entry is None or entry.replicas < 2:
            out[name] = count
        else:
            out[f"{name}.shared" if entry.renamed else name] = count * entry.replicas
    return out


_MIG_COUNT = re.compile(r"^nvidia[.]com/(mig-.+)[.]count$")


def resources_from_labels(labels: Mapping[str, str]) -> dict[str, int]:
    """The same from a node's labels alone (saved ``labels -o json`` output): count labels times
    replicas. A resource with replicas > 1 and no ``-SHARED`` product suffix was renamed
    (``.shared``). Under mixed, ``gpu.count`` counts MIG-enabled GPUs too; ``gpu.replicas=0``
    says that every GPU is MIG-enabled, so no ``nvidia.com/gpu`` is advertised."""
    strategy = labels.get(PREFIX + "mig.strategy", "none")
    out: dict[str, int] = {}
    gpu_count = _int(labels.get(PREFIX + "gpu.count"))
    replicas = _int(labels.get(PREFIX + "gpu.replicas"), 1)
    product = labels.get(PREFIX + "gpu.product", "")
    if gpu_count and not product.endswith("-MIG-INVALID") and not (strategy == "mixed" and replicas == 0):
        _add(out, GPU_RESOURCE, gpu_count, replicas, product)
    if strategy == "mixed":
        for key, value in labels.items():
            match = _MIG_COUNT.match(key)
            if match and _int(value):
                resource = PREFIX + match.group(1)
                _add(out, resource, _int(value), _int(labels.get(f"{resource}.replicas"), 1),
                     labels.get(f"{resource}.product", ""))
    return out


def _add(out: dict[str, int], resource: str, count: int, replicas: int, product: str) -> None:
    if replicas < 2:
        out[resource] = count
    elif product.endswith("-SHARED"):
        out[resource] = count * replicas
    else:
        out[f"{resource}.shared"] = count * replicas


def _int(text: str | None, default: int = 0) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default
