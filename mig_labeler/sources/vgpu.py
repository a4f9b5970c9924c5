"""vGPU detection from PCI config space, as GFD's ``internal/vgpu`` does (gfd-reference §1.11).

Owns: scanning ``<root>/bus/pci/devices/*`` for NVIDIA devices (vendor ``0x10de``), walking each
one's capability list to the vendor-specific capability (id 0x09), recognising a vGPU by the
signature ``VF`` at bytes 3-4, and reading the host driver record (id 0: 10 bytes of version, 10
of branch, NUL-trimmed). ``root`` is ``/sys`` in production; tests and ``--fixture`` point it at
a directory of files in the same format.

Outcomes: ``Vgpu(present=False)`` when no device is a vGPU; ``None`` when the scan itself fails
(no sysfs, or fewer than 256 config bytes because the container is not privileged): GFD then
omits every vgpu.* label rather than claim ``false``. A vGPU whose record is malformed fails the
pass (``VgpuError``), as in GFD.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mig_labeler.errors import MigLabelerError
from mig_labeler.topology import Vgpu

log = logging.getLogger("mig_labeler")

NVIDIA_VENDOR = "0x10de"
CONFIG_SIZE = 256
STATUS = 0x06
STATUS_CAPABILITY_LIST = 0x10
CAPABILITY_LIST = 0x34
VENDOR_SPECIFIC = 0x09
RECORD_START = 5
VERSION_LENGTH = 10
BRANCH_LENGTH = 10


class VgpuError(MigLabelerError):
    """A vGPU device's capability records are malformed (the pass fails, as in GFD)."""


class ScanFailed(Exception):
    """The PCI devices cannot be read: no vgpu.* labels at all."""


def read_vgpu(root: str) -> Vgpu | None:
    devices = Path(root) / "bus" / "pci" / "devices"
    try:
        found = [(d.name, capability) for d in sorted(devices.iterdir()) if _vendor(d) == NVIDIA_VENDOR
                 for capability in [vendor_capability(_config(d))] if is_vgpu(capability)]
    except (OSError, ScanFailed) as e:
        log.debug("vGPU scan of %s failed (%s); no vgpu.* labels", devices, e)
        return None
    if not found:
        return Vgpu(present=False)
    address, capability = found[-1]  # GFD: with several vGPUs, the last one wins
    version, branch = host_driver(capability, address)
    return Vgpu(present=True, host_driver_version=version, host_driver_branch=branch)


def _vendor(device: Path) -> str:
    return (device / "vendor").read_text().strip().lower()


def _config(device: Path) -> bytes:
    data = (device / "config").read_bytes()
    if len(data) < CONFIG_SIZE:  # an unprivileged container sees only the first 64 bytes
        raise ScanFailed(f"{device.name}/config has {len(data)} bytes, not {CONFIG_SIZE} (not privileged?)")
    return data[:CONFIG_SIZE]


def vendor_capability(config: bytes) -> bytes:
    """The vendor-specific capability's bytes, or b"" when there is none. A looping chain ends."""
    if not config[STATUS] & STATUS_CAPABILITY_LIST:
        return b""
    seen: set[int] = set()
    position = config[CAPABILITY_LIST]
    while position and position not in seen and position + 2 < len(config):
        seen.add(position)
        capability_id, following, length = config[position], config[position + 1], config[position + 2]
        if capability_id == 0xFF:
            break
        if capability_id == VENDOR_SPECIFIC:
            return config[position:position + length]
        position = following
    return b""


def is_vgpu(capability: bytes) -> bool:
    return len(capability) >= RECORD_START and capability[3:5] == b"VF"


def host_driver(capability: bytes, address: str) -> tuple[str, str]:
    """Walk the records (id, length, payload) from offset 5 to the host driver record (id 0)."""
    position = RECORD_START
    while True:
        if position >= len(capability):
            raise VgpuError(f"vGPU {address}: no host driver record in the vendor capability")
        if capability[position] == 0:
            break
        if len(capability) - position < 2 or not 2 <= capability[position + 1] <= len(capability) - position:
            raise VgpuError(f"vGPU {address}: malformed vendor capability record at offset {position}")
        position += capability[position + 1]
    if len(capability) - position < 2:
        raise VgpuError(f"vGPU {address}: truncated host driver record")
    length = capability[position + 1]
    if not 2 + VERSION_LENGTH + BRANCH_LENGTH <= length <= len(capability) - position:
        raise VgpuError(f"vGPU {address}: host driver record has length {length}")
    payload = capability[position + 2:position + 2 + VERSION_LENGTH + BRANCH_LENGTH]
    return (payload[:VERSION_LENGTH].strip(b"\0").decode(errors="replace"),
            payload[VERSION_LENGTH:].strip(b"\0").decode(errors="replace"))
