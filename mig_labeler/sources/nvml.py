"""The only module that calls NVML: turns it into a ``NodeTopology``.

Owns: the NVML call sequence (nvml-mig.md §3–4), every NVML quirk (the ``[current, pending]``
MIG mode list, NOT_SUPPORTED meaning "not MIG-capable", the c_uint from IsMigDeviceHandle, empty
MIG slots, profile ID vs index), and the translation of ``NVMLError_*`` into ``NvmlUnavailable`` /
``NvmlQueryFailed``. The module is injected (``pynvml`` in production, ``FakeNvml`` in tests),
so this exact code runs in both. A half-read topology is never returned.
"""

from __future__ import annotations

import ctypes
import logging
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any

from mig_labeler.errors import NvmlQueryFailed, NvmlUnavailable
from mig_labeler.topology import (
    FABRIC_STATES,
    MIB,
    Gpu,
    GpuFabric,
    MigAttributes,
    MigDevice,
    MigMode,
    NodeTopology,
    mig_profile_name,
)

log = logging.getLogger("mig_labeler")
_NO_SYMBOL = object()  # the binding or the driver lacks a function: try the older one
DISPLAY_DEVICE_NAMES = frozenset({"DGX Display", "NVIDIA DGX Display"})  # skipped, as go-nvlib does

# NVML error codes (nvml.h); literal so that error handling needs nothing from the module.
NOT_SUPPORTED = 3
NO_PERMISSION = 4
INVALID_ARGUMENT = 2
NOT_FOUND = 6
DRIVER_NOT_LOADED = 9
LIBRARY_NOT_FOUND = 12
FUNCTION_NOT_FOUND = 13

_INIT_MESSAGES = {
    LIBRARY_NOT_FOUND: "NVML library libnvidia-ml.so.1 not found (no NVIDIA driver on this machine)",
    DRIVER_NOT_LOADED: "NVIDIA kernel driver is not loaded",
    NO_PERMISSION: "no permission to open the NVIDIA devices",
}


