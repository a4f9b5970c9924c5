"""A fake ``pynvml`` module that answers NVML calls from a node fixture.

Owns: pynvml's function names, return structs and ``NVMLError`` codes for everything the reader
calls, answered from ``fixture.NodeFixture`` and the real GPU model table. It takes the binding
(a ``pynvml`` module) only for constants, struct classes and error classes. It enforces what real
NVML enforces (calls before ``nvmlInit`` fail, parent-only calls reject MIG handles and vice
versa, empty MIG slots are NOT_FOUND), reloads its fixture file on every ``nvmlInit`` (how tests
simulate a MIG reconfiguration), and counts calls (for the benchmarks). Used by tests, ``--fixture``,
``make demo`` and ``make bench``.
"""

from __future__ import annotations

import ctypes
import importlib
import os
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

from mig_labeler.errors import FixtureError
from mig_labeler.simulated.fixture import FixtureGpu, FixtureMigDevice, NodeFixture, load_fixture, resolve_fixture
from mig_labeler.simulated.nvml_structs import (
    ComputeInstance,
    GpuHandle,
    GpuInstance,
    MigHandle,
    by_reference,
    ci_profile_info,
    error_code,
    gi_id,
    gi_profile_info,
    symbol_missing,
)

MIB = 1 << 20


