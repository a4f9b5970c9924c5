"""gfd-reference §2.6 scenarios and the A100 examples, as whole label maps.

Each case runs the real NVML reader on the fake pynvml, then the real label rules, and compares
the complete map (not a subset), the way GFD's mig-strategy tests are tables.
"""

from __future__ import annotations

import pytest

from .conftest import healthy_count, labels_of

A100 = "A100-SXM4-40GB"
SYSTEM = {
    "nvidia.com/cuda.driver.major": "550",
    "nvidia.com/cuda.driver.minor": "54",
    "nvidia.com/cuda.driver.rev": "15",
    "nvidia.com/cuda.runtime.major": "12",
    "nvidia.com/cuda.runtime.minor": "4",
    "nvidia.com/cuda.driver-version.major": "550",
    "nvidia.com/cuda.driver-version.minor": "54",
    "nvidia.com/cuda.driver-version.revision": "15",
    "nvidia.com/cuda.driver-version.full": "550.54.15",
    "nvidia.com/cuda.runtime-version.major": "12",
    "nvidia.com/cuda.runtime-version.minor": "4",
    "nvidia.com/cuda.runtime-version.full": "12.4",
    "nvidia.com/gpu.machine": "NVIDIA-DGX-A100",
    "nvidia.com/mig.capable": "true",
    "nvidia.com/mps.capable": "false",
    "nvidia.com/gpu.mode": "compute",
    "nvidia.com/gpu.present": "true",
}
A100_FULL = {
    "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB",
    "nvidia.com/gpu.count": "8",
    "nvidia.com/gpu.replicas": "1",
    "nvidia.com/gpu.sharing-strategy": "none",
    "nvidia.com/gpu.memory": "40960",
    "nvidia.com/gpu.family": "ampere",
    "nvidia.com/gpu.compute.major": "8",
    "nvidia.com/gpu.compute.minor": "0",
}
A100_ALL_MIG = A100_FULL | {"nvidia.com/gpu.replicas": "0"}
INVALID = {
    "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB-MIG-INVALID",
    "nvidia.com/gpu.count": "0",
    "nvidia.com/gpu.replicas": "0",
    "nvidia.com/gpu.sharing-strategy": "",
    "nvidia.com/gpu.memory": "0",
}
SINGLE = {"nvidia.com/mig.strategy": "single"}
MIXED = {"nvidia.com/mig.strategy": "mixed"}


def block(resource: str, product: str, count: int, memory: int, sms: int, gi: int, ci: int,
          copy: int, dec: int, jpeg: int = 0, ofa: int = 0, replicas: int = 1, sharing: str = "none") -> dict:
    return {
        f"{resource}.product": product,
        f"{resource}.count": str(count),
        f"{resource}.replicas": str(replicas),
        f"{resource}.sharing-strategy": sharing,
        f"{resource}.memory": str(memory),
        f"{resource}.multiprocessors": str(sms),
        f"{resource}.slices.gi": str(gi),
        f"{resource}.slices.ci": str(ci),
        f"{resource}.engines.copy": str(copy),
        f"{resource}.engines.decoder": str(dec),
        f"{resource}.engines.encoder": "0",
        f"{resource}.engines.jpeg": str(jpeg),
        f"{resource}.engines.ofa": str(ofa),
    }


def mig_1g5gb(count: int) -> dict:
    return block("nvidia.com/mig-1g.5gb", "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", count, 4864, 14, 1, 1, 1, 0)


def mig_3g20gb(count: int) -> dict:
    return block("nvidia.com/mig-3g.20gb", "NVIDIA-A100-SXM4-40GB-MIG-3g.20gb", count, 19968, 42, 3, 3, 3, 2)


def node(*gpus: dict) -> dict:
    return {"driver_version": "550.54.15", "cuda_driver_version": 12040, "machine_type": "NVIDIA DGX A100",
            "gpus": list(gpus)}


EIGHT_FULL = node({"model": A100, "count": 8})
EIGHT_7X1G = node({"model": A100, "count": 8, "mig": ["1g.5gb"] * 7})
TWO_MIG_SIX_FULL = node({"model": A100, "count": 2, "mig": ["3g.20gb", "3g.20gb"]}, {"model": A100, "count": 6})
ONE_EMPTY = node({"model": A100, "count": 7, "mig": ["1g.5gb"] * 7}, {"model": A100, "mig": []})
TWO_PROFILES = node({"model": A100, "count": 4, "mig": ["1g.5gb"] * 7},
                    {"model": A100, "count": 4, "mig": ["3g.20gb", "3g.20gb"]})
A100_AND_T4 = node({"model": A100, "count": 2},
                   {"name": "Tesla T4", "memory_mib": 15360, "compute_capability": [7, 5], "mig_capable": False})
TWO_A100 = A100_FULL | {"nvidia.com/gpu.count": "2"}

