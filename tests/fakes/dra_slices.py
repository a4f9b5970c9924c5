"""ResourceSlices as the DRA driver for NVIDIA GPUs (kubernetes-sigs/dra-driver-nvidia-gpu) publishes
them for a node, built from what NVML says about it (our reader over a fixture).

The shape follows the driver's cmd/gpu-kubelet-plugin/deviceinfo.go at commit 95932046 (2026-11):
``GpuInfo.GetDevice`` (name ``gpu-<minor>``; attributes type, uuid, productName as NVML names it,
brand, architecture, cudaComputeCapability/driverVersion/cudaDriverVersion as semantic versions;
capacity memory as a binary quantity) for a GPU with MIG disabled, ``MigDeviceInfo.GetDevice``
(``CommonAttributesMig``: type mig, parentUUID, profile, productName of the parent; uuid) for each
MIG device of a GPU with MIG enabled; one pool per node, driver ``gpu.nvidia.com``. Written from
that source, not produced by running it: the driver links go-nvml through cgo, which does not
build with this machine's gcc 12.
"""

from __future__ import annotations

from typing import Any

from mig_labeler.topology import NodeTopology

ARCHITECTURES = {8: "Ampere", 9: "Hopper", 10: "Blackwell"}


def _version(text: str) -> str:
    parts = [str(int(p)) for p in text.split(".")] + ["0", "0"]
    return ".".join(parts[:3])


def _quantity(mib: int) -> str:
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def resource_slices(topology: NodeTopology, node: str, *, drop_gpu: int | None = None,
                    product: str | None = None) -> list[dict[str, Any]]:
    """``drop_gpu``: leave that GPU index out (a GPU the driver does not publish); ``product``: a
    different productName for every GPU (a driver that disagrees with NVML)."""
    cuda = f"{topology.cuda_driver_version // 1000}.{topology.cuda_driver_version % 1000 // 10}"
    devices = []
    for gpu in topology.gpus:
        if gpu.index == drop_gpu:
            continue
        common = {"brand": {"string": "Nvidia"},
                  "architecture": {"string": ARCHITECTURES.get(gpu.compute_capability[0], "Unknown")},
                  "cudaComputeCapability": {"version": _version(".".join(map(str, gpu.compute_capability)))},
                  "driverVersion": {"version": _version(topology.driver_version)},
                  "cudaDriverVersion": {"version": _version(cuda)},
                  "productName": {"string": product or gpu.name}}
        if gpu.mig_mode is not None and gpu.mig_mode.enabled:
            for number, mig in enumerate(gpu.mig_devices):
                devices.append({"name": f"gpu-{gpu.index}-mig-{mig.profile}-{number}",
                                "attributes": {**common, "type": {"string": "mig"},
                                               "parentUUID": {"string": gpu.uuid},
                                               "profile": {"string": mig.profile},
                                               "uuid": {"string": f"MIG-{gpu.uuid[4:]}-{number}"}},
                                "capacity": {"memory": {"value": f"{mig.attributes.memory_mib}Mi"}}})
            continue
        devices.append({"name": f"gpu-{gpu.index}",
                        "attributes": {**common, "type": {"string": "gpu"}, "uuid": {"string": gpu.uuid}},
                        "capacity": {"memory": {"value": _quantity(gpu.memory_mib or 0)}}})
    return [{"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
             "metadata": {"name": f"{node}-gpu.nvidia.com-abc12"},
             "spec": {"driver": "gpu.nvidia.com", "nodeName": node,
                      "pool": {"name": node, "generation": 1, "resourceSliceCount": 1}, "devices": devices}}]
