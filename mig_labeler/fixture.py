"""Loads and validates node fixtures (shared/spec/fixtures.md) into plain data for the fake NVML.

Owns: the fixture format, model lookup and override rules. Raises ``FixtureError`` (exit 2) with
the file and the offending entry named. Does not import pynvml: NVML error names stay strings.
"""

from __future__ import annotations

import json
import uuid as uuidlib
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from mig_labeler.errors import FixtureError
from mig_labeler.gpu_models import CiProfile, GiProfile, GpuModel, gpu_models
from mig_labeler.topology import CI_INDEX_FOR_SLICES, MigAttributes

_UUID_NS = uuidlib.UUID("6f0c6c1e-6d69-4d1a-9b1e-6d69676c6162")


@dataclass(frozen=True, slots=True)
class FixtureMigDevice:
    profile: str  # the fixture's name for it (the reader must derive the same name from NVML)
    gi: GiProfile
    ci_profile_index: int
    attributes: MigAttributes
    uuid: str


@dataclass(frozen=True, slots=True)
class FixtureGpu:
    name: str
    uuid: str
    memory_mib: int
    compute_capability: tuple[int, int]
    mig_mode: tuple[int, int] | None  # (current, pending); None = not MIG-capable
    pci_class: int
    max_mig_devices: int
    gi_profiles: tuple[GiProfile, ...]
    ci_profiles: tuple[CiProfile, ...]
    mig_devices: tuple[FixtureMigDevice, ...]


@dataclass(frozen=True, slots=True)
class Fault:
    call: str
    gpu: int | None
    error: str  # e.g. "NVML_ERROR_GPU_IS_LOST"


@dataclass(frozen=True, slots=True)
class NodeFixture:
    driver_version: str
    cuda_driver_version: int
    machine_type: str | None
    gpus: tuple[FixtureGpu, ...]
    init_error: str | None = None
    faults: tuple[Fault, ...] = ()


def bundled_fixtures() -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in resources.files("mig_labeler").joinpath("fixtures").iterdir()
                  if p.name.endswith(".yaml"))


def resolve_fixture(name: str | Path) -> Path:
    """A path, or the name of a bundled fixture (``dgx-a100-mixed``), so ``--fixture`` works
    from an installed package too."""
    path = Path(name)
    if path.exists():
        return path
    bundled = resources.files("mig_labeler").joinpath(f"fixtures/{path.name.removesuffix('.yaml')}.yaml")
    if bundled.is_file():
        return Path(str(bundled))
    raise FixtureError(f"cannot read fixture {name}: no such file (bundled: {', '.join(bundled_fixtures())})")


