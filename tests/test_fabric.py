"""nvidia.com/gpu.clique from NVML's GPU fabric info, through the production reader and the fake,
exactly as gfd-reference §1.10 says."""

from __future__ import annotations

import pytest

from mig_labeler.errors import NvmlQueryFailed

from .conftest import fake_from, labels_of, read

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
    fake = fake_from(doc)
    from mig_labeler.sources.nvml import read_topology

    topology = read_topology(fake)
    assert {g.fabric.clique_id for g in topology.gpus} == {2}
    assert fake.calls["nvmlDeviceGetGpuFabricInfo"] == 4


def test_any_other_fabric_error_fails_the_pass():
    doc = node(b200({"cluster_uuid": CLUSTER, "clique_id": 2}),
               faults=[{"call": "nvmlDeviceGetGpuFabricInfoV", "error": "NVML_ERROR_UNKNOWN", "gpu": 1}])
    from mig_labeler.sources.nvml import read_topology

    with pytest.raises(NvmlQueryFailed, match="nvmlDeviceGetGpuFabricInfoV on GPU 1"):
        read_topology(fake_from(doc))


@pytest.mark.parametrize(("fabric", "message"), [
    ({"cluster_uuid": "nope"}, "cluster_uuid must be a UUID"),
    ({"cluster_uuid": CLUSTER, "state": "done"}, "state must be one of"),
    ({"cluster_uuid": CLUSTER, "status": "BOGUS"}, r"is not an NVML_ERROR_\* name"),
])
def test_bad_fabric_entries_are_fixture_errors(fabric, message):
    from mig_labeler.demo.fixture import parse_fixture
    from mig_labeler.errors import FixtureError

    with pytest.raises(FixtureError, match=message):
        parse_fixture(node(b200(fabric)))
