"""The MIG devices of one MIG-enabled GPU, from NVML (nvml-mig.md §4).

Owns: ``MigReader``: the MIG-device slots (empty ones skipped), each device's GPU and compute
instance, profile IDs resolved to profile indices through per-GPU tables (scanned once per MIG
mode), the v1 fallback of the profile-info calls on libraries without the ``…V`` symbols, and the
profile name (``mig_profile_name``). Used by ``sources.nvml`` only.
"""

from __future__ import annotations

from typing import Any

from mig_labeler.errors import NvmlQueryFailed
from mig_labeler.sources.nvml_calls import (
    FUNCTION_NOT_FOUND,
    INVALID_ARGUMENT,
    NOT_FOUND,
    NOT_SUPPORTED,
    NvmlCalls,
    ProfileTables,
    ReaderCache,
)
from mig_labeler.topology import MigAttributes, MigDevice, mig_profile_name


class MigReader:
    def __init__(self, calls: NvmlCalls, cache: ReaderCache) -> None:
        self.calls = calls
        self.cache = cache

    def devices(self, handle: Any, index: int, uuid: str, total_bytes: int) -> tuple[MigDevice, ...]:
        if total_bytes <= 0:
            raise NvmlQueryFailed("nvmlDeviceGetMemoryInfo", index, NOT_SUPPORTED,
                                  "parent memory is needed to name MIG profiles")
        tables = self.cache.tables.setdefault(uuid, ProfileTables())
        if not tables.gi_index_by_id:
            self.scan_gi_profiles(handle, index, tables)
        devices = []
        for slot in range(int(self.calls.call("nvmlDeviceGetMaxMigDeviceCount", handle, gpu=index))):
            mig = self.calls.call(
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
                return self.calls.call(name, *args, 2, gpu=gpu, absent=absent)
            except NvmlQueryFailed as e:
                if e.code != FUNCTION_NOT_FOUND:
                    raise
                self.cache.legacy_profile_info = True
        return self.calls.call(name, *args, 1, gpu=gpu, absent=absent)

    def scan_gi_profiles(self, handle: Any, index: int, tables: ProfileTables) -> None:
        for profile_index in range(self.calls.nvml.NVML_GPU_INSTANCE_PROFILE_COUNT):
            info = self.profile_info("nvmlDeviceGetGpuInstanceProfileInfo", handle, profile_index, gpu=index)
            if info is not None:
                tables.gi_index_by_id.setdefault(int(info.id), profile_index)

    def mig_device(self, parent: Any, mig: Any, index: int, total_bytes: int, tables: ProfileTables) -> MigDevice:
        attributes = _attributes(self.calls.call("nvmlDeviceGetAttributes", mig, gpu=index))
        gi_id = int(self.calls.call("nvmlDeviceGetGpuInstanceId", mig, gpu=index))
        ci_id = int(self.calls.call("nvmlDeviceGetComputeInstanceId", mig, gpu=index))
        gi = self.calls.call("nvmlDeviceGetGpuInstanceById", parent, gi_id, gpu=index)
        gi_profile_id = int(self.calls.call("nvmlGpuInstanceGetInfo", gi, gpu=index).profileId)
        ci = self.calls.call("nvmlGpuInstanceGetComputeInstanceById", gi, ci_id, gpu=index)
        ci_profile_id = int(self.calls.call("nvmlComputeInstanceGetInfo", ci, gpu=index).profileId)
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
                         tables: ProfileTables) -> int:
        key = (gi_profile_id, ci_profile_id)
        if key not in tables.ci_index_by_ids:
            for ci_index in range(self.calls.nvml.NVML_COMPUTE_INSTANCE_PROFILE_COUNT):
                for engine in range(self.calls.nvml.NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_COUNT):
                    info = self.profile_info("nvmlGpuInstanceGetComputeInstanceProfileInfo", gi, ci_index, engine,
                                             gpu=index)
                    if info is not None:
                        tables.ci_index_by_ids.setdefault((gi_profile_id, int(info.id)), ci_index)
        if key not in tables.ci_index_by_ids:
            raise NvmlQueryFailed("nvmlGpuInstanceGetComputeInstanceProfileInfo", index, None,
                                  f"no compute instance profile has ID {ci_profile_id}")
        return tables.ci_index_by_ids[key]


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