class FakeNvml:
    """Pass an instance wherever the ``pynvml`` module is expected."""

    def __init__(self, source: str | Path | NodeFixture, nvml: ModuleType | None = None) -> None:
        """A path or bundled name is resolved and loaded now, so a bad fixture is refused before
        the first pass (FixtureError, exit 2), and later reloads follow the same file. ``nvml`` is
        the binding whose constants, structs and ``NVMLError`` the answers use: the global
        ``pynvml`` unless given (``FakeNvmlLibrary`` gives its own copy, so a process that labels
        from a fixture loads the binding once)."""
        self.nvml = nvml if nvml is not None else importlib.import_module("pynvml")
        self._path = None if isinstance(source, NodeFixture) else resolve_fixture(source)
        self._fixture = _checked(source, self.nvml) if isinstance(source, NodeFixture) else None
        self._stamp: tuple[float, int] | None = None
        self._visible: tuple[FixtureGpu, ...] = ()
        self._init_count = 0
        self.calls: Counter[str] = Counter()
        self._reload()

    def __getattr__(self, name: str) -> Any:
        # Constants, struct classes and NVMLError_* come from the binding.
        if name == "nvml":  # not set yet: never recurse
            raise AttributeError(name)
        return getattr(self.nvml, name)

    # -- lifecycle ------------------------------------------------------------------------
    def nvmlInit(self) -> None:
        self.nvmlInitWithFlags(0)

    def nvmlInitWithFlags(self, flags: int) -> None:
        self.calls["nvmlInit"] += 1
        self._reload()
        if self.fixture.init_error:
            raise self.nvml.NVMLError(error_code(self.nvml, self.fixture.init_error))
        self._init_count += 1

    def nvmlShutdown(self) -> None:
        self.calls["nvmlShutdown"] += 1
        self._require_init()
        self._init_count -= 1

    @property
    def fixture(self) -> NodeFixture:
        assert self._fixture is not None
        return self._fixture

    def _reload(self) -> None:
        if self._path is not None:
            try:
                st = os.stat(self._path)
                stamp: tuple[float, int] | None = (st.st_mtime, st.st_size)
            except OSError:
                stamp = None
            if stamp is not None and stamp == self._stamp and self._fixture is not None:
                return  # unchanged: what NVML enumerates is too
            self._fixture = _checked(load_fixture(self._path), self.nvml, self._path)
            self._stamp = stamp
        self._visible = tuple(g for g in self.fixture.gpus if not g.off_bus)  # what NVML enumerates

    def _require_init(self) -> None:
        if self._init_count <= 0:
            raise self.nvml.NVMLError(self.nvml.NVML_ERROR_UNINITIALIZED)

    def _enter(self, call: str, gpu: int | None = None) -> None:
        self.calls[call] += 1
        self._require_init()
        for fault in self.fixture.faults:
            if fault.fires(call, gpu, self.calls["nvmlInit"]):
                raise self.nvml.NVMLError(error_code(self.nvml, fault.error))

    # -- handle helpers -------------------------------------------------------------------
    def _symbol(self, name: str) -> None:
        """The binding looks ``name`` up in the library (pynvml's ``_nvmlGetFunctionPointer``): an
        older library that lacks it answers FUNCTION_NOT_FOUND, as the real binding raises it."""
        if symbol_missing(self.fixture, name):
            raise self.nvml.NVMLError(self.nvml.NVML_ERROR_FUNCTION_NOT_FOUND)

    def _gpu(self, handle: Any) -> FixtureGpu:
        if not isinstance(handle, GpuHandle):
            raise self.nvml.NVMLError(self.nvml.NVML_ERROR_INVALID_ARGUMENT)
        return self._visible[handle.index]

    def _mig(self, handle: Any) -> FixtureMigDevice:
        if not isinstance(handle, MigHandle):
            raise self.nvml.NVMLError(self.nvml.NVML_ERROR_INVALID_ARGUMENT)
        return self._visible[handle.gpu].mig_devices[handle.slot]

    def _mig_enabled(self, gpu: FixtureGpu) -> bool:
        return gpu.mig_mode is not None and gpu.mig_mode[0] == self.nvml.NVML_DEVICE_MIG_ENABLE

    @staticmethod
    def _gpu_index(handle: Any) -> int | None:
        return getattr(handle, "index", None) if isinstance(handle, GpuHandle) else getattr(handle, "gpu", None)

    # -- system ---------------------------------------------------------------------------
    def nvmlSystemGetDriverVersion(self) -> str:
        self._enter("nvmlSystemGetDriverVersion")
        return self.fixture.driver_version

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._enter("nvmlSystemGetCudaDriverVersion")
        return self.fixture.cuda_driver_version

    # -- devices --------------------------------------------------------------------------
    def nvmlDeviceGetCount(self) -> int:
        self._enter("nvmlDeviceGetCount")
        return len(self._visible)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> GpuHandle:
        self._enter("nvmlDeviceGetHandleByIndex", index)
        if not 0 <= index < len(self._visible):
            raise self.nvml.NVMLError(self.nvml.NVML_ERROR_INVALID_ARGUMENT)
        return GpuHandle(index)

    def nvmlDeviceGetIndex(self, handle: Any) -> int:
        self._enter("nvmlDeviceGetIndex", self._gpu_index(handle))
        self._gpu(handle)
        return int(handle.index)

    def nvmlDeviceGetName(self, handle: Any) -> str:
        self._enter("nvmlDeviceGetName", self._gpu_index(handle))
        if isinstance(handle, MigHandle):
            gpu = self._visible[handle.gpu]
            return f"{gpu.name} MIG {self._mig(handle).profile}"
        return self._gpu(handle).name

    def nvmlDeviceGetUUID(self, handle: Any) -> str:
        self._enter("nvmlDeviceGetUUID", self._gpu_index(handle))
        if isinstance(handle, MigHandle):
            return self._mig(handle).uuid
        return self._gpu(handle).uuid

    def nvmlDeviceGetMemoryInfo(self, handle: Any, version: Any = None) -> Any:
        self._enter("nvmlDeviceGetMemoryInfo", self._gpu_index(handle))
        if isinstance(handle, MigHandle):
            total = self._mig(handle).attributes.memory_mib * MIB
        else:
            total = self._gpu(handle).memory_mib * MIB
        info = self.nvml.c_nvmlMemory_t()
        info.total, info.used, info.free = total, 0, total
        return info

    def nvmlDeviceGetCudaComputeCapability(self, handle: Any) -> tuple[int, int]:
        self._enter("nvmlDeviceGetCudaComputeCapability", self._gpu_index(handle))
        gpu = self._visible[handle.gpu] if isinstance(handle, MigHandle) else self._gpu(handle)
        return gpu.compute_capability

    def nvmlDeviceGetPciInfoExt(self, handle: Any, c_info: Any) -> None:
        """Fills ``ctypes.byref(nvmlPciInfoExt_v1_t())`` and returns None, as the real binding."""
        self._enter("nvmlDeviceGetPciInfoExt", self._gpu_index(handle))
        info = by_reference(self.nvml, "nvmlDeviceGetPciInfoExt", c_info, self.nvml.nvmlPciInfoExt_v1_t,
                            self.nvml.nvmlPciInfoExt_v1)
        gpu = self._gpu(handle)
        info.baseClass = (gpu.pci_class >> 16) & 0xFF
        info.subClass = (gpu.pci_class >> 8) & 0xFF

    def nvmlDeviceGetPciInfo(self, handle: Any) -> Any:
        """pynvml's nvmlDeviceGetPciInfo (the _v3 struct): the PCI device ID and a bus ID."""
        self._enter("nvmlDeviceGetPciInfo", self._gpu_index(handle))
        gpu = self._gpu(handle)
        info = self.nvml.nvmlPciInfo_t()
        info.pciDeviceId = gpu.pci_device_id
        info.pciSubSystemId = gpu.pci_subsystem_id
        info.bus = gpu.bus
        info.busId = f"00000000:{gpu.bus:02X}:00.0".encode()
        return info

    def nvmlDeviceGetGpuFabricInfoV(self, handle: Any, c_info: Any) -> int:
        self._enter("nvmlDeviceGetGpuFabricInfoV", self._gpu_index(handle))
        info = by_reference(self.nvml, "nvmlDeviceGetGpuFabricInfoV", c_info, self.nvml.c_nvmlGpuFabricInfo_v2_t,
                            self.nvml.nvmlGpuFabricInfo_v2)
        self._fill_fabric(self._gpu(handle), info)
        return self.nvml.NVML_SUCCESS

    def nvmlDeviceGetGpuFabricInfo(self, handle: Any, c_info: Any) -> int:
        self._enter("nvmlDeviceGetGpuFabricInfo", self._gpu_index(handle))
        info = by_reference(self.nvml, "nvmlDeviceGetGpuFabricInfo", c_info, self.nvml.c_nvmlGpuFabricInfo_t)
        self._fill_fabric(self._gpu(handle), info)
        return self.nvml.NVML_SUCCESS

    def _fill_fabric(self, gpu: FixtureGpu, info: Any) -> None:
        if gpu.fabric is None:  # no NVLink fabric on this GPU
            raise self.nvml.NVMLError(self.nvml.NVML_ERROR_NOT_SUPPORTED)
        for i, byte in enumerate(gpu.fabric.cluster_uuid):
            info.clusterUuid[i] = byte
        info.cliqueId = gpu.fabric.clique_id
        info.state = gpu.fabric.state
        status = gpu.fabric.status
        info.status = error_code(self.nvml, status) if status != "NVML_SUCCESS" else self.nvml.NVML_SUCCESS

    def nvmlDeviceGetUtilizationRates(self, handle: Any) -> Any:
        self._enter("nvmlDeviceGetUtilizationRates", self._gpu_index(handle))
        gpu = self._gpu(handle)
        if self._mig_enabled(gpu):  # nvml.h: not supported on MIG-enabled GPUs
            raise self.nvml.NVMLError(self.nvml.NVML_ERROR_NOT_SUPPORTED)
        util = self.nvml.c_nvmlUtilization_t()
        util.gpu, util.memory = 0, 0
        return util

    # -- MIG on the parent ------------------------------------------------------------------
    def nvmlDeviceGetMigMode(self, handle: Any) -> list[int]:
        self._enter("nvmlDeviceGetMigMode", self._gpu_index(handle))
        gpu = self._gpu(handle)
        if gpu.mig_mode is None:
            raise self.nvml.NVMLError(self.nvml.NVML_ERROR_NOT_SUPPORTED)
        return [gpu.mig_mode[0], gpu.mig_mode[1]]

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: Any) -> int:
        self._enter("nvmlDeviceGetMaxMigDeviceCount", self._gpu_index(handle))
        gpu = self._gpu(handle)
        return gpu.max_mig_devices if self._mig_enabled(gpu) else 0

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: Any, index: int) -> MigHandle:
        self._enter("nvmlDeviceGetMigDeviceHandleByIndex", self._gpu_index(handle))
        gpu = self._gpu(handle)
        if not self._mig_enabled(gpu) or not 0 <= index < gpu.max_mig_devices:
            raise self.nvml.NVMLError(self.nvml.NVML_ERROR_INVALID_ARGUMENT)
        if index >= len(gpu.mig_devices):
            raise self.nvml.NVMLError(self.nvml.NVML_ERROR_NOT_FOUND)
        return MigHandle(handle.index, index)

    def nvmlDeviceIsMigDeviceHandle(self, handle: Any) -> ctypes.c_uint:
        self._enter("nvmlDeviceIsMigDeviceHandle", self._gpu_index(handle))
        return ctypes.c_uint(1 if isinstance(handle, MigHandle) else 0)  # a c_uint, as pynvml returns

    def nvmlDeviceGetGpuInstanceProfileInfo(self, handle: Any, profile: int, version: int = 2) -> Any:
        self._enter("nvmlDeviceGetGpuInstanceProfileInfo", self._gpu_index(handle))
        self._symbol("nvmlDeviceGetGpuInstanceProfileInfoV" if version == 2 else "nvmlDeviceGetGpuInstanceProfileInfo")
        gpu = self._gpu(handle)
        if not 0 <= profile < self.nvml.NVML_GPU_INSTANCE_PROFILE_COUNT:
            raise self.nvml.NVMLError(self.nvml.NVML_ERROR_INVALID_ARGUMENT)
        match = next((p for p in gpu.gi_profiles if p.gi_profile_index == profile), None)
        if not self._mig_enabled(gpu) or match is None:
            raise self.nvml.NVMLError(self.nvml.NVML_ERROR_NOT_SUPPORTED)
        return gi_profile_info(self.nvml, match, version)

    def nvmlDeviceGetGpuInstanceById(self, handle: Any, instance_id: int) -> GpuInstance:
        self._enter("nvmlDeviceGetGpuInstanceById", self._gpu_index(handle))
        gpu = self._gpu(handle)
        if not self._mig_enabled(gpu):
            raise self.nvml.NVMLError(self.nvml.NVML_ERROR_NOT_SUPPORTED)
        for device in gpu.mig_devices:
            if gi_id(device.gi_slot) == instance_id:
                return GpuInstance(handle.index, device.gi_slot)
        raise self.nvml.NVMLError(self.nvml.NVML_ERROR_NOT_FOUND)

    # -- MIG device handles ---------------------------------------------------------------
    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, handle: Any) -> GpuHandle:
        self._enter("nvmlDeviceGetDeviceHandleFromMigDeviceHandle", self._gpu_index(handle))
        self._mig(handle)
        return GpuHandle(handle.gpu)

    def nvmlDeviceGetAttributes(self, handle: Any) -> Any:
        self._enter("nvmlDeviceGetAttributes", self._gpu_index(handle))
        if not isinstance(handle, MigHandle):  # nvml.h: only MIG device handles
            raise self.nvml.NVMLError(self.nvml.NVML_ERROR_NOT_SUPPORTED)
        a = self._mig(handle).attributes
        attrs = self.nvml.c_nvmlDeviceAttributes()
        attrs.multiprocessorCount = a.multiprocessors
        attrs.sharedCopyEngineCount = a.copy_engines
        attrs.sharedDecoderCount = a.decoders
        attrs.sharedEncoderCount = a.encoders
        attrs.sharedJpegCount = a.jpeg
        attrs.sharedOfaCount = a.ofa
        attrs.gpuInstanceSliceCount = a.slices_gi
        attrs.computeInstanceSliceCount = a.slices_ci
        attrs.memorySizeMB = a.memory_mib
        return attrs

    def nvmlDeviceGetGpuInstanceId(self, handle: Any) -> int:
        self._enter("nvmlDeviceGetGpuInstanceId", self._gpu_index(handle))
        return gi_id(self._mig(handle).gi_slot)

    def nvmlDeviceGetComputeInstanceId(self, handle: Any) -> int:
        self._enter("nvmlDeviceGetComputeInstanceId", self._gpu_index(handle))
        return self._mig(handle).ci_slot  # CI IDs count from 0 within their GPU instance

    # -- GPU and compute instances --------------------------------------------------------
    def _instance_devices(self, gi: Any) -> list[FixtureMigDevice]:
        """The MIG devices (compute instances) of a GPU instance, in CI order."""
        if not isinstance(gi, (GpuInstance, ComputeInstance)):
            raise self.nvml.NVMLError(self.nvml.NVML_ERROR_INVALID_ARGUMENT)
        return [d for d in self._visible[gi.gpu].mig_devices if d.gi_slot == gi.gi_slot]

    def nvmlGpuInstanceGetInfo(self, gi: Any) -> Any:
        self._enter("nvmlGpuInstanceGetInfo", getattr(gi, "gpu", None))
        device = self._instance_devices(gi)[0]
        info = self.nvml.c_nvmlGpuInstanceInfo_t()
        info.id = gi_id(gi.gi_slot)
        info.profileId = device.gi.gi_profile_id
        return info

    def nvmlGpuInstanceGetComputeInstanceById(self, gi: Any, ci_id: int) -> ComputeInstance:
        self._enter("nvmlGpuInstanceGetComputeInstanceById", getattr(gi, "gpu", None))
        if not any(d.ci_slot == ci_id for d in self._instance_devices(gi)):
            raise self.nvml.NVMLError(self.nvml.NVML_ERROR_NOT_FOUND)
        return ComputeInstance(gi.gpu, gi.gi_slot, ci_id)

    def nvmlComputeInstanceGetInfo(self, ci: Any) -> Any:
        self._enter("nvmlComputeInstanceGetInfo", getattr(ci, "gpu", None))
        if not isinstance(ci, ComputeInstance):
            raise self.nvml.NVMLError(self.nvml.NVML_ERROR_INVALID_ARGUMENT)
        device = next(d for d in self._instance_devices(ci) if d.ci_slot == ci.ci_slot)
        info = self.nvml.c_nvmlComputeInstanceInfo_t()
        info.id = ci.ci_slot
        info.profileId = device.ci_profile_index  # CI profile IDs equal the indices on these GPUs
        return info

    def nvmlGpuInstanceGetComputeInstanceProfileInfo(
        self, gi: Any, profile: int, eng_profile: int, version: int = 2
    ) -> Any:
        self._enter("nvmlGpuInstanceGetComputeInstanceProfileInfo", getattr(gi, "gpu", None))
        self._symbol("nvmlGpuInstanceGetComputeInstanceProfileInfoV" if version == 2
                     else "nvmlGpuInstanceGetComputeInstanceProfileInfo")
        if not isinstance(gi, GpuInstance):
            raise self.nvml.NVMLError(self.nvml.NVML_ERROR_INVALID_ARGUMENT)
        if not 0 <= profile < self.nvml.NVML_COMPUTE_INSTANCE_PROFILE_COUNT or eng_profile != 0:
            raise self.nvml.NVMLError(self.nvml.NVML_ERROR_INVALID_ARGUMENT)
        gpu = self._visible[gi.gpu]
        device = self._instance_devices(gi)[0]
        info = ci_profile_info(self.nvml, gpu, device.gi, profile, version)
        if info is None:
            raise self.nvml.NVMLError(self.nvml.NVML_ERROR_NOT_SUPPORTED)
        return info


