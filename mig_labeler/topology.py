"""The node's GPU topology as plain, frozen data, and MIG profile naming.

Owns: ``NodeTopology`` → ``Gpu`` → ``MigDevice`` and ``mig_profile_name``, the pure port of
go-nvlib's ``NewMigProfile(...).String()``. Must not import pynvml, read files, the clock or the
environment: the NVML reader builds these objects, the label rules read them.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1 << 20
GIB = 1 << 30

# NVML_GPU_INSTANCE_PROFILE_* index → (G slices, suffix). Values are pynvml's constants; kept
# here as literals so this module stays pure. 3_SLICE_GFX (0x11) is handled although go-nvlib
# does not handle it (nvml-mig.md §5).
GI_PROFILE_INDEX = {
    0x0: (1, ""),  # 1_SLICE
    0x1: (2, ""),  # 2_SLICE
    0x2: (3, ""),  # 3_SLICE
    0x3: (4, ""),  # 4_SLICE
    0x4: (7, ""),  # 7_SLICE
    0x5: (8, ""),  # 8_SLICE
    0x6: (6, ""),  # 6_SLICE
    0x7: (1, "+me"),  # 1_SLICE_REV1
    0x8: (2, "+me"),  # 2_SLICE_REV1
    0x9: (1, ""),  # 1_SLICE_REV2: the double-memory 1-slice profile, told apart by GB only
    0xA: (1, "+gfx"),  # 1_SLICE_GFX
    0xB: (2, "+gfx"),  # 2_SLICE_GFX
    0xC: (4, "+gfx"),  # 4_SLICE_GFX
    0xD: (1, "-me"),  # 1_SLICE_NO_ME
    0xE: (2, "-me"),  # 2_SLICE_NO_ME
    0xF: (1, "+me.all"),  # 1_SLICE_ALL_ME
    0x10: (2, "+me.all"),  # 2_SLICE_ALL_ME
    0x11: (3, "+gfx"),  # 3_SLICE_GFX
}

# NVML_COMPUTE_INSTANCE_PROFILE_* index → C slices.
CI_PROFILE_INDEX = {0x0: 1, 0x1: 2, 0x2: 3, 0x3: 4, 0x4: 7, 0x5: 8, 0x6: 6, 0x7: 1, 0x8: 7}
# The plain CI profile index for C slices: the compute instance that spans a whole G-slice GI.
CI_INDEX_FOR_SLICES = {1: 0x0, 2: 0x1, 3: 0x2, 4: 0x3, 7: 0x4, 8: 0x5, 6: 0x6}

MIG_DISABLE = 0
MIG_ENABLE = 1


@dataclass(frozen=True, slots=True)
class MigAttributes:
    """``nvmlDeviceGetAttributes`` of a MIG device (memory in MiB, as NVML reports it)."""

    memory_mib: int
    multiprocessors: int
    slices_gi: int
    slices_ci: int
    copy_engines: int
    decoders: int
    encoders: int
    jpeg: int
    ofa: int


@dataclass(frozen=True, slots=True)
class MigDevice:
    profile: str  # go-nvlib spelling, e.g. "1g.10gb+me" (the label rules apply + → .)
    gpu_instance_id: int
    compute_instance_id: int
    attributes: MigAttributes


@dataclass(frozen=True, slots=True)
class MigMode:
    current: int
    pending: int

    @property
    def enabled(self) -> bool:
        return self.current == MIG_ENABLE

    @property
    def change_pending(self) -> bool:
        return self.current != self.pending


@dataclass(frozen=True, slots=True)
class Gpu:
    index: int
    uuid: str
    name: str  # NVML name exactly as reported, e.g. "NVIDIA A100-SXM4-40GB"
    memory_mib: int | None  # None: NVML could not report it (GFD omits the label)
    compute_capability: tuple[int, int]
    mig_mode: MigMode | None  # None: not MIG-capable (NOT_SUPPORTED / FUNCTION_NOT_FOUND)
    pci_class: int | None  # e.g. 0x030200; None: not readable
    mig_devices: tuple[MigDevice, ...] = ()
    utilization_percent: int | None = None  # full GPUs only (NVML: not supported with MIG enabled)
    fabric: GpuFabric | None = None  # None: NVML has no fabric info for this GPU (NOT_SUPPORTED)
    pci_device_id: int | None = None  # NVML's pciDeviceId (0x20B010DE), what mig-parted's device-filter matches
    pci_subsystem_id: int | None = None  # NVML's pciSubSystemId (the board), for a filter that names one
    pci_bus_id: str | None = None  # "0000:17:00.0" (sysfs spelling); None: NVML did not say

    @property
    def mig_capable(self) -> bool:
        return self.mig_mode is not None

    @property
    def mig_enabled(self) -> bool:
        return self.mig_mode is not None and self.mig_mode.enabled


# NVML_GPU_FABRIC_STATE_* in value order: the reader names NVML's number, the fixture format uses the names.
FABRIC_STATES = ("not_supported", "not_started", "in_progress", "completed")


@dataclass(frozen=True, slots=True)
class GpuFabric:
    """NVML GPU fabric info (NVLink domain, for IMEX cliques on GB200 NVL72 and HGX B200)."""

    cluster_uuid: str  # canonical lowercase hyphenated UUID; all zeros when not assigned
    clique_id: int
    state: str  # not_supported | not_started | in_progress | completed
    status_ok: bool  # the fabric manager's status for this GPU was NVML_SUCCESS

    @property
    def attached(self) -> bool:
        """GFD's rule: registration completed, status success, a non-zero cluster UUID."""
        return self.state == "completed" and self.status_ok and self.cluster_uuid.strip("0-") != ""


