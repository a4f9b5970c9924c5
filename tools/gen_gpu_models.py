"""Build mig_labeler/data/gpu_models.json from the spec's mig-profiles.json.

Run from the repository root: ``python tools/gen_gpu_models.py [path/to/mig-profiles.json]``.
The output is committed; ``tests/test_gpu_models.py`` checks it still matches the spec when the
spec is present. Only rows with every number known are kept: the fake NVML must never invent data.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SPEC = Path(__file__).resolve().parents[1].parent / "shared" / "spec" / "mig-profiles.json"
OUT = Path(__file__).resolve().parents[1] / "mig_labeler" / "data" / "gpu_models.json"

# Short fixture keys for NVML names; the fixture format's own example uses H100-SXM5-80GB.
PREFERRED_KEYS = {"NVIDIA H100 80GB HBM3": "H100-SXM5-80GB", "NVIDIA H100 PCIe": "H100-PCIE-80GB"}
# PCI device IDs (device << 16 | vendor 0x10DE, as NVML's pciDeviceId and mig-parted's device-filter
# spell them) where the spec has none: the PCI ID database (Debian's pci.ids 2023.04.10: 20b0 A100
# SXM4 40GB, 20f1 A100 PCIe 40GB, 20b2 A100 SXM4 80GB, 20b5 A100 PCIe 80GB, 2331 H100 PCIe) and the
# GPU Operator's default mig-parted config, whose comments group them by product (0x2321 with
# "H100 NVL, H800 NVL"; 0x2342 with GH200).
PCI_DEVICE_IDS = {
    "NVIDIA A100-SXM4-40GB": "0x20B010DE",
    "NVIDIA A100-PCIE-40GB": "0x20F110DE",
    "NVIDIA A100-SXM4-80GB": "0x20B210DE",
    "NVIDIA A100 80GB PCIe": "0x20B510DE",
    "NVIDIA H100 PCIe": "0x233110DE",
    "NVIDIA H100 NVL": "0x232110DE",
    "NVIDIA GH200 480GB": "0x234210DE",
}
# Whole-GPU figures the spec leaves null, from a public reading of the real product. Used only where the
# spec has no value, and recorded in the table's "sources". GB200: nvidia-smi on a 4-GPU GB200 compute
# tray (OpenShift 4.21, driver 580.126.09, published in a public RHEL4NV/OpenShift GB200 demo
# write-up) shows "NVIDIA GB200" and 189471MiB on each GPU. That total agrees with the spec's
# production-board profile names: ceil(189471 MiB / 1 GiB) = 186 gives 1g.23gb (22528 MiB),
# 1g.47gb/2g.47gb (46592 MiB) and 7g.186gb, exactly what mig-parted#227 lists. The earlier boards
# of gpu-operator#1303 (1g.24gb, 7g.189gb) had a larger total; our reader computes names from
# whatever the real GPU reports, so those boards still get their own names.
PUBLIC_FULL_GPU = {
    "GB200 (HGX; production boards)": {
        "nvml_name": ["NVIDIA GB200"],
        "memory_total_mib": 189471,
        "source": "nvidia-smi on a GB200 compute tray, driver 580.126.09 (public OpenShift GB200 demo); "
                  "consistent with mig-parted#227's profile names",
    },
}
REQUIRED = ("gi_profile_id", "multiprocessors", "copy_engines", "decoders", "encoders", "jpeg", "ofa")


def model_key(nvml_name: str) -> str:
    return PREFERRED_KEYS.get(nvml_name) or nvml_name.removeprefix("NVIDIA ").replace(" ", "-")


def profile_memory(row: dict) -> int | None:
    if row.get("memory_mib") is not None:
        return int(row["memory_mib"])
    lgip = row.get("memory_mib_from_lgip")
    if isinstance(lgip, list):
        return int(lgip[0])
    return None if lgip is None else int(lgip)


def build_profile(row: dict) -> dict | None:
    memory = profile_memory(row)
    if memory is None or any(row.get(k) is None for k in REQUIRED):
        return None
    return {
        "name": row["name"],
        "gi_profile_index": row["nvml_gi_profile_index"]["value"],
        "gi_profile_id": row["gi_profile_id"],
        "slices_gi": row["slices_gi"],
        "slices_ci": row["slices_ci"],
        "memory_mib": memory,
        "multiprocessors": row["multiprocessors"],
        "engines": {
            "copy": row["copy_engines"],
            "decoder": row["decoders"],
            "encoder": row["encoders"],
            "jpeg": row["jpeg"],
            "ofa": row["ofa"],
        },
        "max_count": row.get("max_count") or 1,
    }


def build_ci_profiles(gpu: dict) -> list[dict]:
    rows = gpu.get("compute_instance_profiles", {}).get("rows", [])
    return [
        {
            "gi": r["gi"],
            "name": r["name"],
            "ci_slices": r["ci_slices"],
            "ci_profile_index": r["ci_profile_index"],
            "multiprocessors": r["multiprocessors"],
        }
        for r in rows
    ]


def full_gpu(gpu: dict) -> dict:
    """The spec's whole-GPU row, with PUBLIC_FULL_GPU filling only the values the spec leaves null."""
    full = dict(gpu["full_gpu"])
    for key, value in PUBLIC_FULL_GPU.get(gpu["model"], {}).items():
        if key != "source" and full.get(key) is None:
            full[key] = value
    return full


def build_models(spec: dict) -> dict:
    models: dict[str, dict] = {}
    for gpu in spec["gpus"]:
        full = full_gpu(gpu)
        names = [n for n in (full.get("nvml_name") or []) if n.startswith("NVIDIA ")]
        if not names or full.get("memory_total_mib") is None:
            continue
        major, minor = (int(x) for x in full["compute_capability"].split("."))
        profiles = [p for p in (build_profile(r) for r in gpu.get("profiles", [])) if p]
        # Profiles the GPU has but the spec has no numbers for: a prediction that needs one is
        # refused as "not measured", not as a layout the GPU cannot hold.
        unmeasured = [r["name"] for r in gpu.get("profiles", []) if build_profile(r) is None]
        for name in names:
            models[model_key(name)] = {
                "nvml_name": name,
                "memory_mib": full["memory_total_mib"],
                "compute_capability": [major, minor],
                "mig_capable": True,
                "max_mig_devices": full.get("max_mig_devices") or 7,
                "pci_class": "0x030200",
                "pci_device_id": PCI_DEVICE_IDS.get(name, (full.get("pci_device_id") or "").split(" ")[0]),
                "profiles": profiles,
                "unmeasured_profiles": unmeasured,
                "compute_instance_profiles": build_ci_profiles(gpu),
            }
    return dict(sorted(models.items()))


def main() -> int:
    spec_path = Path(sys.argv[1]) if len(sys.argv) > 1 else SPEC
    try:
        spec = json.loads(spec_path.read_text())
    except (OSError, ValueError) as e:
        print(f"make models: cannot read {spec_path} ({getattr(e, 'strerror', None) or e}). It is the shared spec "
              "beside the checkout (../shared/spec/mig-profiles.json); pass another path as "
              "'make models SPEC=PATH'. The committed table is unchanged.", file=sys.stderr)
        return 2
    table = {
        "source": "shared/spec/mig-profiles.json",
        "public_readings": {model: row["source"] for model, row in PUBLIC_FULL_GPU.items()},
        "models": build_models(spec),
    }
    OUT.write_text(json.dumps(table, indent=1) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
