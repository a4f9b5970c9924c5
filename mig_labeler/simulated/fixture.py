"""Loads and validates node fixtures (shared/spec/fixtures.md) into plain data for the fake NVML.

Owns: the fixture format, model lookup and override rules. Raises ``FixtureError`` (exit 2) with
the file and the offending entry named. Does not import pynvml: NVML error names stay strings.
"""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mig_labeler import text_document
from mig_labeler.errors import FixtureError
from mig_labeler.gpu_models import CiProfile, GiProfile, GpuModel, gpu_models
from mig_labeler.simulated.fixture_fields import error_name, int_field, known_keys, list_field, mapping_field, str_field
from mig_labeler.simulated.layout import gpu_instances, layout_problem, place_instances
from mig_labeler.text_document import decode_text
from mig_labeler.topology import CI_INDEX_FOR_SLICES, FABRIC_STATES, MigAttributes

_UUID_NS = uuidlib.UUID("6f0c6c1e-6d69-4d1a-9b1e-6d69676c6162")


@dataclass(frozen=True, slots=True)
class FixtureMigDevice:
    profile: str  # the fixture's name for it (the reader must derive the same name from NVML)
    gi: GiProfile
    ci_profile_index: int
    attributes: MigAttributes
    uuid: str
    gi_slot: int = 0  # which GPU instance of the GPU holds it (layout.place_instances)
    ci_slot: int = 0  # which compute instance of that GPU instance it is


@dataclass(frozen=True, slots=True)
class FixtureFabric:
    cluster_uuid: bytes  # 16 bytes, as NVML's clusterUuid
    clique_id: int
    state: int  # index into FABRIC_STATES
    status: str  # an NVML return name, e.g. NVML_SUCCESS


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
    fabric: FixtureFabric | None = None  # None: the fake answers NOT_SUPPORTED
    pci_device_id: int = 0  # device << 16 | vendor (0x20B010DE); 0: not known for this model
    pci_subsystem_id: int = 0  # the board's subsystem device << 16 | vendor (0x145F10DE); 0: not given
    off_bus: bool = False  # fallen off the bus: NVML does not enumerate it, the PCI bus (fake sysfs) still shows it
    bus: int = 0  # its PCI bus number (domain 0, device 0, function 0): NVML's busId and the fake sysfs agree


@dataclass(frozen=True, slots=True)
class Fault:
    call: str  # a pynvml function name, or "*": every call on the GPU (a GPU that is gone)
    gpu: int | None
    error: str  # e.g. "NVML_ERROR_GPU_IS_LOST"
    from_pass: int = 1  # the first pass (nvmlInit, counted from 1) it fails on
    until_pass: int | None = None  # the last one; None: every pass from from_pass on

    def fires(self, call: str, gpu: int | None, init_count: int) -> bool:
        if self.call not in (call, "*") or (self.gpu is not None and self.gpu != gpu):
            return False
        if self.call == "*" and gpu is None:  # node-wide calls (driver version, count) still answer
            return False
        return self.from_pass <= init_count and (self.until_pass is None or init_count <= self.until_pass)


@dataclass(frozen=True, slots=True)
class NodeFixture:
    driver_version: str
    cuda_driver_version: int
    machine_type: str | None
    gpus: tuple[FixtureGpu, ...]
    init_error: str | None = None
    faults: tuple[Fault, ...] = ()
    missing_symbols: frozenset[str] = frozenset()  # functions an older libnvidia-ml.so lacks: FUNCTION_NOT_FOUND
    vgpu: FixtureVgpu | None = None  # None: the fake sysfs holds no vGPU device


@dataclass(frozen=True, slots=True)
class FixtureVgpu:
    host_driver_version: str
    host_driver_branch: str


FIRST_GPU_BUS = 0x17  # the fixture's first GPU sits at 0000:17:00.0, the next at 0000:18:00.0, ...
MAX_GPUS = 64  # per node; real machines have at most 16, and a typo in `count` must not eat the memory
BUNDLED = Path(__file__).parent / "fixtures"  # beside the code, as gpu_models reads its table


def bundled_fixtures() -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in BUNDLED.iterdir() if p.name.endswith(".yaml"))


def resolve_fixture(name: str | Path) -> Path:
    """A path, or the name of a bundled fixture (``dgx-a100-mixed``), so ``--fixture`` works from
    an installed package too. A value with a ``/`` is always a path: a mistyped directory is an
    error, never a silent switch to the bundled file of the same name."""
    text = str(name)
    if not text:
        raise FixtureError("the fixture name is empty")
    path = Path(text)
    if "/" in text or path.exists():
        if path.is_dir():
            raise FixtureError(f"cannot read fixture {text}: it is a directory; give a fixture file in it (a .yaml "
                               "file in the format of docs/how-it-works.md)")
        if not path.is_file():
            raise FixtureError(f"cannot read fixture {text}: no such file")
        return path
    bundled = BUNDLED / f"{text.removesuffix('.yaml')}.yaml"
    if bundled.is_file():
        return bundled
    raise FixtureError(f"cannot read fixture {text}: no such file, and no bundled fixture of that name "
                       f"(bundled: {', '.join(bundled_fixtures())})")


