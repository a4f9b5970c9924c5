"""DRA nodes (--resource-api): only the hardware's labels, the mode told by the GPU Operator's label
or the DRA driver's ResourceSlices, nvidia.com/gpu.clique left to the manager that owns it, and the
driver's ResourceSlices held against NVML."""

from __future__ import annotations

import logging

import pytest
from click.testing import CliRunner

from mig_labeler.cli.commands import cli
from mig_labeler.labels.desired import labels_for_topology
from mig_labeler.labels.dra import describes_device_plugin

from .conftest import STARTED_AT, labels_of, make_config, make_daemon, read, write_fixture
from .fakes.dra_slices import resource_slices

NODE = "gpu-node-1"
FIXTURES = ["dgx-h100-7x1g", "dgx-a100-mixed", "hgx-a100-80gb-mixed", "a30-mig-off", "gb200-nvl72-tray"]
DEVICE_PLUGIN_ONLY = {"nvidia.com/mig.strategy", "nvidia.com/gpu.replicas", "nvidia.com/gpu.sharing-strategy",
                      "nvidia.com/mps.capable"}


def dra_labels_of(doc_or_name, strategy: str = "none") -> dict[str, str]:
    """What a pass publishes (labels_for_topology, validation included) with --resource-api dra."""
    return labels_for_topology(read(doc_or_name), make_config(strategy, resource_api="dra"), STARTED_AT).labels


@pytest.mark.parametrize("fixture", FIXTURES)
@pytest.mark.parametrize("strategy", ["none", "single", "mixed"])
def test_dra_labels_are_the_hardware_labels_with_their_device_plugin_values(fixture, strategy):
    """Whatever --mig-strategy says: the whole GPUs as strategy none labels them, less every key
    that names a device-plugin resource."""
    dra = dra_labels_of(fixture, strategy)
    whole = labels_of(fixture, "none")
    assert dra == {k: v for k, v in whole.items() if not describes_device_plugin(k)}
    assert not DEVICE_PLUGIN_ONLY & set(dra) and not [k for k in dra if k.startswith("nvidia.com/mig-")]
    for key in ("nvidia.com/gpu.product", "nvidia.com/gpu.count", "nvidia.com/gpu.memory", "nvidia.com/gpu.family",
                "nvidia.com/cuda.driver-version.full", "nvidia.com/gpu.present", "nvidia.com/mig.capable"):
        assert dra[key] == whole[key], key


def test_a_dynamic_mig_layout_change_changes_no_dra_label():
    """On a DRA node the DRA driver makes MIG devices per claim: the labels must not follow them."""
    seven = dra_labels_of({"gpus": [{"model": "A100-SXM4-40GB", "count": 8, "mig": ["1g.5gb"] * 7}]}, "mixed")
    mixed = dra_labels_of({"gpus": [{"model": "A100-SXM4-40GB", "count": 8, "mig": ["3g.20gb", "2g.10gb"]}]}, "mixed")
    assert seven == mixed


def test_the_labels_command_takes_the_mode():
    result = CliRunner().invoke(cli, ["labels", "--fixture", "dgx-a100-mixed", "--mig-strategy", "mixed",
                                      "--resource-api", "dra", "--no-timestamp"])
    assert result.exit_code == 0
    assert "nvidia.com/gpu.product=NVIDIA-A100-SXM4-40GB\n" in result.stdout
    assert "mig.strategy" not in result.stdout and "nvidia.com/mig-" not in result.stdout


def sample(daemon, name: str, **labels: str) -> float | None:
    return daemon.metrics.registry.get_sample_value(name, labels or None)