def _checked(fixture: NodeFixture, nvml: ModuleType, path: Path | None = None) -> NodeFixture:
    """Every NVML error name the fixture uses must exist in pynvml (fixture.py stays free of it),
    and every fault must name a call the fake answers (a typo would never fire)."""
    for i, fault in enumerate(fixture.faults):
        if fault.call in ("nvmlInit", "nvmlInitWithFlags"):
            where = f"fixture {path}: " if path else ""
            raise FixtureError(f"{where}faults[{i}]: nvmlInit fails through the top-level key init_error (e.g. "
                               "init_error: NVML_ERROR_DRIVER_NOT_LOADED), not through faults")
        answered = fault.call.startswith("nvml") and callable(getattr(FakeNvml, fault.call, None))
        if fault.call != "*" and not answered:
            where = f"fixture {path}: " if path else ""
            raise FixtureError(f"{where}faults[{i}].call {fault.call!r} is not an NVML call the fake answers "
                               "(e.g. nvmlDeviceGetMemoryInfo)")
    fabric_status = [g.fabric.status for g in fixture.gpus
                     if g.fabric is not None and g.fabric.status != "NVML_SUCCESS"]
    for name in [fixture.init_error, *(f.error for f in fixture.faults), *fabric_status]:
        if name is not None and not isinstance(getattr(nvml, name, None), int):
            where = f"fixture {path}: " if path else ""
            raise FixtureError(f"{where}{name!r} is not an NVML error name (e.g. NVML_ERROR_GPU_IS_LOST)")
    return fixture
