"""The only module that calls NVML: turns it into a ``NodeTopology``.

Owns: the NVML call sequence (nvml-mig.md §3–4), every NVML quirk (the ``[current, pending]``
MIG mode list, NOT_SUPPORTED meaning "not MIG-capable", the c_uint from IsMigDeviceHandle, empty
MIG slots, profile ID vs index), and the translation of ``NVMLError_*`` into ``NvmlUnavailable`` /
``NvmlQueryFailed``. A GPU that is gone (``GPU_IS_LOST``) is left out and reported, the
others are read. The module is injected (``pynvml`` in production; in tests and with ``--fixture``
the real ``pynvml`` over a fake library, or ``FakeNvml``), so this exact code runs in all. A
half-read topology is never returned. Calls and the cache: ``nvml_calls``; MIG devices: ``nvml_mig``.
"""

from __future__ import annotations

import ctypes
import logging
import uuid as uuidlib
from typing import Any

from mig_labeler.errors import NvmlQueryFailed, NvmlUnavailable
from mig_labeler.sources.nvml_calls import (
    DRIVER_NOT_LOADED,
    FUNCTION_NOT_FOUND,
    GONE,
    LIBRARY_NOT_FOUND,
    NO_PERMISSION,
    NOT_SUPPORTED,
    UNKNOWN,
    NvmlCalls,
    ReaderCache,
    StaticFacts,
    bus_id,
    describe,
    text,
)
from mig_labeler.sources.nvml_mig import MigReader
from mig_labeler.topology import FABRIC_STATES, MIB, Gpu, GpuFabric, LostGpu, MigDevice, MigMode, NodeTopology

__all__ = ["ReaderCache", "read_topology"]

log = logging.getLogger("mig_labeler")
_NO_SYMBOL = object()  # the binding or the driver lacks a function: try the older one
DISPLAY_DEVICE_NAMES = frozenset({"DGX Display", "NVIDIA DGX Display"})  # skipped, as go-nvlib does

_INIT_MESSAGES = {
    LIBRARY_NOT_FOUND: "NVML library libnvidia-ml.so.1 not found (no NVIDIA driver on this machine)",
    DRIVER_NOT_LOADED: "NVIDIA kernel driver is not loaded",
    NO_PERMISSION: "no permission to open the NVIDIA devices",
}