def test_the_operator_label_makes_a_dra_node_and_the_log_and_metric_say_why(kube_api, caplog):
    kube_api.add_node(NODE, {"nvidia.com/gpu.deploy.dra-driver": "true"}, manager="gpu-operator")
    daemon = make_daemon(kube_api, "dgx-h100-7x1g", strategy="mixed")
    with caplog.at_level(logging.INFO, logger="mig_labeler"):
        assert daemon.run_pass().ok
    labels = kube_api.labels(NODE)
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3" and "nvidia.com/mig.strategy" not in labels
    assert not [k for k in labels if k.startswith("nvidia.com/mig-")]
    assert sample(daemon, "mig_labeler_resource_api", mode="dra", reason="label") == 1
    assert "labelling for dra (nvidia.com/gpu.deploy.dra-driver=true)" in caplog.text


def test_the_driver_s_resource_slices_make_a_dra_node_and_others_do_not(kube_api):
    topology = read("dgx-h100-7x1g")
    kube_api.add_node(NODE)
    kube_api.add_node("other-node")
    kube_api.resource_slices = resource_slices(topology, "other-node")  # another node's slices
    kube_api.resource_slices += [{**s, "spec": {**s["spec"], "driver": "gpu.example.com"}}
                                 for s in resource_slices(topology, NODE)]  # another driver's
    daemon = make_daemon(kube_api, "dgx-h100-7x1g", strategy="mixed")
    assert daemon.run_pass().ok
    assert kube_api.labels(NODE)["nvidia.com/mig.strategy"] == "mixed"
    assert sample(daemon, "mig_labeler_resource_api", mode="device-plugin", reason="default") == 1
    listed = [e for e in kube_api.log if e.resource == "resourceslices"]
    assert listed[0].query["fieldSelector"] == [f"spec.nodeName={NODE},spec.driver=gpu.nvidia.com"]

    kube_api.resource_slices = resource_slices(topology, NODE)
    daemon = make_daemon(kube_api, "dgx-h100-7x1g", strategy="mixed")
    assert daemon.run_pass().ok
    assert "nvidia.com/mig.strategy" not in kube_api.labels(NODE)
    assert sample(daemon, "mig_labeler_resource_api", mode="dra", reason="resourceslices") == 1
    assert sample(daemon, "mig_labeler_dra_disagreements") == 0
    assert not [e for e in kube_api.events if e["reason"] == "DRADevicesDisagree"]


def test_resource_slices_are_listed_once_per_interval_not_per_pass(kube_api):
    kube_api.add_node(NODE)
    daemon = make_daemon(kube_api, "a30-mig-off", strategy="none")
    for _ in range(5):
        assert daemon.run_pass().ok
    assert len([e for e in kube_api.log if e.resource == "resourceslices"]) == 1


def test_no_right_to_list_resource_slices_leaves_the_label_to_decide(kube_api, caplog):
    kube_api.add_node(NODE)
    kube_api.forbidden.add(("list", "resourceslices"))
    daemon = make_daemon(kube_api, "a30-mig-off", strategy="none")
    with caplog.at_level(logging.WARNING, logger="mig_labeler"):
        assert daemon.run_pass().ok and daemon.run_pass().ok
    assert caplog.text.count("cannot list ResourceSlices") == 1
    assert sample(daemon, "mig_labeler_resource_api", mode="device-plugin", reason="default") == 1


def test_a_cluster_without_dra_is_a_device_plugin_node(kube_api):
    kube_api.add_node(NODE)
    kube_api.dra_served = False
    daemon = make_daemon(kube_api, "a30-mig-off", strategy="none")
    assert daemon.run_pass().ok
    assert sample(daemon, "mig_labeler_resource_api", mode="device-plugin", reason="default") == 1


DGX_H100 = {"machine_type": "DGX H100", "gpus": [{"model": "H100-SXM5-80GB", "count": 8}]}  # full GPUs