@dataclass(frozen=True, slots=True)
class Vgpu:
    """What the PCI config space says about vGPU: is this node a VM with a vGPU, and the host's
    vGPU manager version and branch (from the last vGPU device found, as GFD)."""

    present: bool
    host_driver_version: str = ""
    host_driver_branch: str = ""


@dataclass(frozen=True, slots=True)
class LostGpu:
    """A GPU NVML enumerates that stopped answering (GPU_IS_LOST, RESET_REQUIRED, or UNKNOWN twice
    in a row): left out of the pass, reported. What is known of it may be None."""

    index: int
    error: str
    uuid: str | None = None
    name: str | None = None
    pci_bus_id: str | None = None

    def describe(self) -> str:
        known = [f"UUID {self.uuid}" if self.uuid else "", f"PCI {self.pci_bus_id}" if self.pci_bus_id else ""]
        return f"GPU {self.index}" + (f" ({', '.join(k for k in known if k)})" if any(known) else "")


@dataclass(frozen=True, slots=True)
class NodeTopology:
    driver_version: str  # "550.54.15": two or three dot-separated fields (checked by the reader)
    cuda_driver_version: int  # 12040 → CUDA 12.4
    gpus: tuple[Gpu, ...]  # the GPUs that answer (display devices skipped)
    machine_type: str | None = None  # DMI product name; None: unreadable
    vgpu: Vgpu | None = None  # None: the PCI devices could not be scanned, so no vgpu.* labels
    lost: tuple[LostGpu, ...] = ()  # enumerated by NVML, not answering: left out of every label but gpu.count
    nvml_bus_ids: frozenset[str] | None = None  # every device NVML enumerates; None: some bus ID unknown
    missing_from_nvml: tuple[str, ...] = ()  # NVIDIA GPUs on the PCI bus that NVML does not enumerate

    @property
    def mig_devices(self) -> tuple[MigDevice, ...]:
        return tuple(m for g in self.gpus if g.mig_enabled for m in g.mig_devices)

    def layout(self) -> str:
        """The node's GPU layout in one short phrase, for Events and log lines: MIG devices per
        profile (most first), full GPUs, MIG-enabled GPUs without devices. ``4×3g.20gb, 8×1g.5gb,
        2 full GPUs``."""
        counts: dict[str, int] = {}
        for device in self.mig_devices:
            counts[device.profile] = counts.get(device.profile, 0) + 1
        parts = [f"{n}×{profile}" for profile, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]
        full = sum(1 for g in self.gpus if not g.mig_enabled)
        empty = sum(1 for g in self.gpus if g.mig_enabled and not g.mig_devices)
        if full:
            parts.append(f"{full} full GPU{'s' if full != 1 else ''}")
        if empty:
            parts.append(f"{empty} MIG-enabled GPU{'s' if empty != 1 else ''} without MIG devices")
        return ", ".join(parts) or "no GPUs"


def mig_memory_gb(memory_mib: int, parent_total_bytes: int) -> int:
    """go-nvlib's GB rounding in integers: eighths rounded up, times whole GiB rounded up,
    then rounded half away from zero. Python's round() would give H200 3g as 70gb, not 71gb."""
    eighths = -(-8 * memory_mib * MIB // parent_total_bytes)
    total_gb = -(-parent_total_bytes // GIB)
    return (eighths * total_gb + 4) // 8


def mig_profile_name(gi_profile_index: int, ci_profile_index: int, memory_mib: int, parent_total_bytes: int) -> str:
    """Name a MIG profile from NVML facts: ``1g.5gb``, ``1c.3g.20gb``, ``1g.24gb+me.all``."""
    if gi_profile_index not in GI_PROFILE_INDEX:
        raise ValueError(f"unknown GPU instance profile index {gi_profile_index}")
    if ci_profile_index not in CI_PROFILE_INDEX:
        raise ValueError(f"unknown compute instance profile index {ci_profile_index}")
    if parent_total_bytes <= 0:
        raise ValueError("parent GPU memory must be positive to name a MIG profile")
    g, suffix = GI_PROFILE_INDEX[gi_profile_index]
    c = CI_PROFILE_INDEX[ci_profile_index]
    gb = mig_memory_gb(memory_mib, parent_total_bytes)
    base = f"{g}g.{gb}gb" if c == g else f"{c}c.{g}g.{gb}gb"
    return base + suffix
