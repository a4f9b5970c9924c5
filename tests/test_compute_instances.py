"""Several compute instances in one GPU instance (``nvidia-smi mig -cci`` inside one GI).

The fixture's ``gi: <group>`` places MIG devices in one GPU instance; the fake answers GI and CI
IDs, profile lookups and names as real NVML does, and the production reader runs above it.
"""

from __future__ import annotations

import pytest

from mig_labeler.errors import FixtureError
from mig_labeler.simulated.fixture import parse_fixture

from .conftest import labels_of, read

A100 = "A100-SXM4-40GB"
SHARED_3G = [{"profile": "1c.3g.20gb", "gi": "a"}] * 3


def a100(*mig: object) -> dict:
    return {"gpus": [{"model": A100, "mig": list(mig)}]}


def test_three_1c_in_one_3g_plus_a_1g_me_fit_on_an_a100_40gb():
    (gpu,) = read(a100(*SHARED_3G, "1g.5gb+me")).gpus
    assert [m.profile for m in gpu.mig_devices] == ["1c.3g.20gb"] * 3 + ["1g.5gb+me"]
    assert len({m.gpu_instance_id for m in gpu.mig_devices[:3]}) == 1
    assert [m.compute_instance_id for m in gpu.mig_devices[:3]] == [0, 1, 2]
    assert gpu.mig_devices[3].gpu_instance_id != gpu.mig_devices[0].gpu_instance_id
    assert all(m.attributes.memory_mib == 19968 for m in gpu.mig_devices[:3])  # the GI's memory, shared


def test_compute_instances_of_one_gi_get_gfds_labels_under_mixed():
    labels = labels_of(a100(*SHARED_3G, "1g.5gb+me"), "mixed")
    assert labels["nvidia.com/mig-1c.3g.20gb.count"] == "3"
    assert labels["nvidia.com/mig-1c.3g.20gb.product"] == "NVIDIA-A100-SXM4-40GB-MIG-1c.3g.20gb"
    assert labels["nvidia.com/mig-1c.3g.20gb.slices.gi"] == "3"
    assert labels["nvidia.com/mig-1c.3g.20gb.slices.ci"] == "1"
    assert labels["nvidia.com/mig-1c.3g.20gb.memory"] == "19968"
    assert labels["nvidia.com/mig-1g.5gb.me.count"] == "1"


def test_one_gi_full_of_one_ci_profile_is_valid_under_single():
    labels = labels_of(a100(*SHARED_3G), "single")
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-40GB-MIG-1c.3g.20gb"
    assert labels["nvidia.com/gpu.count"] == "3"


def test_the_same_layout_without_groups_is_refused_as_it_needs_three_gpu_instances():
    with pytest.raises(FixtureError, match="holds at most 2 3g.20gb"):
        parse_fixture(a100("1c.3g.20gb", "1c.3g.20gb", "1c.3g.20gb", "1g.5gb+me"))


def test_a_fourth_compute_instance_does_not_fit_in_a_3g():
    with pytest.raises(FixtureError, match=r"GPU instance 'a' \(3g.20gb\) has 3 compute slices; adding 1c.3g.20gb"):
        parse_fixture(a100(*SHARED_3G, {"profile": "1c.3g.20gb", "gi": "a"}))


def test_compute_instances_of_one_gi_share_its_profile():
    with pytest.raises(FixtureError, match="cannot share GPU instance 1 with a 3g.20gb"):
        parse_fixture(a100({"profile": "1c.3g.20gb", "gi": 1}, {"profile": "1c.4g.20gb", "gi": 1}))


def test_mixed_ci_sizes_fill_one_gi():
    (gpu,) = read(a100({"profile": "2c.3g.20gb", "gi": 0}, {"profile": "1c.3g.20gb", "gi": 0})).gpus
    assert [m.profile for m in gpu.mig_devices] == ["2c.3g.20gb", "1c.3g.20gb"]


def test_a_gi_group_must_be_a_name_or_number():
    with pytest.raises(FixtureError, match=r"mig\[0\].gi must be a GPU instance name or number"):
        parse_fixture(a100({"profile": "1c.3g.20gb", "gi": [1]}))


def test_a_pci_class_with_a_programming_interface_byte_is_refused():
    with pytest.raises(FixtureError, match="programming-interface byte"):
        parse_fixture({"gpus": [{"model": "A30", "pci_class": "030201"}]})