def test_a_dgx_h100_whose_slices_agree_with_nvml_gives_no_event(kube_api, tmp_path):
    kube_api.add_node(NODE, {"nvidia.com/gpu.deploy.dra-driver": "true"})
    kube_api.resource_slices = resource_slices(read(DGX_H100), NODE)
    daemon = make_daemon(kube_api, write_fixture(tmp_path / "dgx-h100.yaml", DGX_H100), strategy="none")
    assert daemon.run_pass().ok
    assert not [e for e in kube_api.events if e["reason"] == "DRADevicesDisagree"]
    assert sample(daemon, "mig_labeler_dra_disagreements") == 0
    assert sample(daemon, "mig_labeler_dra_devices", source="dra", type="gpu") == 8


@pytest.mark.parametrize(("change", "expected"), [
    ({"drop_gpu": 3}, "NVML sees GPU 3 ("),
    ({"product": "NVIDIA H100 PCIe"}, "the DRA driver says 'NVIDIA H100 PCIe', NVML 'NVIDIA H100 80GB HBM3'"),
])
def test_resource_slices_that_disagree_with_nvml_give_one_event(kube_api, tmp_path, change, expected):
    kube_api.add_node(NODE, {"nvidia.com/gpu.deploy.dra-driver": "true"})
    kube_api.resource_slices = resource_slices(read(DGX_H100), NODE, **change)
    daemon = make_daemon(kube_api, write_fixture(tmp_path / "dgx-h100.yaml", DGX_H100), strategy="none")
    for _ in range(3):
        assert daemon.run_pass().ok
    said = [e for e in kube_api.events if e["reason"] == "DRADevicesDisagree"]
    assert len(said) == 1 and said[0]["type"] == "Warning" and expected in said[0]["message"], said
    assert sample(daemon, "mig_labeler_dra_disagreements") >= 1


def test_static_mig_devices_are_compared_per_gpu_and_profile(kube_api):
    topology = read("dgx-a100-mixed")
    slices = resource_slices(topology, NODE)
    slices[0]["spec"]["devices"] = slices[0]["spec"]["devices"][1:]  # one MIG device missing
    kube_api.add_node(NODE, {"nvidia.com/gpu.deploy.dra-driver": "true"})
    kube_api.resource_slices = slices
    daemon = make_daemon(kube_api, "dgx-a100-mixed", strategy="none")
    assert daemon.run_pass().ok
    said = [e for e in kube_api.events if e["reason"] == "DRADevicesDisagree"]
    assert len(said) == 1 and "MIG devices" in said[0]["message"] and "in NVML" in said[0]["message"]
    assert sample(daemon, "mig_labeler_dra_devices", source="nvml", type="mig") == \
        sample(daemon, "mig_labeler_dra_devices", source="dra", type="mig") + 1


CLIQUE = "nvidia.com/gpu.clique"


def test_gpu_clique_owned_by_another_manager_is_never_written_nor_removed(kube_api, caplog):
    """The DRA driver's ComputeDomain plugin writes gpu.clique with a merge patch (an Update)."""
    kube_api.add_node(NODE, {CLIQUE: "other-cluster.7"}, manager="compute-domain-kubelet-plugin")
    daemon = make_daemon(kube_api, "gb200-nvl72-tray", strategy="none")
    with caplog.at_level(logging.INFO, logger="mig_labeler"):
        for _ in range(3):
            assert daemon.run_pass().ok
    assert kube_api.labels(NODE)[CLIQUE] == "other-cluster.7"
    assert CLIQUE not in kube_api.nodes[NODE].owners.get(("mig-labeler", "Apply"), set())
    assert caplog.text.count(f"leaving {CLIQUE} to compute-domain-kubelet-plugin") == 1
    assert kube_api.labels(NODE)["nvidia.com/gpu.product"] == "NVIDIA-GB200"


