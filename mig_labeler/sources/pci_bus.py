"""The NVIDIA GPUs the PCI bus shows, to compare with what NVML enumerates.

Owns: ``gpus_on_bus``: the devices under ``<root>/bus/pci/devices`` with vendor ``0x10de``, class
VGA (``0x0300xx``) or 3D controller (``0x0302xx``) and bound to the ``nvidia`` driver, by address
(``0000:17:00.0``). A GPU bound to another driver (``vfio-pci`` for a VM) is not NVML's to see and is
left out; an NVSwitch is a bridge (``0x0680``) and never counted. ``None`` when the directory cannot
be listed (no host ``/sys`` in the container): then nothing is compared. ``missing_from_nvml``: the
addresses on the bus that NVML does not enumerate (a GPU fallen off the bus leaves NVML's list and
its count drops, while the bus still shows it).
"""

from __future__ import annotations

import os
from pathlib import Path

NVIDIA_VENDOR = "0x10de"
GPU_CLASSES = ("0x0300", "0x0302")  # VGA compatible, 3D controller; the programming interface byte may vary


def gpus_on_bus(root: str) -> frozenset[str] | None:
    devices = Path(root) / "bus" / "pci" / "devices"
    try:
        entries = list(os.scandir(devices))
    except OSError:
        return None
    found = set()
    for entry in entries:
        path = Path(entry.path)
        try:  # the vendor first: most devices on a bus are not NVIDIA's, one read each is enough
            if (path / "vendor").read_text().strip().lower() != NVIDIA_VENDOR:
                continue
            if not (path / "class").read_text().strip().lower().startswith(GPU_CLASSES):
                continue
            driver = os.path.basename(os.readlink(path / "driver"))
        except OSError:  # not readable, or bound to no driver: not one NVML can see
            continue
        if driver == "nvidia":
            found.add(entry.name.lower())
    return frozenset(found)


def missing_from_nvml(on_bus: frozenset[str] | None, nvml_bus_ids: frozenset[str] | None) -> tuple[str, ...]:
    """Addresses on the bus that NVML does not list; nothing when either side is unknown."""
    if on_bus is None or nvml_bus_ids is None:
        return ()
    return tuple(sorted(on_bus - nvml_bus_ids))
