"""Node-wide labels: driver/CUDA versions, machine type, capabilities, GPU mode, presence.

Owns the keys ``cuda.*``, ``gpu.machine``, ``mig.capable``, ``mps.capable``, ``gpu.mode``,
``gpu.present`` and ``gpu.healthy-count``. Pure functions of (topology, config); called only when the node has GPUs.
"""

from __future__ import annotations

from mig_labeler.config import Config
from mig_labeler.label_names import machine_value
from mig_labeler.topology import NodeTopology

PCI_CLASS_VGA = 0x030000
PCI_CLASS_3D = 0x030200


def versions(topology: NodeTopology, config: Config) -> dict[str, str]:
    """Both GFD spellings; fields copied verbatim (``455.06`` keeps minor ``06``)."""
    fields = topology.driver_version.split(".")
    major, minor = fields[0], fields[1]
    rev = fields[2] if len(fields) > 2 else ""
    cuda_major = topology.cuda_driver_version // 1000
    cuda_minor = (topology.cuda_driver_version % 1000) // 10
    return {
        "nvidia.com/cuda.driver.major": major,
        "nvidia.com/cuda.driver.minor": minor,
        "nvidia.com/cuda.driver.rev": rev,
        "nvidia.com/cuda.runtime.major": str(cuda_major),
        "nvidia.com/cuda.runtime.minor": str(cuda_minor),
        "nvidia.com/cuda.driver-version.major": major,
        "nvidia.com/cuda.driver-version.minor": minor,
        "nvidia.com/cuda.driver-version.revision": rev,
        "nvidia.com/cuda.driver-version.full": topology.driver_version,
        "nvidia.com/cuda.runtime-version.major": str(cuda_major),
        "nvidia.com/cuda.runtime-version.minor": str(cuda_minor),
        "nvidia.com/cuda.runtime-version.full": f"{cuda_major}.{cuda_minor}",
    }


def machine(topology: NodeTopology, config: Config) -> dict[str, str]:
    return {"nvidia.com/gpu.machine": machine_value(topology.machine_type)}


def capabilities(topology: NodeTopology, config: Config) -> dict[str, str]:
    """``mig.capable``: any GPU answers GetMigMode. ``mps.capable``: MPS is the active sharing
    strategy and no GPU is MIG-enabled; with MIG enabled we label false where GFD crash-loops
    (labels.md #3)."""
    mps = config.sharing.active_strategy == "mps" and not any(g.mig_enabled for g in topology.gpus)
    return {
        "nvidia.com/mig.capable": str(any(g.mig_capable for g in topology.gpus)).lower(),
        "nvidia.com/mps.capable": str(mps).lower(),
    }


def gpu_mode(topology: NodeTopology, config: Config) -> dict[str, str]:
    classes = {g.pci_class for g in topology.gpus}
    mode = "unknown"
    if classes == {PCI_CLASS_VGA}:
        mode = "graphics"
    elif classes == {PCI_CLASS_3D}:
        mode = "compute"
    return {"nvidia.com/gpu.mode": mode}


def gpu_present(topology: NodeTopology, config: Config) -> dict[str, str]:
    """labels.md #5: not a GFD label, but the seed's pods and our DaemonSet select on it."""
    return {"nvidia.com/gpu.present": "true"} if config.gpu_present_label else {}


HEALTHY_COUNT_KEY = "nvidia.com/gpu.healthy-count"


def gpu_health(topology: NodeTopology, config: Config) -> dict[str, str]:
    """Not a GFD label: the GPUs that answer NVML (all models; a lost GPU does not, display
    devices are not GPUs). Equal to ``gpu.count`` on a healthy single-model node; lower when a
    GPU is lost, which ``gpu.count`` (the GPUs the node has) does not show."""
    return {HEALTHY_COUNT_KEY: str(len(topology.gpus))}