def load_fixture(path: str | Path) -> NodeFixture:
    path = resolve_fixture(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise FixtureError(f"cannot read fixture {path}: {e.strerror or e}") from e
    text = decode_text(data, f"fixture {path}", FixtureError)
    doc = text_document.load_document(text, f"fixture {path}", FixtureError, as_json=path.suffix == ".json")
    try:
        return parse_fixture(doc)
    except FixtureError as e:
        raise FixtureError(f"fixture {path}: {e}") from None


def parse_fixture(doc: Any) -> NodeFixture:
    if not isinstance(doc, dict):
        raise FixtureError("must be a mapping with driver_version, cuda_driver_version and gpus")
    known_keys(doc, "", "")
    entries = list_field(doc.get("gpus") or [], "gpus")
    total = 0
    for i, entry in enumerate(entries):
        known_keys(mapping_field(entry, f"gpus[{i}]"), "gpu", f"gpus[{i}]")
        total += int_field(entry.get("count", 1), f"gpus[{i}].count", 1, MAX_GPUS)
    if total > MAX_GPUS:
        raise FixtureError(f"gpus describe {total} GPUs; a node fixture holds at most {MAX_GPUS}")
    gpus: list[FixtureGpu] = []
    for i, entry in enumerate(entries):
        for _ in range(entry.get("count", 1)):
            gpus.append(_gpu(entry, len(gpus), f"gpus[{i}]"))
    uuids = [g.uuid for g in gpus]
    duplicate = next((u for u in uuids if uuids.count(u) > 1), None)
    if duplicate is not None:
        raise FixtureError(f"GPU UUID {duplicate} appears twice; every GPU has its own")
    faults = tuple(_fault(f, i) for i, f in enumerate(list_field(doc.get("faults") or [], "faults")))
    machine = doc.get("machine_type")
    init_error = doc.get("init_error")
    return NodeFixture(
        driver_version=str_field(doc.get("driver_version", "550.54.15"), "driver_version"),
        cuda_driver_version=int_field(doc.get("cuda_driver_version", 12040), "cuda_driver_version", 0, 2**31 - 1),
        machine_type=None if machine is None else str_field(machine, "machine_type"),
        gpus=tuple(gpus),
        init_error=None if init_error is None else error_name(init_error, "init_error"),
        faults=faults,
        vgpu=None if doc.get("vgpu") is None else _vgpu(doc["vgpu"]),
        missing_symbols=frozenset(str_field(s, f"missing_symbols[{i}]") for i, s in
                                  enumerate(list_field(doc.get("missing_symbols") or [], "missing_symbols"))),
    )


def _vgpu(raw: Any) -> FixtureVgpu:
    """``vgpu: {host_driver_version, host_driver_branch}``: each at most 10 ASCII characters, the
    size of its field in the PCI capability record."""
    spec = known_keys(mapping_field(raw, "vgpu"), "vgpu", "vgpu")
    values = []
    for key in ("host_driver_version", "host_driver_branch"):
        value = str_field(spec.get(key, ""), f"vgpu.{key}")
        if not value or len(value) > 10 or not value.isascii() or "\0" in value:
            raise FixtureError(f"vgpu.{key} must be 1 to 10 ASCII characters (a PCI record field), not {value!r}")
        values.append(value)
    return FixtureVgpu(*values)


def _fault(raw: Any, i: int) -> Fault:
    raw = known_keys(mapping_field(raw, f"faults[{i}]"), "fault", f"faults[{i}]")
    if "call" not in raw or "error" not in raw:
        raise FixtureError(f"faults[{i}] needs call and error")
    gpu = raw.get("gpu")
    first = int_field(raw.get("from_pass", 1), f"faults[{i}].from_pass", 1)
    last = None if raw.get("until_pass") is None else int_field(raw["until_pass"], f"faults[{i}].until_pass", first)
    return Fault(str_field(raw["call"], f"faults[{i}].call"),
                 None if gpu is None else int_field(gpu, f"faults[{i}].gpu"),
                 error_name(raw["error"], f"faults[{i}].error"), first, last)


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


def _compute_capability(raw: Any, where: str) -> tuple[int, int]:
    if not isinstance(raw, (list, tuple)) or len(raw) != 2:
        raise FixtureError(f"{where}.compute_capability must be [major, minor], not {raw!r}")
    return (int_field(raw[0], f"{where}.compute_capability[0]", 0, 99),
            int_field(raw[1], f"{where}.compute_capability[1]", 0, 99))


def _pci_class(raw: Any, where: str) -> int:
    if isinstance(raw, str):
        try:
            value = int_field(int(raw, 16), f"{where}.pci_class", 0, 0xFFFFFF)
        except ValueError:
            raise FixtureError(f"{where}.pci_class must be a hex string such as '030200', not {raw!r}") from None
    else:
        value = int_field(raw, f"{where}.pci_class", 0, 0xFFFFFF)
    if value & 0xFF:
        # NVML reports base and sub class only (nvmlDeviceGetPciInfoExt), so a programming-interface
        # byte is something the fake could not answer and the reader could never see.
        raise FixtureError(f"{where}.pci_class {raw!r} has a programming-interface byte; NVML reports base "
                           f"and sub class only, so it must end in 00 (e.g. '030200')")
    return value


def _gpu(entry: dict, index: int, where: str) -> FixtureGpu:
    model = _model_for(entry, where)
    name = str_field(entry.get("name", model.nvml_name if model else ""), f"{where}.name")
    cc = _compute_capability(entry.get("compute_capability", model.compute_capability if model else (0, 0)), where)
    mig_capable = entry.get("mig_capable", model.mig_capable if model else False)
    if not isinstance(mig_capable, bool):
        raise FixtureError(f"{where}.mig_capable must be true or false, not {mig_capable!r}")
    devices = entry.get("mig")
    mode = _mig_mode(entry, devices, mig_capable, where)
    uuid = str_field(entry.get("uuid") or f"GPU-{uuidlib.uuid5(_UUID_NS, f'{name}/{index}')}", f"{where}.uuid")
    memory = int_field(entry.get("memory_mib", model.memory_mib if model else 0), f"{where}.memory_mib", 0, 2**40)
    mig = _placed(tuple(_mig_device(d, model, f"{where}.mig[{j}]", f"{uuid}/{j}") for j, d in enumerate(devices or [])),
                  devices or [], where)
    max_devices = model.max_mig_devices if model else 7
    if len(mig) > max_devices:
        raise FixtureError(f"{where} has {len(mig)} MIG devices; the model allows at most {max_devices}")
    if model is not None:
        _check_layout(model, memory, mig, where)
    return FixtureGpu(
        name=name,
        uuid=uuid,
        memory_mib=memory,
        compute_capability=cc,
        mig_mode=mode,
        pci_class=_pci_class(entry.get("pci_class", model.pci_class if model else 0x030200), where),
        max_mig_devices=max_devices if mig_capable else 0,
        gi_profiles=model.profiles if model else (),
        ci_profiles=model.compute_instance_profiles if model else (),
        mig_devices=mig,
        fabric=None if entry.get("fabric") is None else _fabric(entry["fabric"], f"{where}.fabric"),
        pci_device_id=_pci_id(entry.get("pci_device_id", model.pci_device_id if model else None), where,
                              "pci_device_id"),
        pci_subsystem_id=_pci_id(entry.get("pci_subsystem_id"), where, "pci_subsystem_id"),
        off_bus=_flag(entry.get("off_bus", False), f"{where}.off_bus"),
        bus=FIRST_GPU_BUS + index,
    )


def _flag(raw: Any, where: str) -> bool:
    if not isinstance(raw, bool):
        raise FixtureError(f"{where} must be true or false, not {raw!r}")
    return raw


def _pci_id(raw: Any, where: str, key: str) -> int:
    """``0x20B010DE`` (a string or an integer), as NVML's pciDeviceId/pciSubSystemId and mig-parted
    spell them."""
    if raw is None:
        return 0
    try:
        value = int(raw, 16) if isinstance(raw, str) else int_field(raw, f"{where}.{key}")
    except ValueError:
        raise FixtureError(f"{where}.{key} must be hexadecimal such as '0x20B010DE', not {raw!r}") from None
    return int_field(value, f"{where}.{key}", 0, 0xFFFFFFFF)


def _fabric(raw: Any, where: str) -> FixtureFabric:
    """``fabric: {cluster_uuid, clique_id, state, status}`` (fixtures.md, issue: gpu.clique)."""
    spec = known_keys(mapping_field(raw, where), "fabric", where)
    try:
        cluster = uuidlib.UUID(str_field(spec.get("cluster_uuid", ""), f"{where}.cluster_uuid"))
    except ValueError:
        raise FixtureError(f"{where}.cluster_uuid must be a UUID, not {spec.get('cluster_uuid')!r}") from None
    state = str_field(spec.get("state", "completed"), f"{where}.state")
    if state not in FABRIC_STATES:
        raise FixtureError(f"{where}.state must be one of {', '.join(FABRIC_STATES)}, not {state!r}")
    status = spec.get("status", "NVML_SUCCESS")
    if status != "NVML_SUCCESS":
        status = error_name(status, f"{where}.status")
    return FixtureFabric(cluster.bytes, int_field(spec.get("clique_id", 0), f"{where}.clique_id", 0, 2**32 - 1),
                         FABRIC_STATES.index(state), str(status))


def _check_layout(model: GpuModel, memory_mib: int, mig: tuple[FixtureMigDevice, ...], where: str) -> None:
    """No device larger than the GPU, and a layout the GPU can hold (``layout_problem``)."""
    for device in mig:
        if device.attributes.memory_mib > memory_mib:
            raise FixtureError(f"{where}: a {device.profile} with {device.attributes.memory_mib} MiB is larger "
                               f"than the GPU ({memory_mib} MiB)")
    instances = gpu_instances([(d.profile, d.gi) for d in mig], [(d.gi_slot, d.ci_slot) for d in mig])
    problem = layout_problem(model, instances)
    if problem:
        raise FixtureError(f"{where}: {problem}")


def _mig_mode(entry: dict, devices: Any, mig_capable: bool, where: str) -> tuple[int, int] | None:
    explicit = entry.get("mig_mode")
    if devices is not None and not isinstance(devices, list):
        raise FixtureError(f"{where}.mig must be a list of profiles")
    if (explicit is not None or devices is not None) and not mig_capable:
        raise FixtureError(f"{where} sets MIG but the GPU is not MIG-capable")
    if explicit is not None:
        mode = known_keys(mapping_field(explicit, f"{where}.mig_mode"), "mig_mode", f"{where}.mig_mode")
        if "current" not in mode or "pending" not in mode:
            raise FixtureError(f"{where}.mig_mode needs current and pending (0 disabled, 1 enabled)")
        return int_field(mode["current"], f"{where}.mig_mode.current", 0, 1), \
            int_field(mode["pending"], f"{where}.mig_mode.pending", 0, 1)
    if devices is not None:
        return 1, 1
    return (0, 0) if mig_capable else None


def _placed(mig: tuple[FixtureMigDevice, ...], raw: list[Any], where: str) -> tuple[FixtureMigDevice, ...]:
    """GPU- and compute-instance slots: a device with ``gi: <group>`` shares a GPU instance with
    every device of the same group (several compute instances in one GPU instance)."""
    groups = [_group(d, f"{where}.mig[{j}]") for j, d in enumerate(raw)]
    wanted = [(d.profile, d.gi, d.attributes.slices_ci, g) for d, g in zip(mig, groups, strict=True)]
    slots, problem = place_instances(wanted)
    if problem:
        raise FixtureError(f"{where}: {problem}")
    return tuple(replace(d, gi_slot=gi, ci_slot=ci) for d, (gi, ci) in zip(mig, slots, strict=True))


def _group(raw: Any, where: str) -> object:
    group = raw.get("gi") if isinstance(raw, dict) else None
    if group is not None and (isinstance(group, bool) or not isinstance(group, (int, str))):
        raise FixtureError(f"{where}.gi must be a GPU instance name or number, not {group!r}")
    return group


def _mig_device(raw: Any, model: GpuModel | None, where: str, seed: str) -> FixtureMigDevice:
    if model is None:
        raise FixtureError(f"{where}: MIG devices need a GPU entry with a model")
    spec = known_keys(raw, "mig", where) if isinstance(raw, dict) else {"profile": raw}
    name = str_field(spec.get("profile"), f"{where}.profile")
    gi, ci_index, attributes = _resolve_profile(model, name, where)
    overrides = known_keys(mapping_field(spec.get("attributes") or {}, f"{where}.attributes"), "attributes",
                       f"{where}.attributes")
    attributes = _override_attributes(attributes, overrides, f"{where}.attributes")
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


def _override_attributes(attributes: MigAttributes, raw: dict, where: str) -> MigAttributes:
    engines = known_keys(mapping_field(raw.get("engines") or {}, f"{where}.engines"), "engines", f"{where}.engines")
    fields = {
        "memory_mib": raw.get("memory_mib"),
        "multiprocessors": raw.get("multiprocessors"),
        "copy_engines": engines.get("copy"),
        "decoders": engines.get("decoder"),
        "encoders": engines.get("encoder"),
        "jpeg": engines.get("jpeg"),
        "ofa": engines.get("ofa"),
    }
    return replace(attributes, **{k: int_field(v, f"{where}.{k}", 0 if k != "memory_mib" else 1, 2**40)
                                  for k, v in fields.items() if v is not None})
