"""Record what real NVML reports on this machine as a node fixture (shared/spec/fixtures.md), and
the raw profile facts beside it, strictly read-only: queries only, no MIG mode change, no GPU or
compute instance created or destroyed, no reset.

    python tools/record_fixture.py OUT.yaml [--raw RAW.json] [--machine-type-file PATH]

The fixture goes through the production reader (nvml_reader.read_topology) and is written in the
fixture format: a GPU whose NVML name is in the model table is written as ``model:`` plus any
value that differs from the table (memory_mib, compute_capability); others with name, memory and
compute capability. ``--raw`` also writes each GPU instance profile NVML reports (index, id,
slices, memory, instance count, engines), to compare with mig_labeler/data/gpu_models.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pynvml  # noqa: E402
import yaml  # noqa: E402

from mig_labeler.gpu_models import gpu_models  # noqa: E402
from mig_labeler.sources.machine import read_machine_type  # noqa: E402
from mig_labeler.sources.nvml import read_topology  # noqa: E402
from mig_labeler.topology import Gpu, NodeTopology  # noqa: E402


def fixture_of(topology: NodeTopology) -> dict[str, Any]:
    by_name = {m.nvml_name: m for m in gpu_models().values()}
    gpus = []
    for gpu in topology.gpus:
        gpus.append(_gpu_entry(gpu, by_name.get(gpu.name)))
    doc: dict[str, Any] = {"driver_version": topology.driver_version,
                           "cuda_driver_version": topology.cuda_driver_version}
    if topology.machine_type is not None:
        doc["machine_type"] = topology.machine_type
    doc["gpus"] = gpus
    return doc


def _gpu_entry(gpu: Gpu, model: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"uuid": gpu.uuid}
    if model is not None:
        entry["model"] = model.key
        if gpu.memory_mib is not None and gpu.memory_mib != model.memory_mib:
            entry["memory_mib"] = gpu.memory_mib
        if gpu.compute_capability != model.compute_capability:
            entry["compute_capability"] = list(gpu.compute_capability)
    else:
        entry |= {"name": gpu.name, "memory_mib": gpu.memory_mib or 0,
                  "compute_capability": list(gpu.compute_capability)}
    # the board's PCI IDs, for mig-parted device filters (only where they differ from the table)
    if gpu.pci_device_id and (model is None or gpu.pci_device_id != model.pci_device_id):
        entry["pci_device_id"] = f"0x{gpu.pci_device_id:08X}"
    if gpu.pci_subsystem_id:
        entry["pci_subsystem_id"] = f"0x{gpu.pci_subsystem_id:08X}"
    if gpu.mig_mode is not None:
        if gpu.mig_mode.current == gpu.mig_mode.pending == 1:
            entry["mig"] = [m.profile for m in gpu.mig_devices]
        else:
            entry["mig_mode"] = {"current": gpu.mig_mode.current, "pending": gpu.mig_mode.pending}
    return entry


def raw_profiles() -> list[dict[str, Any]]:
    """nvmlDeviceGetGpuInstanceProfileInfo for every profile index: a query, valid with MIG off."""
    out = []
    for index in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        profiles = []
        for profile_index in range(0x20):
            try:
                info = pynvml.nvmlDeviceGetGpuInstanceProfileInfo(handle, profile_index)
            except pynvml.NVMLError as e:
                profiles.append({"index": profile_index, "error": str(e)})
                continue
            profiles.append({"index": profile_index, "id": info.id, "slices": info.sliceCount,
                             "instances": info.instanceCount, "multiprocessors": info.multiprocessorCount,
                             "copy": info.copyEngineCount, "decoder": info.decoderCount,
                             "encoder": info.encoderCount, "jpeg": info.jpegCount, "ofa": info.ofaCount,
                             "memory_mib": info.memorySizeMB})
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
        out.append({"index": index, "name": _text(pynvml.nvmlDeviceGetName(handle)),
                    "memory_total_bytes": memory.total, "memory_total_mib": memory.total // (1 << 20),
                    "max_mig_devices": pynvml.nvmlDeviceGetMaxMigDeviceCount(handle), "profiles": profiles})
    return out


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--raw")
    parser.add_argument("--machine-type-file", default="/sys/class/dmi/id/product_name")
    args = parser.parse_args()
    topology = read_topology(pynvml, machine_type=read_machine_type(args.machine_type_file))
    Path(args.out).write_text(yaml.safe_dump(fixture_of(topology), sort_keys=False))
    if args.raw:
        pynvml.nvmlInit()
        try:
            raw = {"driver_version": _text(pynvml.nvmlSystemGetDriverVersion()),
                   "cuda_driver_version": pynvml.nvmlSystemGetCudaDriverVersion(), "gpus": raw_profiles()}
        finally:
            pynvml.nvmlShutdown()
        Path(args.raw).write_text(json.dumps(raw, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