def test_gpu_clique_nobody_else_owns_is_ours_and_a_later_owner_takes_it(kube_api):
    kube_api.add_node(NODE)
    daemon = make_daemon(kube_api, "gb200-nvl72-tray", strategy="none")
    assert daemon.run_pass().ok
    ours = kube_api.labels(NODE)[CLIQUE]
    assert CLIQUE in kube_api.nodes[NODE].owners[("mig-labeler", "Apply")]
    kube_api.edit_labels(NODE, {CLIQUE: "other-cluster.7"}, manager="compute-domain-kubelet-plugin")
    for _ in range(2):
        assert daemon.run_pass().ok
    assert kube_api.labels(NODE)[CLIQUE] == "other-cluster.7" != ours
    assert CLIQUE not in kube_api.nodes[NODE].owners[("mig-labeler", "Apply")]


GPU_POD = ('{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"nodeSelector": '
           '{"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"}, "containers": [{"name": "c", "image": "x", '
           '"resources": {"limits": {"nvidia.com/gpu": 1}}}]}}')


def test_check_tells_a_gpu_request_on_a_dra_node_to_claim_the_device(tmp_path):
    """The selector matches (the DRA node keeps gpu.product); the request names a resource no
    device plugin advertises there, and the fix is a ResourceClaim or KEP-5004's mapping."""
    pod = tmp_path / "pod.json"
    pod.write_text(GPU_POD)
    result = CliRunner().invoke(cli, ["check", "-f", str(pod), "--fixture", "dgx-a100-mixed:dra"])
    assert result.exit_code == 1
    assert "error resource-on-dra-node" in result.stdout
    assert "the 1 selected nodes allocate GPUs through DRA: no device plugin advertises nvidia.com/gpu" in result.stdout
    assert "ResourceClaim of the DeviceClass gpu.nvidia.com" in result.stdout and "KEP-5004" in result.stdout
    fits = CliRunner().invoke(cli, ["check", "-f", str(pod), "--fixture", "dgx-a100-mixed:none"])
    assert fits.exit_code == 0, fits.stdout


def test_check_knows_a_live_or_saved_dra_node_by_the_operator_label(tmp_path):
    pod = tmp_path / "pod.json"
    pod.write_text(GPU_POD)
    labels = tmp_path / "labels.json"
    labels.write_text('{"dra-node": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB", "nvidia.com/gpu.count": "8", '
                      '"nvidia.com/gpu.deploy.dra-driver": "true"}}')
    result = CliRunner().invoke(cli, ["check", "-f", str(pod), "--labels", str(labels)])
    assert result.exit_code == 1 and "resource-on-dra-node" in result.stdout, result.stdout


def test_diff_plans_what_run_would_publish_on_a_node_the_operator_marks_dra(kube_api):
    from mig_labeler.daemon.diff import label_diff

    kube_api.add_node(NODE, {"nvidia.com/gpu.deploy.dra-driver": "true"}, manager="gpu-operator")
    lines, _ = label_diff(make_config("mixed", fixture="dgx-a100-mixed", node_name=NODE), STARTED_AT,
                          host=kube_api.url, timeout=30)
    assert "+ nvidia.com/gpu.product=NVIDIA-A100-SXM4-40GB" in lines
    assert not [line for line in lines if "mig.strategy" in line or "nvidia.com/mig-" in line]


def test_a_merge_patch_of_the_value_we_hold_leaves_gpu_clique_ours(kube_api):
    """As kube-apiserver records it (checked on a real one): an Update that changes nothing takes
    no ownership, so there is nobody to yield to."""
    kube_api.add_node(NODE)
    daemon = make_daemon(kube_api, "gb200-nvl72-tray", strategy="none")
    assert daemon.run_pass().ok
    ours = kube_api.labels(NODE)[CLIQUE]
    kube_api.edit_labels(NODE, {CLIQUE: ours}, manager="compute-domain-kubelet-plugin")
    assert daemon.run_pass().ok
    assert kube_api.labels(NODE)[CLIQUE] == ours
    assert [m for (m, _), keys in kube_api.nodes[NODE].owners.items() if CLIQUE in keys] == ["mig-labeler"]