@dataclass
class _ProfileTables:
    """Per-GPU, per-pass lookups: GI profile ID → index, (GI profile ID, CI profile ID) → index.
    Profile info is immutable for the lifetime of a MIG mode (nvml.h), so one scan serves all
    MIG devices of the GPU instead of up to 27 calls each."""

    gi_index_by_id: dict[int, int] = field(default_factory=dict)
    ci_index_by_ids: dict[tuple[int, int], int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _StaticFacts:
    name: str
    total_bytes: int
    compute_capability: tuple[int, int]
    pci_class: int | None
    pci_device_id: int | None = None
    pci_subsystem_id: int | None = None


@dataclass
class ReaderCache:
    """Facts that cannot change while the driver is loaded, kept across passes by GPU UUID: name,
    memory, compute capability, PCI class, and the GI/CI profile tables (immutable for the lifetime
    of a MIG mode, nvml.h). Each pass still re-reads the GPU list, MIG modes, MIG devices and
    instance IDs, which is everything a reconfiguration changes."""

    facts: dict[str, _StaticFacts] = field(default_factory=dict)
    tables: dict[str, _ProfileTables] = field(default_factory=dict)
    legacy_profile_info: bool = False  # the library lacks the versioned profile-info symbols (pre-R470)
    metric_errors: set[tuple[int, int | None]] = field(default_factory=set)  # (GPU, code) said once


class _Reader:
    def __init__(self, nvml: Any, cache: ReaderCache) -> None:
        self.nvml = nvml
        self.cache = cache

    def call(self, name: str, *args: Any, gpu: int | None = None, absent: frozenset[int] = frozenset()) -> Any:
        """Call ``nvml.<name>``; codes in ``absent`` return None, any other NVML error aborts."""
        try:
            return getattr(self.nvml, name)(*args)
        except self.nvml.NVMLError as e:
            if e.value in absent:
                return None
            raise NvmlQueryFailed(name, gpu, e.value, _describe(name, e)) from e

    def fill(self, name: str, *args: Any, gpu: int | None = None, absent: frozenset[int] = frozenset()) -> bool:
        """Call an NVML function that fills a struct: True when it did, False for ``absent`` codes."""
        try:
            getattr(self.nvml, name)(*args)
        except self.nvml.NVMLError as e:
            if e.value in absent:
                return False
            raise NvmlQueryFailed(name, gpu, e.value, _describe(name, e)) from e
        return True

    def topology(self, machine_type: str | None) -> NodeTopology:
        driver = _text(self.call("nvmlSystemGetDriverVersion"))
        if not 2 <= len(driver.split(".")) <= 3:
            raise NvmlQueryFailed(
                "nvmlSystemGetDriverVersion", None, None,
                f"malformed driver version {driver!r}: expected 2 or 3 dot-separated fields",
            )
        cuda = int(self.call("nvmlSystemGetCudaDriverVersion"))
        gpus = []
        for index in range(int(self.call("nvmlDeviceGetCount"))):
            gpu = self.gpu(index)
            if gpu is not None:
                gpus.append(gpu)
        return NodeTopology(driver, cuda, tuple(gpus), machine_type)

    def gpu(self, index: int) -> Gpu | None:
        handle = self.call("nvmlDeviceGetHandleByIndex", index, gpu=index)
        uuid = _text(self.call("nvmlDeviceGetUUID", handle, gpu=index))
        facts = self.cache.facts.get(uuid) or self.static_facts(handle, index, uuid)
        if facts.name in DISPLAY_DEVICE_NAMES:
            return None
        mode = self.call(
            "nvmlDeviceGetMigMode", handle, gpu=index, absent=frozenset({NOT_SUPPORTED, FUNCTION_NOT_FOUND})
        )
        mig_mode = None if mode is None else MigMode(int(mode[0]), int(mode[1]))
        devices: tuple[MigDevice, ...] = ()
        if mig_mode is not None and mig_mode.enabled:
            devices = self.mig_devices(handle, index, uuid, facts.total_bytes)
        return Gpu(
            index=index,
            uuid=uuid,
            name=facts.name,
            memory_mib=facts.total_bytes // MIB or None,
            compute_capability=facts.compute_capability,
            mig_mode=mig_mode,
            pci_class=facts.pci_class,
            mig_devices=devices,
            utilization_percent=self.utilization(handle, index, mig_mode),
            fabric=self.fabric(handle, index),
            pci_device_id=facts.pci_device_id,
            pci_subsystem_id=facts.pci_subsystem_id,
        )

    def fabric(self, handle: Any, index: int) -> GpuFabric | None:
        """nvmlDeviceGetGpuFabricInfoV, else the older nvmlDeviceGetGpuFabricInfo (drivers and
        bindings without the V symbol). NOT_SUPPORTED (no NVLink fabric) is None; any other error
        fails the pass, as in GFD. Read every pass: registration moves on while the node runs."""
        absent = frozenset({NOT_SUPPORTED})
        info = self._fabric_v(handle, index, absent)
        if info is _NO_SYMBOL:
            info = self.nvml.c_nvmlGpuFabricInfo_t()
            if not self.fill("nvmlDeviceGetGpuFabricInfo", handle, ctypes.byref(info), gpu=index,
                             absent=absent | {FUNCTION_NOT_FOUND}):
                return None
        if info is None:
            return None
        state = int(info.state)
        return GpuFabric(cluster_uuid=str(uuidlib.UUID(bytes=bytes(info.clusterUuid))),
                         clique_id=int(info.cliqueId),
                         state=FABRIC_STATES[state] if 0 <= state < len(FABRIC_STATES) else "unknown",
                         status_ok=int(info.status) == 0)

    def _fabric_v(self, handle: Any, index: int, absent: frozenset[int]) -> Any:
        """The v2 struct filled, None when not supported, _NO_SYMBOL when this symbol is missing."""
        make = getattr(self.nvml, "c_nvmlGpuFabricInfoV_t", None)
        if make is None or not hasattr(self.nvml, "nvmlDeviceGetGpuFabricInfoV"):
            return _NO_SYMBOL
        info = make()
        try:
            answered = self.fill("nvmlDeviceGetGpuFabricInfoV", handle, ctypes.byref(info), gpu=index, absent=absent)
        except NvmlQueryFailed as e:
            if e.code == FUNCTION_NOT_FOUND:
                return _NO_SYMBOL
            raise
        return info if answered else None

    def static_facts(self, handle: Any, index: int, uuid: str) -> _StaticFacts:
        name = _text(self.call("nvmlDeviceGetName", handle, gpu=index))
        if name in DISPLAY_DEVICE_NAMES:
            return _StaticFacts(name, 0, (0, 0), None)
        memory = self.call("nvmlDeviceGetMemoryInfo", handle, gpu=index, absent=frozenset({NOT_SUPPORTED}))
        major, minor = self.call("nvmlDeviceGetCudaComputeCapability", handle, gpu=index)
        facts = _StaticFacts(
            name=name,
            total_bytes=int(memory.total) if memory is not None else 0,
            compute_capability=(int(major), int(minor)),
            pci_class=self.pci_class(handle, index),
            **self.pci_ids(handle, index),
        )
        if memory is not None:  # an unanswered memory query is asked again next pass
            self.cache.facts[uuid] = facts
        return facts

    def utilization(self, handle: Any, index: int, mig_mode: MigMode | None) -> int | None:
        """For the utilization metric only; labels never depend on it, so no error of it fails a
        pass: any other code than NOT_SUPPORTED/NO_PERMISSION is logged once per GPU and code."""
        if mig_mode is not None and mig_mode.enabled:
            return None
        try:
            rates = self.call("nvmlDeviceGetUtilizationRates", handle, gpu=index,
                              absent=frozenset({NOT_SUPPORTED, NO_PERMISSION}))
        except NvmlQueryFailed as e:
            if (index, e.code) not in self.cache.metric_errors:
                self.cache.metric_errors.add((index, e.code))
                log.warning("%s; the utilization metric of GPU %d is left out, the labels are not affected", e, index)
            return None
        return None if rates is None else int(rates.gpu)

    def pci_ids(self, handle: Any, index: int) -> dict[str, int | None]:
        """pciDeviceId and pciSubSystemId, for mig-parted's device filters only; labels never
        depend on them. Not readable (or 0): None."""
        info = self.call("nvmlDeviceGetPciInfo", handle, gpu=index,
                         absent=frozenset({NOT_SUPPORTED, FUNCTION_NOT_FOUND, NO_PERMISSION}))
        if info is None:
            return {"pci_device_id": None, "pci_subsystem_id": None}
        return {"pci_device_id": int(info.pciDeviceId) or None, "pci_subsystem_id": int(info.pciSubSystemId) or None}

    def pci_class(self, handle: Any, index: int) -> int | None:
        """From nvmlDeviceGetPciInfoExt (no sysfs or privileges needed). Drivers without it give
        None, which labels gpu.mode=unknown, as GFD does on a read error."""
        info = self.nvml.nvmlPciInfoExt_v1_t()
        info.version = self.nvml.nvmlPciInfoExt_v1
        # By reference: pynvml passes the argument to C as it is, and a struct by value crashed the
        # process with SIGSEGV on a real H100 (nvidia-ml-py 13, driver 580).
        # It fills ``info`` and returns None on success (as the real binding does), so success is
        # "no NVMLError", not a return value.
        answered = self.fill("nvmlDeviceGetPciInfoExt", handle, ctypes.byref(info), gpu=index,
                             absent=frozenset({NOT_SUPPORTED, FUNCTION_NOT_FOUND}))
        if not answered:
            return None
        return (int(info.baseClass) << 16) | (int(info.subClass) << 8)

    def mig_devices(self, handle: Any, index: int, uuid: str, total_bytes: int) -> tuple[MigDevice, ...]:
        if total_bytes <= 0:
            raise NvmlQueryFailed("nvmlDeviceGetMemoryInfo", index, NOT_SUPPORTED,
                                  "parent memory is needed to name MIG profiles")
        tables = self.cache.tables.setdefault(uuid, _ProfileTables())
        if not tables.gi_index_by_id:
            self.scan_gi_profiles(handle, index, tables)
        devices = []
        for slot in range(int(self.call("nvmlDeviceGetMaxMigDeviceCount", handle, gpu=index))):
            mig = self.call(
                "nvmlDeviceGetMigDeviceHandleByIndex", handle, slot, gpu=index,
                absent=frozenset({NOT_FOUND, INVALID_ARGUMENT}),  # empty slot: slots need not be dense
            )
            if mig is not None:
                devices.append(self.mig_device(handle, mig, index, total_bytes, tables))
        return tuple(devices)

    def profile_info(self, name: str, *args: Any, gpu: int) -> Any:
        """A GI or CI profile-info call: the versioned struct (v2, the ``…V`` symbol), else, on a
        library without that symbol (FUNCTION_NOT_FOUND: drivers before R470), the v1 call, as
        nvml-mig.md says and GFD's go-nvml does. Which one works is remembered for the process."""
        absent = frozenset({NOT_SUPPORTED, INVALID_ARGUMENT})
        if not self.cache.legacy_profile_info:
            try:
                return self.call(name, *args, 2, gpu=gpu, absent=absent)
            except NvmlQueryFailed as e:
                if e.code != FUNCTION_NOT_FOUND:
                    raise
                self.cache.legacy_profile_info = True
        return self.call(name, *args, 1, gpu=gpu, absent=absent)

    def scan_gi_profiles(self, handle: Any, index: int, tables: _ProfileTables) -> None:
        for profile_index in range(self.nvml.NVML_GPU_INSTANCE_PROFILE_COUNT):
            info = self.profile_info("nvmlDeviceGetGpuInstanceProfileInfo", handle, profile_index, gpu=index)
            if info is not None:
                tables.gi_index_by_id.setdefault(int(info.id), profile_index)

    def mig_device(self, parent: Any, mig: Any, index: int, total_bytes: int, tables: _ProfileTables) -> MigDevice:
        attributes = _attributes(self.call("nvmlDeviceGetAttributes", mig, gpu=index))
        gi_id = int(self.call("nvmlDeviceGetGpuInstanceId", mig, gpu=index))
        ci_id = int(self.call("nvmlDeviceGetComputeInstanceId", mig, gpu=index))
        gi = self.call("nvmlDeviceGetGpuInstanceById", parent, gi_id, gpu=index)
        gi_profile_id = int(self.call("nvmlGpuInstanceGetInfo", gi, gpu=index).profileId)
        ci = self.call("nvmlGpuInstanceGetComputeInstanceById", gi, ci_id, gpu=index)
        ci_profile_id = int(self.call("nvmlComputeInstanceGetInfo", ci, gpu=index).profileId)
        gi_index = tables.gi_index_by_id.get(gi_profile_id)
        if gi_index is None:
            raise NvmlQueryFailed("nvmlDeviceGetGpuInstanceProfileInfo", index, None,
                                  f"no GPU instance profile has ID {gi_profile_id}")
        ci_index = self.ci_profile_index(gi, gi_profile_id, ci_profile_id, index, tables)
        return MigDevice(
            profile=mig_profile_name(gi_index, ci_index, attributes.memory_mib, total_bytes),
            gpu_instance_id=gi_id,
            compute_instance_id=ci_id,
            attributes=attributes,
        )

    def ci_profile_index(self, gi: Any, gi_profile_id: int, ci_profile_id: int, index: int,
                         tables: _ProfileTables) -> int:
        key = (gi_profile_id, ci_profile_id)
        if key not in tables.ci_index_by_ids:
            for ci_index in range(self.nvml.NVML_COMPUTE_INSTANCE_PROFILE_COUNT):
                for engine in range(self.nvml.NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_COUNT):
                    info = self.profile_info("nvmlGpuInstanceGetComputeInstanceProfileInfo", gi, ci_index, engine,
                                             gpu=index)
                    if info is not None:
                        tables.ci_index_by_ids.setdefault((gi_profile_id, int(info.id)), ci_index)
        if key not in tables.ci_index_by_ids:
            raise NvmlQueryFailed("nvmlGpuInstanceGetComputeInstanceProfileInfo", index, None,
                                  f"no compute instance profile has ID {ci_profile_id}")
        return tables.ci_index_by_ids[key]


def read_topology(nvml: Any, machine_type: str | None = None, cache: ReaderCache | None = None) -> NodeTopology:
    """One complete read: init, query, shutdown. Raises NvmlUnavailable or NvmlQueryFailed.
    Pass the same ``cache`` on every pass to skip re-reading static facts."""
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as e:
        message = _INIT_MESSAGES.get(e.value, f"NVML initialisation failed: {_describe('nvmlInit', e)}")
        raise NvmlUnavailable(message, e.value) from e
    try:
        return _Reader(nvml, cache if cache is not None else ReaderCache()).topology(machine_type)
    finally:
        try:
            nvml.nvmlShutdown()
        except nvml.NVMLError:
            pass  # the read's own result or error matters more than a failed shutdown


def _attributes(raw: Any) -> MigAttributes:
    return MigAttributes(
        memory_mib=int(raw.memorySizeMB),
        multiprocessors=int(raw.multiprocessorCount),
        slices_gi=int(raw.gpuInstanceSliceCount),
        slices_ci=int(raw.computeInstanceSliceCount),
        copy_engines=int(raw.sharedCopyEngineCount),
        decoders=int(raw.sharedDecoderCount),
        encoders=int(raw.sharedEncoderCount),
        jpeg=int(raw.sharedJpegCount),
        ofa=int(raw.sharedOfaCount),
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _describe(call: str, error: Any) -> str:
    text = str(error)
    if error.value == NO_PERMISSION and ("GpuInstance" in call or "MemoryInfo" in call):
        text += " (set NVIDIA_MIG_MONITOR_DEVICES=all in the container for MIG queries)"
    return text