SCENARIOS = [
    ("8 full, none", EIGHT_FULL, "none", SYSTEM | A100_FULL),
    ("8 full, single", EIGHT_FULL, "single", SYSTEM | A100_FULL | SINGLE),
    ("8 full, mixed", EIGHT_FULL, "mixed", SYSTEM | A100_FULL | MIXED),
    ("8 x 7x1g.5gb, none", EIGHT_7X1G, "none", SYSTEM | A100_ALL_MIG),
    ("8 x 7x1g.5gb, single", EIGHT_7X1G, "single", SYSTEM | A100_ALL_MIG | SINGLE | block(
        "nvidia.com/gpu", "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", 56, 4864, 14, 1, 1, 1, 0)),
    ("8 x 7x1g.5gb, mixed", EIGHT_7X1G, "mixed", SYSTEM | A100_ALL_MIG | MIXED | mig_1g5gb(56)),
    ("2 MIG + 6 full, none", TWO_MIG_SIX_FULL, "none", SYSTEM | A100_FULL),
    ("2 MIG + 6 full, single", TWO_MIG_SIX_FULL, "single", SYSTEM | A100_FULL | SINGLE | INVALID),
    ("2 MIG + 6 full, mixed", TWO_MIG_SIX_FULL, "mixed", SYSTEM | A100_FULL | MIXED | mig_3g20gb(4)),
    ("one MIG GPU empty, none", ONE_EMPTY, "none", SYSTEM | A100_ALL_MIG),
    ("one MIG GPU empty, single", ONE_EMPTY, "single", SYSTEM | A100_ALL_MIG | SINGLE | INVALID),
    ("one MIG GPU empty, mixed", ONE_EMPTY, "mixed", SYSTEM | A100_ALL_MIG | MIXED | mig_1g5gb(49)),
    ("two profiles, none", TWO_PROFILES, "none", SYSTEM | A100_ALL_MIG),
    ("two profiles, single", TWO_PROFILES, "single", SYSTEM | A100_ALL_MIG | SINGLE | INVALID),
    ("two profiles, mixed", TWO_PROFILES, "mixed",
     SYSTEM | A100_ALL_MIG | MIXED | mig_1g5gb(28) | mig_3g20gb(8)),
    # labels.md #1: deterministic, the model with the most GPUs (GFD: random winner)
    ("A100 x2 + T4, none", A100_AND_T4, "none", SYSTEM | TWO_A100 | {"nvidia.com/gpu.mode": "compute"}),
    ("A100 x2 + T4, single", A100_AND_T4, "single", SYSTEM | TWO_A100 | SINGLE),
    ("A100 x2 + T4, mixed", A100_AND_T4, "mixed", SYSTEM | TWO_A100 | MIXED),
]


@pytest.mark.parametrize(("topology", "strategy", "expected"), [pytest.param(*s[1:], id=s[0]) for s in SCENARIOS])
def test_scenario_gives_exactly_the_gfd_label_map(topology, strategy, expected):
    assert labels_of(topology, strategy) == expected | healthy_count(topology)


def test_a100_pcie_single_strategy_matches_nvidias_r460_example():
    """NVIDIA/cloud-native-docs mig-k8s.rst: A100-PCIE-40GB, driver 460.73.01, single, 7x 1g.5gb."""
    doc = {"driver_version": "460.73.01", "cuda_driver_version": 11020, "machine_type": "ProLiant DL380 Gen10",
           "gpus": [{"model": "A100-PCIE-40GB", "mig": ["1g.5gb"] * 7}]}
    expected = {
        "nvidia.com/cuda.driver.major": "460", "nvidia.com/cuda.driver.minor": "73",
        "nvidia.com/cuda.driver.rev": "01", "nvidia.com/cuda.runtime.major": "11",
        "nvidia.com/cuda.runtime.minor": "2", "nvidia.com/cuda.driver-version.major": "460",
        "nvidia.com/cuda.driver-version.minor": "73", "nvidia.com/cuda.driver-version.revision": "01",
        "nvidia.com/cuda.driver-version.full": "460.73.01", "nvidia.com/cuda.runtime-version.major": "11",
        "nvidia.com/cuda.runtime-version.minor": "2", "nvidia.com/cuda.runtime-version.full": "11.2",
        "nvidia.com/gpu.machine": "ProLiant-DL380-Gen10", "nvidia.com/mig.capable": "true",
        "nvidia.com/mps.capable": "false", "nvidia.com/gpu.mode": "compute", "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.family": "ampere", "nvidia.com/gpu.compute.major": "8", "nvidia.com/gpu.compute.minor": "0",
        "nvidia.com/mig.strategy": "single",
    } | block("nvidia.com/gpu", "NVIDIA-A100-PCIE-40GB-MIG-1g.5gb", 7, 4864, 14, 1, 1, 1, 0)
    assert labels_of(doc, "single") == expected | healthy_count(doc)


