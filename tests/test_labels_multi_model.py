"""Nodes with several GPU models, as GFD's ``newGPULabelers`` and MIG-INVALID labeler decide them.

Found by the differential run against GFD's own code (see test_gfd_vectors.py); these are the
rules spelled out with literal layouts and the labels GFD gives.
"""

from __future__ import annotations

from mig_labeler.labels.desired import labels_for_topology

from .conftest import STARTED_AT, labels_of, make_config, read

H100, H200, A100, A30 = "H100-SXM5-80GB", "H200", "A100-SXM4-40GB", "A30"
TIME_SLICED = {"timeSlicing": {"resources": [{"name": "nvidia.com/gpu", "replicas": 4}]}}


def node(*gpus: dict) -> dict:
    return {"driver_version": "550.54.15", "cuda_driver_version": 12040, "gpus": list(gpus)}


def gpu_block(labels: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if k.startswith("nvidia.com/gpu.")
            and k not in ("nvidia.com/gpu.mode", "nvidia.com/gpu.present", "nvidia.com/gpu.machine",
                          "nvidia.com/gpu.healthy-count")}


def test_a_model_with_full_gpus_wins_over_a_mig_enabled_model_with_as_many_gpus():
    labels = labels_of(node({"model": H100, "mig": []}, {"model": H200}), "none")
    assert gpu_block(labels) == {
        "nvidia.com/gpu.product": "NVIDIA-H200", "nvidia.com/gpu.count": "1", "nvidia.com/gpu.replicas": "1",
        "nvidia.com/gpu.sharing-strategy": "none", "nvidia.com/gpu.memory": "143771",
        "nvidia.com/gpu.family": "hopper", "nvidia.com/gpu.compute.major": "9", "nvidia.com/gpu.compute.minor": "0",
    }


def test_a_model_with_full_gpus_wins_even_over_a_mig_enabled_model_with_more_gpus():
    labels = labels_of(node({"model": A100, "count": 3, "mig": ["3g.20gb"]}, {"model": A30}), "mixed")
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-A30"
    assert labels["nvidia.com/gpu.count"] == "1"
    assert labels["nvidia.com/gpu.replicas"] == "1"
    assert labels["nvidia.com/mig-3g.20gb.count"] == "3"


def test_sharing_describes_the_full_gpus_model_on_a_mixed_node():
    labels = labels_of(node({"model": H100, "mig": ["7g.80gb"]}, {"model": H200}), "none", TIME_SLICED)
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-H200-SHARED"
    assert labels["nvidia.com/gpu.replicas"] == "4"
    assert labels["nvidia.com/gpu.sharing-strategy"] == "time-slicing"


def test_among_full_models_the_one_with_most_gpus_then_the_smallest_name_wins():
    assert labels_of(node({"model": H200}, {"model": H100, "count": 2}))["nvidia.com/gpu.product"] == \
        "NVIDIA-H100-80GB-HBM3"
    assert labels_of(node({"model": H200}, {"model": H100}))["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"


def test_when_every_gpu_is_mig_enabled_the_model_with_most_gpus_wins():
    labels = labels_of(node({"model": H200, "mig": []}, {"model": H100, "count": 2, "mig": []}))
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert labels["nvidia.com/gpu.replicas"] == "0"


def test_mig_invalid_names_the_first_mig_enabled_gpu_in_nvml_order():
    labels = labels_of(node({"model": A30, "mig": []}, {"model": A100, "mig": []}), "single")
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-A30-MIG-INVALID"
    swapped = labels_of(node({"model": A100, "mig": []}, {"model": A30, "mig": []}), "single")
    assert swapped["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-40GB-MIG-INVALID"


def test_mig_invalid_skips_full_gpus_that_come_first():
    labels = labels_of(node({"model": H200}, {"model": A30, "mig": ["4g.24gb"]}), "single")
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-A30-MIG-INVALID"
    assert labels["nvidia.com/gpu.family"] == "hopper"  # family/compute describe the full GPUs' model


def test_one_profile_on_two_models_names_the_first_parent_when_their_instances_are_alike():
    # 1c.3g.20gb has 19968 MiB on both A100-40GB boards: GFD names the first MIG device's parent.
    doc = node({"model": "A100-SXM4-40GB", "mig": ["1c.3g.20gb"]}, {"model": "A100-PCIE-40GB", "mig": ["1c.3g.20gb"]})
    assert labels_of(doc, "mixed")["nvidia.com/mig-1c.3g.20gb.product"] == "NVIDIA-A100-SXM4-40GB-MIG-1c.3g.20gb"


def test_one_profile_on_two_models_labels_the_smaller_instance_as_a_floor():
    doc = node({"model": H100, "mig": ["1g.10gb"]}, {"model": "A100-SXM4-80GB", "mig": ["1g.10gb"]})
    labels = labels_of(doc, "mixed")
    assert labels["nvidia.com/mig-1g.10gb.product"] == "NVIDIA-A100-SXM4-80GB-MIG-1g.10gb"
    assert labels["nvidia.com/mig-1g.10gb.memory"] == "9728"  # H100's has 9984


def test_gpus_of_one_model_with_different_memory_label_the_smallest():
    labels = labels_of(node({"model": H100, "memory_mib": 79360}, {"model": H100}))
    assert labels["nvidia.com/gpu.memory"] == "79360"  # GFD: the last GPU's, 81559


def test_the_warning_names_the_rule_that_chose_the_model():
    topology = read(node({"model": H100, "count": 2, "mig": []}, {"model": H200}))
    warnings = labels_for_topology(topology, make_config("none"), STARTED_AT).warnings
    assert any("describes NVIDIA H200 (a model with full GPUs first" in w for w in warnings)


def test_under_strategy_none_the_full_gpus_model_wins_as_in_gfds_new_gpu_labelers():
    """GFD's newGPULabelers (internal/lm/mig-strategy.go) is the same for none, single and mixed:
    labelers of MIG-enabled models first, full GPUs' after them, overriding. Under none the device
    plugin advertises the A30's MIG-enabled GPU as nvidia.com/gpu too; the labels still describe
    the T4, in GFD and here."""
    node = {"gpus": [{"model": "A30", "mig": ["2g.12gb", "2g.12gb"]},
                     {"name": "Tesla T4", "memory_mib": 15360, "compute_capability": [7, 5]}]}
    for strategy in ("none", "mixed"):
        labels = labels_of(node, strategy)
        assert (labels["nvidia.com/gpu.product"], labels["nvidia.com/gpu.count"]) == ("Tesla-T4", "1"), strategy
