"""A fake ``/sys`` for the vGPU scan: PCI devices with real-format 256-byte config spaces.

Owns: ``config_space`` (the bytes a PCI function's ``config`` file holds: IDs, status, a
capability list with power-management, PCI Express and vendor-specific capabilities, and for a
vGPU the ``VF`` signature and host driver record) and ``write_fake_sysfs`` (one device per
fixture GPU, at the bus address NVML reports for it, bound to the ``nvidia`` driver, a GPU fallen off
the bus included; plus a non-NVIDIA bridge; the first GPU is the vGPU when the fixture has ``vgpu``).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from mig_labeler.simulated.fixture import FIRST_GPU_BUS, NodeFixture

NVIDIA = 0x10DE
INTEL = 0x8086


def config_space(vendor: int, device: int, vgpu: tuple[str, str] | None = None, size: int = 256) -> bytes:
    """``vgpu``: (host driver version, branch) makes this function a vGPU. ``size`` < 256 is what
    an unprivileged reader sees."""
    config = bytearray(256)
    config[0:2] = vendor.to_bytes(2, "little")
    config[2:4] = device.to_bytes(2, "little")
    config[0x06] = 0x10  # status: capability list present
    config[0x0B] = 0x03  # class: display controller
    config[0x34] = 0x60
    config[0x60:0x62] = bytes([0x01, 0x68])  # power management → next
    config[0x68:0x6A] = bytes([0x10, 0xB4 if vendor == NVIDIA else 0x00])  # PCI Express → vendor-specific
    if vendor == NVIDIA:
        if vgpu is None:  # NVIDIA's own vendor capability, without the vGPU signature
            config[0xB4:0xBC] = bytes([0x09, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00])
        else:
            version, branch = (s.encode().ljust(10, b"\0") for s in vgpu)
            records = bytes([0x01, 0x04, 0xAA, 0xBB]) + bytes([0x00, 22]) + version + branch
            config[0xB4:0xB4 + 5 + len(records)] = bytes([0x09, 0x00, 5 + len(records)]) + b"VF" + records
    return bytes(config[:size])


def write_fake_sysfs(fixture: NodeFixture, root: Path | None = None) -> Path:
    """Write the devices under ``root`` (a fresh temporary directory, removed at exit, if None)."""
    if root is None:
        root = Path(tempfile.mkdtemp(prefix="mig-labeler-sysfs-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
    devices = root / "bus" / "pci" / "devices"
    devices.mkdir(parents=True, exist_ok=True)
    vgpu = (fixture.vgpu.host_driver_version, fixture.vgpu.host_driver_branch) if fixture.vgpu else None
    drivers = root / "bus" / "pci" / "drivers"
    for driver in ("nvidia", "pcieport"):
        (drivers / driver).mkdir(parents=True, exist_ok=True)
    classes = [g.pci_class for g in fixture.gpus] or [0x030200]
    entries: list[tuple[str, int, int, int, tuple[str, str] | None]] = [("0000:00:00.0", INTEL, 0x1237, 0x060000, None)]
    entries += [(f"0000:{FIRST_GPU_BUS + i:02x}:00.0", NVIDIA, 0x20B0, classes[min(i, len(classes) - 1)],
                 vgpu if i == 0 else None) for i in range(max(len(fixture.gpus), 1 if vgpu else 0))]
    for address, vendor, device, klass, record in entries:
        path = devices / address
        path.mkdir(exist_ok=True)
        (path / "vendor").write_text(f"0x{vendor:04x}\n")
        (path / "device").write_text(f"0x{device:04x}\n")
        (path / "class").write_text(f"0x{klass:06x}\n")
        (path / "config").write_bytes(config_space(vendor, device, record))
        if not (path / "driver").is_symlink():  # sysfs: driver → ../../../bus/pci/drivers/<name>
            os.symlink(f"../../../bus/pci/drivers/{'nvidia' if vendor == NVIDIA else 'pcieport'}", path / "driver")
    return root