def load_fixture(path: str | Path) -> NodeFixture:
    path = resolve_fixture(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise FixtureError(f"cannot read fixture {path}: {e.strerror or e}") from e
    try:
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        raise FixtureError(f"fixture {path} is not valid YAML/JSON: {str(e).splitlines()[0]}") from e
    try:
        return parse_fixture(doc)
    except FixtureError as e:
        raise FixtureError(f"fixture {path}: {e}") from None


def parse_fixture(doc: Any) -> NodeFixture:
    if not isinstance(doc, dict):
        raise FixtureError("must be a mapping with driver_version, cuda_driver_version and gpus")
    gpus: list[FixtureGpu] = []
    for i, entry in enumerate(doc.get("gpus") or []):
        if not isinstance(entry, dict):
            raise FixtureError(f"gpus[{i}] must be a mapping")
        count = entry.get("count", 1)
        if not isinstance(count, int) or count < 1:
            raise FixtureError(f"gpus[{i}].count must be a positive integer")
        for _ in range(count):
            gpus.append(_gpu(entry, len(gpus), f"gpus[{i}]"))
    faults = tuple(_fault(f, i) for i, f in enumerate(doc.get("faults") or []))
    machine = doc.get("machine_type")
    return NodeFixture(
        driver_version=str(doc.get("driver_version", "550.54.15")),
        cuda_driver_version=int(doc.get("cuda_driver_version", 12040)),
        machine_type=None if machine is None else str(machine),
        gpus=tuple(gpus),
        init_error=doc.get("init_error"),
        faults=faults,
    )


def _fault(raw: Any, i: int) -> Fault:
    if not isinstance(raw, dict) or "call" not in raw or "error" not in raw:
        raise FixtureError(f"faults[{i}] needs call and error")
    error = str(raw["error"])
    if not error.startswith("NVML_ERROR_"):
        raise FixtureError(f"faults[{i}].error {error!r} is not an NVML_ERROR_* name")
    return Fault(str(raw["call"]), raw.get("gpu"), error)


def _model_for(entry: dict, where: str) -> GpuModel | None:
    key = entry.get("model")
    if key is None:
        missing = [k for k in ("name", "memory_mib", "compute_capability") if k not in entry]
        if missing:
            raise FixtureError(f"{where} names no model, so it must give {', '.join(missing)}")
        return None
    model = gpu_models().get(str(key))
    if model is None:
        raise FixtureError(f"{where}: unknown model {key!r}; known: {', '.join(sorted(gpu_models()))}")
    return model


def _gpu(entry: dict, index: int, where: str) -> FixtureGpu:
    model = _model_for(entry, where)
    name = entry.get("name", model.nvml_name if model else "")
    cc = entry.get("compute_capability", model.compute_capability if model else (0, 0))
    mig_capable = entry.get("mig_capable", model.mig_capable if model else False)
    devices = entry.get("mig")
    mode = _mig_mode(entry, devices, mig_capable, where)
    uuid = entry.get("uuid") or f"GPU-{uuidlib.uuid5(_UUID_NS, f'{name}/{index}')}"
    mig = tuple(_mig_device(d, model, f"{where}.mig[{j}]", f"{uuid}/{j}") for j, d in enumerate(devices or []))
    max_devices = model.max_mig_devices if model else 7
    if len(mig) > max_devices:
        raise FixtureError(f"{where} has {len(mig)} MIG devices; the model allows at most {max_devices}")
    pci_class = entry.get("pci_class", model.pci_class if model else 0x030200)
    return FixtureGpu(
        name=str(name),
        uuid=str(uuid),
        memory_mib=int(entry.get("memory_mib", model.memory_mib if model else 0)),
        compute_capability=(int(cc[0]), int(cc[1])),
        mig_mode=mode,
        pci_class=int(pci_class, 16) if isinstance(pci_class, str) else int(pci_class),
        max_mig_devices=max_devices if mig_capable else 0,
        gi_profiles=model.profiles if model else (),
        ci_profiles=model.compute_instance_profiles if model else (),
        mig_devices=mig,
    )


def _mig_mode(entry: dict, devices: Any, mig_capable: bool, where: str) -> tuple[int, int] | None:
    explicit = entry.get("mig_mode")
    if devices is not None and not isinstance(devices, list):
        raise FixtureError(f"{where}.mig must be a list of profiles")
    if (explicit is not None or devices is not None) and not mig_capable:
        raise FixtureError(f"{where} sets MIG but the GPU is not MIG-capable")
    if explicit is not None:
        return int(explicit["current"]), int(explicit["pending"])
    if devices is not None:
        return 1, 1
    return (0, 0) if mig_capable else None


def _mig_device(raw: Any, model: GpuModel | None, where: str, seed: str) -> FixtureMigDevice:
    if model is None:
        raise FixtureError(f"{where}: MIG devices need a GPU entry with a model")
    spec = raw if isinstance(raw, dict) else {"profile": raw}
    name = str(spec.get("profile"))
    gi, ci_index, attributes = _resolve_profile(model, name, where)
    overrides = spec.get("attributes") or {}
    attributes = _override_attributes(attributes, overrides)
    return FixtureMigDevice(name, gi, ci_index, attributes, f"MIG-{uuidlib.uuid5(_UUID_NS, seed)}")


def _resolve_profile(model: GpuModel, name: str, where: str) -> tuple[GiProfile, int, MigAttributes]:
    gi = model.profile(name)
    if gi is not None:
        return gi, CI_INDEX_FOR_SLICES[gi.attributes.slices_gi], gi.attributes
    ci = model.ci_profile(name)
    gi = model.profile(ci.gi) if ci else None
    if ci is None or gi is None:
        known = [p.name for p in model.profiles] + [c.name for c in model.compute_instance_profiles]
        raise FixtureError(f"{where}: {model.key} has no MIG profile {name!r}; known: {', '.join(known)}")
    attributes = replace(gi.attributes, slices_ci=ci.ci_slices, multiprocessors=ci.multiprocessors)
    return gi, ci.ci_profile_index, attributes


def _override_attributes(attributes: MigAttributes, raw: dict) -> MigAttributes:
    engines = raw.get("engines") or {}
    fields = {
        "memory_mib": raw.get("memory_mib"),
        "multiprocessors": raw.get("multiprocessors"),
        "copy_engines": engines.get("copy"),
        "decoders": engines.get("decoder"),
        "encoders": engines.get("encoder"),
        "jpeg": engines.get("jpeg"),
        "ofa": engines.get("ofa"),
    }
    return replace(attributes, **{k: int(v) for k, v in fields.items() if v is not None})
