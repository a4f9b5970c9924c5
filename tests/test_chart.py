"""The Helm chart: lint, schema, the same objects as the kustomize overlays field by field, the
admission policy's version fence, and every rendered object valid for Kubernetes."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.manifests_check import render, schema_problems

from .k8s_tools import tool

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "deployments" / "helm" / "mig-labeler"
HELM_LABELS = {"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance",
               "app.kubernetes.io/version"}
ALL_ON = ["--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.prometheusRule.enabled=true",
          "--set", "grafanaDashboard.enabled=true"]


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("helm"), *args], capture_output=True, text=True, check=check)


def template(*args: str) -> list[dict[str, Any]]:
    out = helm("template", "mig-labeler", str(CHART), "--namespace", "mig-labeler", *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def without_helm_labels(obj: dict[str, Any]) -> dict[str, Any]:
    labels = obj["metadata"].get("labels") or {}
    for key in HELM_LABELS:
        labels.pop(key, None)
    return obj


def by_identity(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def test_helm_lint_strict_passes_with_everything_on():
    result = helm("lint", "--strict", str(CHART), *ALL_ON, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("overlay", "value"), [
    ("base", "migStrategy=none"), ("mig-single", "migStrategy=single"), ("mig-mixed", "migStrategy=mixed"),
    ("nodefeature", "sink=nodefeature"), ("file", "sink=file"),
    ("mig-parted-api", "migStrategy=mixed,migPartedConfig.configMap.namespace=gpu-operator,"
                       "migPartedConfig.configMap.name=default-mig-parted-config"),
    ("mig-parted-file", "migStrategy=mixed,migPartedConfig.localConfigMap.name=mig-parted-config"),
    ("mig-parted-operator", "migStrategy=mixed,migPartedConfig.configMap.namespace=gpu-operator,"
                            "migPartedConfig.configMap.name=auto,gpuOperatorClient=true"),
    ("dra", "resourceApi=dra"),
])
def test_the_chart_and_the_kustomize_overlay_describe_the_same_deployment(overlay, value):
    """Field by field; only Helm's own labels differ, and the Namespace, which Helm does not own
    (helm install --create-namespace). Each sink's RBAC, environment, volumes and security context
    included: the per-mode RBAC test in test_manifests holds the overlays to what the code calls."""
    tool("kubectl")
    path = ROOT / "manifests" / ("base" if overlay == "base" else f"overlays/{overlay}")
    kustomized = by_identity([o for o in render(path) if o["kind"] != "Namespace"])
    charted = by_identity([without_helm_labels(o) for o in template("--set", value)])
    assert sorted(charted) == sorted(kustomized)
    for identity, obj in kustomized.items():
        assert charted[identity] == obj, identity


def test_a_newcomers_install_command_renders():
    kinds = sorted(o["kind"] for o in template("--set", "migStrategy=mixed"))
    assert kinds == ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet", "Role", "RoleBinding",
                     "ServiceAccount", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]


@pytest.mark.parametrize(("value", "message"), [
    ("migStrategy=foo", "at '/migStrategy': value must be one of 'none', 'single', 'mixed'"),
    ("sleepInterval=-5s", "at '/sleepInterval'"),
    ("failOnInitError=maybe", "at '/failOnInitError': got string, want boolean"),
    ("metrics.port=70000", "at '/metrics/port': maximum"),
    ("nodeRestriction.enabled=yes", "at '/nodeRestriction/enabled': got string, want boolean"),
    ("sink=nfd", "at '/sink': value must be one of 'node', 'nodefeature', 'file'"),
    ("outputFile=features.d/gfd", "at '/outputFile'"),
    ("outputFile=/etc/kubernetes/node-feature-discovery/features.d/", "at '/outputFile'"),
    ("migPartedConfig.configMap.name=a,migPartedConfig.configMap.namespace=g,migPartedConfig.localConfigMap.name=b",
     "migPartedConfig: set configMap (the GPU Operator's, read through the API) or localConfigMap"),
    ("migPartedConfig.configMap.name=default-mig-parted-config", "migPartedConfig.configMap.namespace is empty"),
    ("migPartedConfig.configMap.namespace=gpu-operator", "migPartedConfig.configMap.name is empty"),
    ("migPartedConfig.configMap.namespace=GPU", "at '/migPartedConfig/configMap/namespace'"),
    ("migPartedConfig.stuckAfter=15", "at '/migPartedConfig/stuckAfter'"),
])
def test_bad_values_fail_before_anything_reaches_the_cluster(value, message):
    result = helm("template", "x", str(CHART), "--set", value, check=False)
    assert result.returncode != 0 and message in result.stderr, result.stderr


def test_the_admission_policy_needs_kubernetes_1_30_or_to_be_turned_off():
    old = helm("template", "x", str(CHART), "--kube-version", "1.29.0", check=False)
    assert old.returncode != 0
    assert "upgrade the cluster, or set nodeRestriction.enabled=false" in old.stderr
    kinds = {o["kind"] for o in template("--kube-version", "1.29.0", "--set", "nodeRestriction.enabled=false")}
    assert "ValidatingAdmissionPolicy" not in kinds and "DaemonSet" in kinds


@pytest.mark.parametrize("sink", ["nodefeature", "file"])
def test_sinks_without_node_writes_need_no_admission_policy_and_install_on_1_25(sink):
    objects = template("--kube-version", "1.25.0", "--set", f"sink={sink}")
    assert "ValidatingAdmissionPolicy" not in {o["kind"] for o in objects}
    node_rules = next(o for o in objects if o["kind"] == "ClusterRole")["rules"][0]
    assert node_rules["resources"] == ["nodes"] and node_rules["verbs"] == ["get", "watch"]


def test_the_file_sink_mounts_the_directory_of_its_output_file():
    objects = template("--set", "sink=file", "--set", "outputFile=/var/lib/nfd/features.d/mig-labeler")
    spec = next(o for o in objects if o["kind"] == "DaemonSet")["spec"]["template"]["spec"]
    container = spec["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MIG_LABELER_SINKS"] == "file" and env["GFD_OUTPUT_FILE"] == "/var/lib/nfd/features.d/mig-labeler"
    mount = next(m for m in container["volumeMounts"] if m["name"] == "features-d")
    volume = next(v for v in spec["volumes"] if v["name"] == "features-d")
    assert mount["mountPath"] == volume["hostPath"]["path"] == "/var/lib/nfd/features.d"
    assert spec["securityContext"]["runAsUser"] == 0
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


@pytest.mark.parametrize("values", [
    "migPartedConfig.configMap.namespace=gpu-operator,migPartedConfig.configMap.name=default-mig-parted-config,"
    "migPartedConfig.configMap.key=cfg.yaml,migPartedConfig.stuckAfter=30m",
    "migPartedConfig.localConfigMap.name=my-mig-config,migPartedConfig.localConfigMap.key=cfg.yaml",
])
def test_the_mig_parted_values_render_valid_objects_that_the_cli_accepts(values):
    objects = template("--set", values)
    for obj in objects:
        assert list(schema_problems(obj)) == [], obj["kind"]
    (ds,) = [o for o in objects if o["kind"] == "DaemonSet"]
    container = ds["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    if "configMap.name" in values:
        assert env["MIG_LABELER_MIG_PARTED_CONFIGMAP"] == "gpu-operator/default-mig-parted-config"
        assert env["MIG_LABELER_MIG_PARTED_CONFIGMAP_KEY"] == "cfg.yaml"
        assert env["MIG_LABELER_MIG_CONFIG_STUCK_AFTER"] == "30m"
        (role,) = [o for o in objects if o["kind"] == "Role" and o["metadata"]["namespace"] == "gpu-operator"]
        assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"],
                                  "resourceNames": ["default-mig-parted-config"], "verbs": ["get", "watch"]}]
    else:
        assert env["MIG_LABELER_MIG_PARTED_CONFIG"] == "/etc/mig-parted/cfg.yaml"
        mount = next(m for m in container["volumeMounts"] if m["name"] == "mig-parted-config")
        volume = next(v for v in ds["spec"]["template"]["spec"]["volumes"] if v["name"] == "mig-parted-config")
        assert mount["mountPath"] == "/etc/mig-parted" and volume["configMap"]["name"] == "my-mig-config"
    from mig_labeler.cli import cli

    # every variable the chart sets is one that run reads
    read = {v for p in cli.commands["run"].params for v in ([p.envvar] if isinstance(p.envvar, str) else
                                                            list(p.envvar or []))}
    assert {name for name in env if name.startswith("MIG_LABELER_")} <= read


@pytest.mark.parametrize("sink", ["node", "nodefeature", "file"])
def test_every_rendered_builtin_object_is_valid_kubernetes_for_each_sink(sink):
    for obj in template("--set", f"sink={sink}"):
        assert list(schema_problems(obj)) == [], (sink, obj["kind"])


def test_every_rendered_builtin_object_is_valid_kubernetes():
    for obj in template(*ALL_ON):
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # the Prometheus Operator's CRDs: no schema offline
        assert list(schema_problems(obj)) == [], obj["kind"]


def test_the_monitoring_pack_renders_behind_its_switches():
    objects = template(*ALL_ON)
    kinds = [o["kind"] for o in objects]
    assert {"Service", "ServiceMonitor", "PrometheusRule"} <= set(kinds)
    dashboard = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-dashboard"))
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    rule = next(o for o in objects if o["kind"] == "PrometheusRule")
    assert rule["spec"] == yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    assert "ServiceMonitor" not in [o["kind"] for o in template()]


def test_an_own_config_map_and_port_are_wired_through():
    objects = template("--set", "config.name=my-config", "--set", "config.default=a100.yaml",
                       "--set", "metrics.port=9400")
    ds = next(o for o in objects if o["kind"] == "DaemonSet")
    container = ds["spec"]["template"]["spec"]["containers"][0]
    # an existing ConfigMap (the device plugin's own) holds named configs: each node picks its own
    assert container["args"] == ["run", "--config-file-srcdir=/etc/mig-labeler", "--default-config=a100.yaml",
                                 "--fallback-strategies=named,single", "--metrics-port=9400"]
    assert ds["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] == "my-config"
    assert not [o for o in objects if o["kind"] == "ConfigMap"]


TIME_SLICING = "version: v1\nsharing:\n  timeSlicing:\n    resources:\n      - {{name: nvidia.com/gpu, replicas: {}}}\n"


def test_several_configs_render_per_node_selection_that_the_cli_runs(tmp_path):
    """The device-plugin chart's time-slicing values (config.map with two configs, config.default)
    render the directory, the default and the fallbacks; run takes those arguments, and a node
    labelled nvidia.com/device-plugin.config=a100 gets a100's config, another the default."""
    for name, replicas in (("any", 4), ("a100", 2)):
        (tmp_path / f"{name}.yaml").write_text(TIME_SLICING.format(replicas))
    objects = template("--set-file", f"config.map.any={tmp_path / 'any.yaml'}", "--set-file",
                       f"config.map.a100={tmp_path / 'a100.yaml'}", "--set", "config.default=any")
    ds = next(o for o in objects if o["kind"] == "DaemonSet")
    args = ds["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["run", "--config-file-srcdir=/etc/mig-labeler", "--default-config=any",
                    "--fallback-strategies=named,single"]
    (config_map,) = [o for o in objects if o["kind"] == "ConfigMap"]
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    for key, text in config_map["data"].items():
        (mounted / key).write_text(text)
    import click

    from mig_labeler.cli.commands import run
    from mig_labeler.cli.config_from_options import GivenOptions
    from mig_labeler.node_configs import choose_config

    with click.Context(run) as ctx:
        run.parse_args(ctx, [a.replace("/etc/mig-labeler", str(mounted)) for a in args[1:]])
        options = GivenOptions.of(ctx)
    configs = options.read().node_configs
    assert configs is not None and configs.default == "any"
    for label, replicas in (("a100", 2), ("", 4)):
        name = choose_config(label, {p.name for p in mounted.iterdir()}, configs.default, configs.fallbacks)
        shared = options.read_with(str(mounted / name)).sharing.resources
        assert [(r.name, r.replicas) for r in shared] == [("nvidia.com/gpu", replicas)]
