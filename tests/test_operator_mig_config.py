"""--mig-parted-configmap NAMESPACE/auto: the config mig-manager really applies on this node (the
ClusterPolicy's custom config, else the node's generated <node>-mig-config, else the operator's
default), and a change of an applied config's content (mig-manager does not apply it again)."""

from __future__ import annotations

from .conftest import make_daemon, wait_until, watching_daemon, write_fixture
from .test_mig_config_verify import APPLIED, NODE, ask, events, sample

NAMESPACE = "gpu-operator"
AUTO = (NAMESPACE, "auto", "config.yaml")
GENERATED = f"{NODE}-mig-config"
TWO_3G = {"gpus": [{"model": "A100-SXM4-40GB", "mig": ["3g.20gb", "3g.20gb"]}]}


def config(balanced: str) -> str:
    """A mig-parted config whose all-balanced is ``balanced`` (a flow mapping of profiles)."""
    return (f"version: v1\nmig-configs:\n  all-balanced: [{{devices: all, mig-enabled: true, "
            f"mig-devices: {balanced}}}]\n  all-disabled: [{{devices: all, mig-enabled: false}}]\n")


MATCHES = config("{3g.20gb: 2}")  # what the node holds
DIFFERS = config("{2g.10gb: 1, 1g.5gb: 2, 3g.20gb: 1}")  # the static table's all-balanced of another era


def operator(kube_api, generated: str | None = MATCHES, default: str = DIFFERS, custom: str | None = None) -> None:
    kube_api.gpu_operator_installed = True
    kube_api.put_configmap(NAMESPACE, "default-mig-parted-config", {"config.yaml": default})
    if generated is not None:  # what mig-manager publishes (labels and owner as createNodeConfigMap sets them)
        kube_api.put_configmap(NAMESPACE, GENERATED, {"config.yaml": "# DO NOT EDIT\n" + generated})
    if custom is not None:
        kube_api.put_configmap(NAMESPACE, "custom-mig-parted-configs", {"config.yaml": custom})
        kube_api.cluster_policies["cluster-policy"] = {
            "apiVersion": "nvidia.com/v1", "kind": "ClusterPolicy",
            "metadata": {"name": "cluster-policy", "uid": "uid-cp"},
            "spec": {"migManager": {"enabled": True, "config": {"name": "custom-mig-parted-configs"}}}}


def one_pass(kube_api, tmp_path):
    daemon = make_daemon(kube_api, write_fixture(tmp_path / "node.yaml", TWO_3G), mig_parted_configmap=AUTO)
    daemon.start_up()
    assert daemon.run_pass().ok
    return daemon


def test_the_node_is_verified_against_its_generated_config_not_the_default(kube_api, tmp_path):
    operator(kube_api)
    ask(kube_api, "all-balanced")
    daemon = one_pass(kube_api, tmp_path)
    assert kube_api.labels(NODE)[APPLIED] == "all-balanced"
    assert sample(daemon, "mig_labeler_mig_parted_source", configmap=f"{NAMESPACE}/{GENERATED}",
                  source="generated") == 1
    assert not events(kube_api, "MIGLayoutMismatch")


def test_a_custom_config_named_by_the_cluster_policy_wins(kube_api, tmp_path):
    operator(kube_api, generated=DIFFERS, custom=MATCHES)  # a generated one left behind must not be used
    ask(kube_api, "all-balanced")
    daemon = one_pass(kube_api, tmp_path)
    assert kube_api.labels(NODE)[APPLIED] == "all-balanced"
    assert sample(daemon, "mig_labeler_mig_parted_source", configmap=f"{NAMESPACE}/custom-mig-parted-configs",
                  source="custom") == 1


def test_without_a_generated_config_the_default_is_used_and_says_so(kube_api, tmp_path):
    operator(kube_api, generated=None, default=DIFFERS)
    ask(kube_api, "all-balanced")
    daemon = one_pass(kube_api, tmp_path)
    assert APPLIED not in kube_api.labels(NODE)
    assert sample(daemon, "mig_labeler_mig_parted_source", configmap=f"{NAMESPACE}/default-mig-parted-config",
                  source="default") == 1
    (mismatch,) = events(kube_api, "MIGLayoutMismatch")
    assert "2g.10gb" in mismatch[1]
    assert mismatch[1].endswith("(compared with ConfigMap gpu-operator/default-mig-parted-config, the operator's "
                                "default, used when mig-manager finds no profiles to generate from)")


def test_without_the_operator_crd_there_is_no_custom_config(kube_api, tmp_path):
    operator(kube_api)
    kube_api.gpu_operator_installed = False  # 404 page not found for nvidia.com/v1
    ask(kube_api, "all-balanced")
    one_pass(kube_api, tmp_path)
    assert kube_api.labels(NODE)[APPLIED] == "all-balanced"


def test_a_generated_config_that_appears_later_is_taken_and_a_content_change_is_drift(kube_api, tmp_path):
    operator(kube_api, generated=None, default=MATCHES)
    ask(kube_api, "all-balanced")
    node_file = write_fixture(tmp_path / "node.yaml", TWO_3G)
    with watching_daemon(kube_api, node_file, watches=3, mig_parted_configmap=AUTO) as daemon:
        assert kube_api.labels(NODE)[APPLIED] == "all-balanced"
        assert sample(daemon, "mig_labeler_mig_parted_source", configmap=f"{NAMESPACE}/default-mig-parted-config",
                      source="default") == 1
        # mig-manager starts and publishes this node's generated config: resolved again, taken
        kube_api.put_configmap(NAMESPACE, GENERATED, {"config.yaml": MATCHES})
        wait_until(lambda: sample(daemon, "mig_labeler_mig_parted_source", configmap=f"{NAMESPACE}/{GENERATED}",
                                  source="generated") == 1)
        assert kube_api.labels(NODE)[APPLIED] == "all-balanced"
        # someone edits the content of the applied name: mig-manager will not apply it again
        kube_api.put_configmap(NAMESPACE, GENERATED, {"config.yaml": DIFFERS})
        wait_until(lambda: events(kube_api, "MIGConfigContentChanged"))
        (drift,) = events(kube_api, "MIGConfigContentChanged")
        assert drift[0] == "Warning" and "all-balanced" in drift[1] and GENERATED in drift[1]
        assert "label the node with a new nvidia.com/mig.config name" in drift[1]
        wait_until(lambda: APPLIED not in kube_api.labels(NODE))


def test_without_the_right_to_read_the_operators_configmaps_auto_is_one_line_and_exit_2(capsys, kube_api, kubeconfig):
    from .test_cli import run_main

    operator(kube_api)
    kube_api.forbidden.add(("get", "configmaps"))
    code, _, err = run_main(capsys, "run", "--oneshot", "--node-name", NODE, "--kubeconfig", kubeconfig,
                            "--fixture", "a30-mig-off", "--mig-parted-configmap", "gpu-operator/auto")
    assert code == 2 and "Traceback" not in err, err
    assert (f"cannot read ConfigMap {NAMESPACE}/{GENERATED} (--mig-parted-configmap gpu-operator/auto): " in err
            and "Grant get and watch on configmaps in gpu-operator (manifests/components/mig-parted-operator)" in err)
    assert kube_api.writes() == []
