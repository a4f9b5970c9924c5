"""NVML calls with our error handling, and what the reader keeps across passes.

Owns: ``NvmlCalls`` (an NVML function called with the codes that mean "absent" for it, every other
``NVMLError`` turned into ``NvmlQueryFailed`` naming the call and GPU), NVML's error codes (literal,
so that error handling needs nothing from the module), ``ReaderCache`` and the text helpers. Used by
``sources.nvml`` and ``sources.nvml_mig``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mig_labeler.errors import NvmlQueryFailed

# NVML error codes (nvml.h); literal so that error handling needs nothing from the module.
NOT_SUPPORTED = 3
NO_PERMISSION = 4
INVALID_ARGUMENT = 2
NOT_FOUND = 6
DRIVER_NOT_LOADED = 9
LIBRARY_NOT_FOUND = 12
FUNCTION_NOT_FOUND = 13
GPU_IS_LOST = 15
RESET_REQUIRED = 16
UNKNOWN = 999
GONE = frozenset({GPU_IS_LOST, RESET_REQUIRED})  # the device is gone until a reset; UNKNOWN twice in a row too


@dataclass
class ProfileTables:
    """Per-GPU, per-pass lookups: GI profile ID → index, (GI profile ID, CI profile ID) → index.
    Profile info is immutable for the lifetime of a MIG mode (nvml.h), so one scan serves all
    MIG devices of the GPU instead of up to 27 calls each."""

    gi_index_by_id: dict[int, int] = field(default_factory=dict)
    ci_index_by_ids: dict[tuple[int, int], int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StaticFacts:
    name: str
    total_bytes: int
    compute_capability: tuple[int, int]
    pci_class: int | None
    pci_device_id: int | None = None
    pci_subsystem_id: int | None = None
    pci_bus_id: str | None = None


@dataclass
class ReaderCache:
    """Facts that cannot change while the driver is loaded, kept across passes by GPU UUID: name,
    memory, compute capability, PCI class, and the GI/CI profile tables (immutable for the lifetime
    of a MIG mode, nvml.h). Each pass still re-reads the GPU list, MIG modes, MIG devices and
    instance IDs, which is everything a reconfiguration changes."""

    facts: dict[str, StaticFacts] = field(default_factory=dict)
    tables: dict[str, ProfileTables] = field(default_factory=dict)
    legacy_profile_info: bool = False  # the library lacks the versioned profile-info symbols (pre-R470)
    metric_errors: set[tuple[int, int | None]] = field(default_factory=set)  # (GPU, code) said once
    seen: dict[int, tuple[str, str, str | None]] = field(default_factory=dict)  # index → UUID, name, bus ID


class NvmlCalls:
    def __init__(self, nvml: Any) -> None:
        self.nvml = nvml

    def call(self, name: str, *args: Any, gpu: int | None = None, absent: frozenset[int] = frozenset()) -> Any:
        """Call ``nvml.<name>``; codes in ``absent`` return None, any other NVML error aborts."""
        try:
            return getattr(self.nvml, name)(*args)
        except self.nvml.NVMLError as e:
            if e.value in absent:
                return None
            raise NvmlQueryFailed(name, gpu, e.value, describe(name, e)) from e

    def fill(self, name: str, *args: Any, gpu: int | None = None, absent: frozenset[int] = frozenset()) -> bool:
        """Call an NVML function that fills a struct: True when it did, False for ``absent`` codes."""
        try:
            getattr(self.nvml, name)(*args)
        except self.nvml.NVMLError as e:
            if e.value in absent:
                return False
            raise NvmlQueryFailed(name, gpu, e.value, describe(name, e)) from e
        return True


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def bus_id(raw: Any) -> str | None:
    """NVML's ``00000000:17:00.0`` in the kernel's spelling (``0000:17:00.0``), None if malformed."""
    spelled = text(raw).strip().lower()
    domain, _, rest = spelled.partition(":")
    try:
        return f"{int(domain, 16):04x}:{rest}" if rest else None
    except ValueError:
        return None


def describe(call: str, error: Any) -> str:
    text = str(error)
    if error.value == NO_PERMISSION and ("GpuInstance" in call or "MemoryInfo" in call):
        text += " (set NVIDIA_MIG_MONITOR_DEVICES=all in the container for MIG queries)"
    return text