class _Reader:
    def __init__(self, nvml: Any, cache: ReaderCache) -> None:
        self.calls = NvmlCalls(nvml)
        self.cache = cache
        self.mig = MigReader(self.calls, cache)

    def topology(self, machine_type: str | None) -> NodeTopology:
        driver = text(self.calls.call("nvmlSystemGetDriverVersion"))
        if not 2 <= len(driver.split(".")) <= 3:
            raise NvmlQueryFailed(
                "nvmlSystemGetDriverVersion", None, None,
                f"malformed driver version {driver!r}: expected 2 or 3 dot-separated fields",
            )
        cuda = int(self.calls.call("nvmlSystemGetCudaDriverVersion"))
        gpus: list[Gpu] = []
        lost: list[LostGpu] = []
        bus_ids: list[str | None] = []
        for index in range(int(self.calls.call("nvmlDeviceGetCount"))):
            gpu = self.isolated(index)
            if isinstance(gpu, LostGpu):
                lost.append(gpu)
                bus_ids.append(gpu.pci_bus_id)
                continue
            bus_ids.append(self.cache.seen[index][2])
            if gpu is not None:
                gpus.append(gpu)
        known = None if None in bus_ids else frozenset(b for b in bus_ids if b is not None)
        return NodeTopology(driver, cuda, tuple(gpus), machine_type, lost=tuple(lost), nvml_bus_ids=known)

    def isolated(self, index: int) -> Gpu | LostGpu | None:
        """One GPU, or what is known of it when it is gone: GPU_IS_LOST or RESET_REQUIRED from any
        of its calls, or UNKNOWN twice in a row (a single UNKNOWN is read again at once, so one
        glitch never drops a GPU from the labels). Any other error fails the pass, as in GFD."""
        for attempt in (1, 2):
            try:
                return self.gpu(index)
            except NvmlQueryFailed as e:
                if e.gpu != index or (e.code not in GONE and e.code != UNKNOWN):
                    raise
                if e.code in GONE or attempt == 2:
                    return self.lost_gpu(index, str(e))
        raise AssertionError("unreachable: the second attempt returns or raises")

    def lost_gpu(self, index: int, error: str) -> LostGpu:
        """What this process last read of the GPU, else what it still answers (each call may fail)."""
        if index in self.cache.seen:
            uuid, name, bus = self.cache.seen[index]
            return LostGpu(index, error, uuid, name, bus)

        def quietly(call: str, *args: Any) -> Any:
            try:
                return getattr(self.calls.nvml, call)(*args)
            except self.calls.nvml.NVMLError:
                return None

        handle = quietly("nvmlDeviceGetHandleByIndex", index)
        if handle is None:
            return LostGpu(index, error)
        uuid, name, pci = (quietly(c, handle) for c in ("nvmlDeviceGetUUID", "nvmlDeviceGetName",
                                                          "nvmlDeviceGetPciInfo"))
        return LostGpu(index, error, None if uuid is None else text(uuid), None if name is None else text(name),
                       None if pci is None else bus_id(pci.busId))

    def gpu(self, index: int) -> Gpu | None:
        handle = self.calls.call("nvmlDeviceGetHandleByIndex", index, gpu=index)
        uuid = text(self.calls.call("nvmlDeviceGetUUID", handle, gpu=index))
        facts = self.cache.facts.get(uuid) or self.static_facts(handle, index, uuid)
        self.cache.seen[index] = (uuid, facts.name, facts.pci_bus_id)
        if facts.name in DISPLAY_DEVICE_NAMES:
            return None
        mode = self.calls.call(
            "nvmlDeviceGetMigMode", handle, gpu=index, absent=frozenset({NOT_SUPPORTED, FUNCTION_NOT_FOUND})
        )
        mig_mode = None if mode is None else MigMode(int(mode[0]), int(mode[1]))
        devices: tuple[MigDevice, ...] = ()
        if mig_mode is not None and mig_mode.enabled:
            devices = self.mig.devices(handle, index, uuid, facts.total_bytes)
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
            pci_bus_id=facts.pci_bus_id,
        )

    def fabric(self, handle: Any, index: int) -> GpuFabric | None:
        """nvmlDeviceGetGpuFabricInfoV, else the older nvmlDeviceGetGpuFabricInfo (drivers and
        bindings without the V symbol). NOT_SUPPORTED (no NVLink fabric) is None; any other error
        fails the pass, as in GFD. Read every pass: registration moves on while the node runs."""
        absent = frozenset({NOT_SUPPORTED})
        info = self._fabric_v(handle, index, absent)
        if info is _NO_SYMBOL:
            info = self.calls.nvml.c_nvmlGpuFabricInfo_t()
            if not self.calls.fill("nvmlDeviceGetGpuFabricInfo", handle, ctypes.byref(info), gpu=index,
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
        make = getattr(self.calls.nvml, "c_nvmlGpuFabricInfoV_t", None)
        if make is None or not hasattr(self.calls.nvml, "nvmlDeviceGetGpuFabricInfoV"):
            return _NO_SYMBOL
        info = make()
        try:
            answered = self.calls.fill("nvmlDeviceGetGpuFabricInfoV", handle, ctypes.byref(info), gpu=index,
                                       absent=absent)
        except NvmlQueryFailed as e:
            if e.code == FUNCTION_NOT_FOUND:
                return _NO_SYMBOL
            raise
        return info if answered else None

    def static_facts(self, handle: Any, index: int, uuid: str) -> StaticFacts:
        name = text(self.calls.call("nvmlDeviceGetName", handle, gpu=index))
        if name in DISPLAY_DEVICE_NAMES:
            return StaticFacts(name, 0, (0, 0), None, pci_bus_id=self.pci_ids(handle, index)["pci_bus_id"])
        memory = self.calls.call("nvmlDeviceGetMemoryInfo", handle, gpu=index, absent=frozenset({NOT_SUPPORTED}))
        major, minor = self.calls.call("nvmlDeviceGetCudaComputeCapability", handle, gpu=index)
        facts = StaticFacts(
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
            rates = self.calls.call("nvmlDeviceGetUtilizationRates", handle, gpu=index,
                              absent=frozenset({NOT_SUPPORTED, NO_PERMISSION}))
        except NvmlQueryFailed as e:
            if (index, e.code) not in self.cache.metric_errors:
                self.cache.metric_errors.add((index, e.code))
                log.warning("%s; the utilization metric of GPU %d is left out, the labels are not affected", e, index)
            return None
        return None if rates is None else int(rates.gpu)

    def pci_ids(self, handle: Any, index: int) -> dict[str, Any]:
        """pciDeviceId and pciSubSystemId (for mig-parted's device filters) and the bus ID (to
        compare with the PCI bus); labels never depend on them. Not readable (or 0): None."""
        info = self.calls.call("nvmlDeviceGetPciInfo", handle, gpu=index,
                         absent=frozenset({NOT_SUPPORTED, FUNCTION_NOT_FOUND, NO_PERMISSION}))
        if info is None:
            return {"pci_device_id": None, "pci_subsystem_id": None, "pci_bus_id": None}
        return {"pci_device_id": int(info.pciDeviceId) or None, "pci_subsystem_id": int(info.pciSubSystemId) or None,
                "pci_bus_id": bus_id(info.busId)}

    def pci_class(self, handle: Any, index: int) -> int | None:
        """From nvmlDeviceGetPciInfoExt (no sysfs or privileges needed). Drivers without it give
        None, which labels gpu.mode=unknown, as GFD does on a read error."""
        info = self.calls.nvml.nvmlPciInfoExt_v1_t()
        info.version = self.calls.nvml.nvmlPciInfoExt_v1
        # By reference: pynvml passes the argument to C as it is, and a struct by value crashed the
        # process with SIGSEGV on a real H100 (nvidia-ml-py 13, driver 580).
        # It fills ``info`` and returns None on success (as the real binding does), so success is
        # "no NVMLError", not a return value.
        answered = self.calls.fill("nvmlDeviceGetPciInfoExt", handle, ctypes.byref(info), gpu=index,
                             absent=frozenset({NOT_SUPPORTED, FUNCTION_NOT_FOUND}))
        if not answered:
            return None
        return (int(info.baseClass) << 16) | (int(info.subClass) << 8)


def read_topology(nvml: Any, machine_type: str | None = None, cache: ReaderCache | None = None) -> NodeTopology:
    """One complete read: init, query, shutdown. Raises NvmlUnavailable or NvmlQueryFailed.
    Pass the same ``cache`` on every pass to skip re-reading static facts."""
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as e:
        message = _INIT_MESSAGES.get(e.value, f"NVML initialisation failed: {describe('nvmlInit', e)}")
        raise NvmlUnavailable(message, e.value) from e
    try:
        return _Reader(nvml, cache if cache is not None else ReaderCache()).topology(machine_type)
    finally:
        try:
            nvml.nvmlShutdown()
        except nvml.NVMLError:
            pass  # the read's own result or error matters more than a failed shutdown
