"""The table of real GPU models the fake NVML answers from, shaped like go-nvml's ``gpus/*.go``.

Owns: loading ``data/gpu_models.json`` (generated from shared/spec/mig-profiles.json by
``tools/gen_gpu_models.py``) into frozen records. Only the fake and the tests use it: the real
reader reads every number from NVML at run time and never consults this table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from mig_labeler.topology import MigAttributes


@dataclass(frozen=True, slots=True)
class GiProfile:
    name: str
    gi_profile_index: int  # the NVML_GPU_INSTANCE_PROFILE_* constant
    gi_profile_id: int  # what the driver reports as .id / profileId
    attributes: MigAttributes  # of a MIG device whose CI spans the whole GI
    max_count: int


@dataclass(frozen=True, slots=True)
class CiProfile:
    gi: str  # name of the GI profile it lives in
    name: str  # e.g. "1c.3g.20gb"
    ci_slices: int
    ci_profile_index: int
    multiprocessors: int


@dataclass(frozen=True, slots=True)
class GpuModel:
    key: str
    nvml_name: str
    memory_mib: int
    compute_capability: tuple[int, int]
    mig_capable: bool
    max_mig_devices: int
    pci_class: int
    profiles: tuple[GiProfile, ...]
    compute_instance_profiles: tuple[CiProfile, ...]
    pci_device_id: int | None = None  # device << 16 | vendor, e.g. 0x20B010DE (NVML's pciDeviceId)
    unmeasured_profiles: tuple[str, ...] = ()  # the GPU has them; the spec has no numbers for them

    def profile(self, name: str) -> GiProfile | None:
        return next((p for p in self.profiles if p.name == name), None)

    def ci_profile(self, name: str) -> CiProfile | None:
        return next((c for c in self.compute_instance_profiles if c.name == name), None)


def _profile(raw: dict) -> GiProfile:
    engines = raw["engines"]
    attributes = MigAttributes(
        memory_mib=raw["memory_mib"],
        multiprocessors=raw["multiprocessors"],
        slices_gi=raw["slices_gi"],
        slices_ci=raw["slices_ci"],
        copy_engines=engines["copy"],
        decoders=engines["decoder"],
        encoders=engines["encoder"],
        jpeg=engines["jpeg"],
        ofa=engines["ofa"],
    )
    return GiProfile(raw["name"], raw["gi_profile_index"], raw["gi_profile_id"], attributes, raw["max_count"])


def _model(key: str, raw: dict) -> GpuModel:
    return GpuModel(
        key=key,
        nvml_name=raw["nvml_name"],
        memory_mib=raw["memory_mib"],
        compute_capability=(raw["compute_capability"][0], raw["compute_capability"][1]),
        mig_capable=raw["mig_capable"],
        max_mig_devices=raw["max_mig_devices"],
        pci_class=int(raw["pci_class"], 16),
        profiles=tuple(_profile(p) for p in raw["profiles"]),
        compute_instance_profiles=tuple(CiProfile(**c) for c in raw["compute_instance_profiles"]),
        pci_device_id=int(raw["pci_device_id"], 16) if raw.get("pci_device_id") else None,
        unmeasured_profiles=tuple(raw.get("unmeasured_profiles") or ()),
    )


@cache
def gpu_models() -> dict[str, GpuModel]:
    # Beside the code, not through importlib.resources: its readers (zipfile) are half a MiB of the
    # daemon's memory, and the package is never installed zipped.
    text = (Path(__file__).parent / "data" / "gpu_models.json").read_text(encoding="utf-8")
    return {key: _model(key, raw) for key, raw in json.loads(text)["models"].items()}