def test_a100_r450_mixed_example_uses_todays_names_for_old_memory_values():
    """cloud-native-docs index.rst, driver 450.80.02: no "NVIDIA " prefix, gpu.memory 40537 and
    2g.10gb memory 9984; GFD of that era named 3g by ceil(MB/1000) as 3g.21gb, go-nvlib's rule says 3g.20gb."""
    gpu = {"model": A100, "name": "A100-SXM4-40GB", "memory_mib": 40537,
           "mig": [{"profile": "3g.20gb", "attributes": {"memory_mib": 20096}},
                   {"profile": "2g.10gb", "attributes": {"memory_mib": 9984}},
                   {"profile": "1g.5gb"}]}
    labels = labels_of({"driver_version": "450.80.02", "cuda_driver_version": 11000, "gpus": [gpu]}, "mixed")
    assert labels["nvidia.com/gpu.product"] == "A100-SXM4-40GB"
    assert labels["nvidia.com/gpu.memory"] == "40537"
    assert labels["nvidia.com/mig-2g.10gb.memory"] == "9984"
    assert labels["nvidia.com/mig-3g.20gb.product"] == "A100-SXM4-40GB-MIG-3g.20gb"
    assert labels["nvidia.com/mig-3g.20gb.memory"] == "20096"
    assert labels["nvidia.com/gpu.machine"] == "unknown"  # no machine_type: DMI file unreadable
    assert not any("3g.21gb" in k for k in labels)


def test_no_gpu_node_gets_only_the_timestamp():
    assert labels_of("no-gpu", "mixed", no_timestamp=False) == {"nvidia.com/gfd.timestamp": "1700000000"}


def test_two_field_driver_version_gives_empty_revision():
    labels = labels_of({"driver_version": "455.06", "gpus": [{"model": "A30"}]})
    assert labels["nvidia.com/cuda.driver.minor"] == "06"
    assert labels["nvidia.com/cuda.driver.rev"] == ""
    assert labels["nvidia.com/cuda.driver-version.revision"] == ""


def test_time_slicing_shares_full_gpus_with_shared_suffix():
    sharing = {"timeSlicing": {"resources": [{"name": "nvidia.com/gpu", "replicas": 4}]}}
    labels = labels_of("a30-mig-off", "none", sharing)
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-A30-SHARED"
    assert labels["nvidia.com/gpu.replicas"] == "4"
    assert labels["nvidia.com/gpu.sharing-strategy"] == "time-slicing"


def test_rename_by_default_drops_the_shared_suffix():
    sharing = {"timeSlicing": {"renameByDefault": True, "resources": [{"name": "gpu", "replicas": 2}]}}
    assert labels_of("a30-mig-off", "none", sharing)["nvidia.com/gpu.product"] == "NVIDIA-A30"


def test_mixed_profile_sharing_applies_only_to_its_resource():
    sharing = {"timeSlicing": {"resources": [{"name": "mig-1g.5gb", "replicas": 3}]}}
    labels = labels_of(TWO_PROFILES, "mixed", sharing)
    assert labels["nvidia.com/mig-1g.5gb.replicas"] == "3"
    assert labels["nvidia.com/mig-1g.5gb.product"] == "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb-SHARED"
    assert labels["nvidia.com/mig-1g.5gb.sharing-strategy"] == "time-slicing"
    assert labels["nvidia.com/mig-3g.20gb.replicas"] == "1"
    assert labels["nvidia.com/mig-3g.20gb.sharing-strategy"] == "none"


def test_mps_with_mig_enabled_labels_mps_incapable_instead_of_failing():
    sharing = {"mps": {"resources": [{"name": "nvidia.com/gpu", "replicas": 2}]}}
    assert labels_of(EIGHT_7X1G, "single", sharing)["nvidia.com/mps.capable"] == "false"
    assert labels_of(EIGHT_FULL, "none", sharing)["nvidia.com/mps.capable"] == "true"


def test_all_mig_gpus_ignore_time_slicing_for_the_full_gpu_block():
    sharing = {"timeSlicing": {"resources": [{"name": "nvidia.com/gpu", "replicas": 4}]}}
    labels = labels_of(EIGHT_7X1G, "none", sharing)
    assert labels["nvidia.com/gpu.replicas"] == "0"
    assert labels["nvidia.com/gpu.sharing-strategy"] == "none"
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-40GB"


def test_pending_mig_mode_is_not_enabled():
    labels = labels_of({"gpus": [{"model": "H100-SXM5-80GB", "mig_mode": {"current": 0, "pending": 1}}]}, "single")
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert labels["nvidia.com/gpu.replicas"] == "1"


def test_machine_type_edges_are_trimmed_to_stay_valid():
    labels = labels_of({"machine_type": "To Be Filled By O.E.M.", "gpus": [{"model": "A30"}]})
    assert labels["nvidia.com/gpu.machine"] == "To-Be-Filled-By-O.E.M"


def test_graphics_class_gpu_is_labelled_graphics_and_mixed_classes_unknown():
    assert labels_of({"gpus": [{"model": "A30", "pci_class": "0x030000"}]})["nvidia.com/gpu.mode"] == "graphics"
    mixed = {"gpus": [{"model": "A30", "pci_class": "0x030000"}, {"model": "A30"}]}
    assert labels_of(mixed)["nvidia.com/gpu.mode"] == "unknown"


def test_gpu_present_label_can_be_disabled():
    assert "nvidia.com/gpu.present" not in labels_of("a30-mig-off", gpu_present_label=False)
