"""nvidia.com/gpu.clique from NVML's GPU fabric info, through the production reader and the fake,
exactly as gfd-reference §1.10 says."""

from __future__ import annotations

import pytest

from mig_labeler.errors import NvmlQueryFailed

from .conftest import binding_from, labels_of, read

CLUSTER = "7b968a6d-c8aa-45e1-9e07-e1e51be99c31"
OTHER = "0f4e2c1a-0000-4000-8000-00000000beef"


def b200(fabric=None, count=4):
    entry = {"model": "B200", "count": count}
    if fabric is not None:
        entry["fabric"] = fabric
    return entry


def node(*gpus, faults=()):
    return {"gpus": list(gpus), "faults": list(faults)}


def test_attached_gpus_in_one_clique_get_its_label():
    labels = labels_of(node(b200({"cluster_uuid": CLUSTER.upper(), "clique_id": 1})))
    assert labels["nvidia.com/gpu.clique"] == f"{CLUSTER}.1"  # canonical lowercase


@pytest.mark.parametrize("fabric", [
    {"cluster_uuid": CLUSTER, "clique_id": 1, "state": "in_progress"},
    {"cluster_uuid": CLUSTER, "clique_id": 1, "state": "not_started"},
    {"cluster_uuid": CLUSTER, "clique_id": 1, "status": "NVML_ERROR_NOT_READY"},
    {"cluster_uuid": "00000000-0000-0000-0000-000000000000", "clique_id": 1},
    None,  # no NVLink fabric: NOT_SUPPORTED
])
def test_gpus_not_attached_to_a_fabric_give_no_label(fabric):
    assert "nvidia.com/gpu.clique" not in labels_of(node(b200(fabric)))


def test_unattached_gpus_beside_attached_ones_are_ignored():
    doc = node(b200({"cluster_uuid": CLUSTER, "clique_id": 3}, count=2), b200(None, count=2))
    assert labels_of(doc)["nvidia.com/gpu.clique"] == f"{CLUSTER}.3"


def test_disagreeing_cliques_give_no_label_and_a_warning():
    from mig_labeler.config import Config
    from mig_labeler.labels.desired import labels_for_topology

    doc = node(b200({"cluster_uuid": CLUSTER, "clique_id": 1}, count=2), b200({"cluster_uuid": OTHER, "clique_id": 1},
                                                                                count=2))
    result = labels_for_topology(read(doc), Config(no_timestamp=True, fixture="x"), 0)
    assert "nvidia.com/gpu.clique" not in result.labels
    assert any("different fabric cliques" in w for w in result.warnings)


def test_without_the_v_symbol_the_older_call_answers():
    doc = node(b200({"cluster_uuid": CLUSTER, "clique_id": 2}),
               faults=[{"call": "nvmlDeviceGetGpuFabricInfoV", "error": "NVML_ERROR_FUNCTION_NOT_FOUND"}])
    fake = binding_from(doc)
    from mig_labeler.sources.nvml import read_topology

    topology = read_topology(fake.nvml)
    assert {g.fabric.clique_id for g in topology.gpus} == {2}
    assert fake.calls["nvmlDeviceGetGpuFabricInfo"] == 4


def test_any_other_fabric_error_fails_the_pass():
    doc = node(b200({"cluster_uuid": CLUSTER, "clique_id": 2}),
               faults=[{"call": "nvmlDeviceGetGpuFabricInfoV", "error": "NVML_ERROR_NO_PERMISSION", "gpu": 1}])
    from mig_labeler.sources.nvml import read_topology

    with pytest.raises(NvmlQueryFailed, match="nvmlDeviceGetGpuFabricInfoV on GPU 1"):
        read_topology(binding_from(doc).nvml)


@pytest.mark.parametrize(("fabric", "message"), [
    ({"cluster_uuid": "nope"}, "cluster_uuid must be a UUID"),
    ({"cluster_uuid": CLUSTER, "state": "done"}, "state must be one of"),
    ({"cluster_uuid": CLUSTER, "status": "BOGUS"}, r"is not an NVML_ERROR_\* name"),
])
def test_bad_fabric_entries_are_fixture_errors(fabric, message):
    from mig_labeler.errors import FixtureError
    from mig_labeler.simulated.fixture import parse_fixture

    with pytest.raises(FixtureError, match=message):
        parse_fixture(node(b200(fabric)))


GB200_TRAY = {  # the bundled fixture, as a whole map (strategy none): what GFD writes on such a tray
    "nvidia.com/cuda.driver.major": "580",
    "nvidia.com/cuda.driver.minor": "126",
    "nvidia.com/cuda.driver.rev": "09",
    "nvidia.com/cuda.driver-version.major": "580",
    "nvidia.com/cuda.driver-version.minor": "126",
    "nvidia.com/cuda.driver-version.revision": "09",
    "nvidia.com/cuda.driver-version.full": "580.126.09",
    "nvidia.com/cuda.runtime.major": "13",
    "nvidia.com/cuda.runtime.minor": "0",
    "nvidia.com/cuda.runtime-version.major": "13",
    "nvidia.com/cuda.runtime-version.minor": "0",
    "nvidia.com/cuda.runtime-version.full": "13.0",
    "nvidia.com/gpu.machine": "unknown",
    "nvidia.com/mig.capable": "true",
    "nvidia.com/mps.capable": "false",
    "nvidia.com/gpu.mode": "compute",
    "nvidia.com/gpu.present": "true",
    "nvidia.com/gpu.healthy-count": "4",
    "nvidia.com/gpu.product": "NVIDIA-GB200",
    "nvidia.com/gpu.count": "4",
    "nvidia.com/gpu.replicas": "1",
    "nvidia.com/gpu.sharing-strategy": "none",
    "nvidia.com/gpu.memory": "189471",
    "nvidia.com/gpu.family": "blackwell",
    "nvidia.com/gpu.compute.major": "10",
    "nvidia.com/gpu.compute.minor": "0",
    "nvidia.com/gpu.clique": "5a0e6b47-3c1d-4f8e-9b2a-7d64c1e0f391.388",
}


def test_the_bundled_gb200_tray_gets_the_whole_gfd_map_with_its_clique():
    assert labels_of("gb200-nvl72-tray", machine_type_file="/nonexistent") == GB200_TRAY


@pytest.mark.parametrize("strategy", ["single", "mixed"])
def test_the_gb200_tray_with_mig_disabled_has_no_mig_resources(strategy):
    labels = labels_of("gb200-nvl72-tray", strategy, machine_type_file="/nonexistent")
    assert labels == GB200_TRAY | {"nvidia.com/mig.strategy": strategy}


def test_gb200_mig_names_follow_its_189471_mib_total_not_b200s():
    # the same 1-slice memory (22528 MiB) is 1g.23gb on both; 46592 MiB is 47gb here (46.5 rounds up)
    # 3x 2g + 1g fills all 7 compute slices; the table stops at 2g, so the fake must not take 2 as the GPU's size
    layout = ["2g.47gb", "2g.47gb", "2g.47gb", "1g.23gb"]
    assert [m.profile for m in read(node({"model": "GB200", "mig": layout})).mig_devices] == layout
    labels = labels_of(node({"model": "GB200", "mig": ["2g.47gb"]}), "mixed", machine_type_file="/nonexistent")
    assert labels["nvidia.com/mig-2g.47gb.product"] == "NVIDIA-GB200-MIG-2g.47gb"
    assert labels["nvidia.com/mig-2g.47gb.memory"] == "46592"
