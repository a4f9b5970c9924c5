"""``nvidia.com/vgpu.*``: is this node a VM with an NVIDIA vGPU, and which vGPU manager runs on
the host (gfd-reference §1.11). Pure: the scan result arrives in ``NodeTopology.vgpu``.
"""

from __future__ import annotations

from mig_labeler.config import Config
from mig_labeler.topology import NodeTopology

PRESENT = "nvidia.com/vgpu.present"
HOST_DRIVER_VERSION = "nvidia.com/vgpu.host-driver-version"
HOST_DRIVER_BRANCH = "nvidia.com/vgpu.host-driver-branch"


def vgpu_labels(topology: NodeTopology, config: Config) -> dict[str, str]:
    """Nothing when the scan failed (GFD never claims ``false`` it could not check); the host
    driver labels only when a vGPU device exists."""
    vgpu = topology.vgpu
    if vgpu is None:
        return {}
    if not vgpu.present:
        return {PRESENT: "false"}
    return {PRESENT: "true", HOST_DRIVER_VERSION: vgpu.host_driver_version,
            HOST_DRIVER_BRANCH: vgpu.host_driver_branch}
