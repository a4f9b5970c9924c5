"""The structs the fake NVML answers with, as pynvml's ctypes classes, and its error codes.

Owns: filling GPU-instance and compute-instance profile structs (v1 and v2) from the model table,
refusing a struct passed by value where real NVML takes a pointer, and NVML error names → codes.
Also which symbols a fixture's library lacks (``symbol_missing``). Used by the two fakes.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

from mig_labeler.gpu_models import GiProfile
from mig_labeler.simulated.fixture import FixtureGpu, NodeFixture
from mig_labeler.topology import CI_INDEX_FOR_SLICES


def by_reference(nvml: ModuleType, call: str, c_info: Any, struct: type[Any], version: int | None = None) -> Any:
    """The struct behind ``ctypes.byref(...)``. The real binding hands the argument to C as it is,
    so a struct passed by value is read as a pointer: it crashed the process (SIGSEGV) on a real
    H100. Refuse it as loudly as a fake can, and check the version field where the call has one."""
    info = getattr(c_info, "_obj", None)  # what ctypes.byref() wraps
    if not isinstance(info, struct):
        raise TypeError(f"{call} needs ctypes.byref({struct.__name__}()); a struct by value crashes real NVML")
    if version is not None and info.version != version:
        raise nvml.NVMLError(nvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
    return info


# Handles the fake gives out: what NVML's opaque pointers stand for.
@dataclass(frozen=True)
class GpuHandle:
    index: int


@dataclass(frozen=True)
class MigHandle:
    gpu: int
    slot: int


@dataclass(frozen=True)
class GpuInstance:
    gpu: int
    gi_slot: int


@dataclass(frozen=True)
class ComputeInstance:
    gpu: int
    gi_slot: int
    ci_slot: int


def gi_id(slot: int) -> int:
    # Instance IDs are driver-assigned and are neither slots nor profile IDs; keep them distinct.
    return 2 * slot + 1


# The driver release that added a symbol the reader uses, where a source says so: the versioned GI/CI
# profile-info calls came with R470 (nvml-mig.md; a 460-series library lacks them), the v2 memory
# struct with R510 (NVIDIA's mock NVML, k8s-test-infra engine/version.go). A fixture with an older
# driver_version has a library without them, as a real one would.
SYMBOL_ADDED = {
    "nvmlDeviceGetGpuInstanceProfileInfoV": (470, 0),
    "nvmlGpuInstanceGetComputeInstanceProfileInfoV": (470, 0),
    "nvmlDeviceGetMemoryInfo_v2": (510, 0),
}


def symbol_missing(fixture: NodeFixture, name: str) -> bool:
    """The fixture's library lacks ``name``: listed in ``missing_symbols``, or newer than its driver."""
    if name in fixture.missing_symbols:
        return True
    added = SYMBOL_ADDED.get(name)
    return added is not None and _release(fixture.driver_version) < added


def _release(driver_version: str) -> tuple[int, int]:
    fields = [int(f) if f.isdigit() else 0 for f in driver_version.split(".")[:2]]
    return (fields + [0, 0])[0], (fields + [0, 0])[1]


def error_code(nvml: ModuleType, name: str) -> int:
    code = getattr(nvml, name, None)
    if not isinstance(code, int):
        raise ValueError(f"unknown NVML error name {name!r}")
    return code


def gi_profile_info(nvml: ModuleType, p: GiProfile, version: int) -> Any:
    info = nvml.c_nvmlGpuInstanceProfileInfo_v2_t() if version == 2 else nvml.c_nvmlGpuInstanceProfileInfo_t()
    a = p.attributes
    info.id = p.gi_profile_id
    info.sliceCount = a.slices_gi
    info.instanceCount = p.max_count
    info.multiprocessorCount = a.multiprocessors
    info.copyEngineCount = a.copy_engines
    info.decoderCount = a.decoders
    info.encoderCount = a.encoders
    info.jpegCount = a.jpeg
    info.ofaCount = a.ofa
    info.memorySizeMB = a.memory_mib
    if version == 2:
        info.name = f"MIG {p.name}".encode()
    return info


def ci_profile_info(nvml: ModuleType, gpu: FixtureGpu, gi: GiProfile, index: int, version: int) -> Any:
    a = gi.attributes
    if index == CI_INDEX_FOR_SLICES.get(a.slices_gi):
        slices, sms, name = a.slices_gi, a.multiprocessors, gi.name
    else:
        row = next((c for c in gpu.ci_profiles if c.gi == gi.name and c.ci_profile_index == index), None)
        if row is None:
            return None
        slices, sms, name = row.ci_slices, row.multiprocessors, row.name
    cls = nvml.c_nvmlComputeInstanceProfileInfo_v2_t if version == 2 else nvml.c_nvmlComputeInstanceProfileInfo_t
    info = cls()
    info.id = index
    info.sliceCount = slices
    info.instanceCount = a.slices_gi // slices  # how many such CIs the GPU instance holds
    info.multiprocessorCount = sms
    info.sharedCopyEngineCount = a.copy_engines
    info.sharedDecoderCount = a.decoders
    info.sharedEncoderCount = a.encoders
    info.sharedJpegCount = a.jpeg
    info.sharedOfaCount = a.ofa
    if version == 2:
        info.name = f"MIG {name}".encode()
    return info
