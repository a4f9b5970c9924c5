"""`mig-labeler check`: the user's document's pods fail with the right codes, our examples pass,
and each rule behaves as the scheduler and the API server do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mig_labeler.check import Node, check, expression_matches, workloads
from mig_labeler.errors import EXIT_BAD_INPUT

from .conftest import labels_of, write_kubeconfig
from .test_cli import run, run_main

ROOT = Path(__file__).resolve().parents[1]
SEED = Path(__file__).parent / "fixtures" / "seed"
POOL = ["--fixture", "dgx-a100-2x3g:single", "--fixture", "dgx-a100-7x1g:single", "--fixture", "dgx-a100-mixed:mixed",
        "--fixture", "hgx-a100-80gb-mixed:mixed", "--fixture", "a30-mig-off:none"]


def codes(result) -> list[str]:
    return [p.code for p in result.problems if p.severity == "error"]


def check_json(*args: str, input_text: str | None = None) -> tuple[int, dict]:
    result = run("check", *args, "-o", "json") if input_text is None else \
        __import__("click.testing").testing.CliRunner().invoke(__import__("mig_labeler.cli").cli.cli,
                                                               ["check", *args, "-o", "json"], input=input_text)
    return result.exit_code, json.loads(result.stdout)


# -- the user's document and our examples -----------------------------------------------------------
@pytest.mark.parametrize(("name", "expected"), [
    ("single-strategy", ["invalid-label-value", "no-such-label-value"]),
    ("mixed-strategy", ["no-such-label-value"]),
    ("shared-gpu-pod", ["fractional-gpu", "fractional-gpu"]),
    ("ml-pod-a100-80gb", ["no-such-label-value"]),
])
def test_the_seed_documents_pods_fail_with_their_codes(name, expected):
    code, out = check_json("-f", str(SEED / f"{name}.yaml"), *POOL)
    assert code == 1
    (workload,) = out["workloads"]
    assert not workload["fits"]
    assert [p["code"] for p in workload["problems"] if p["severity"] == "error"] == expected


def test_the_seeds_suggestions_name_the_real_values():
    _, out = check_json("-f", str(SEED / "single-strategy.yaml"), *POOL)
    suggestions = [p["suggestion"] for p in out["workloads"][0]["problems"]]
    assert "use 'A100-SXM4-40GB-MIG-3g.20gb'" in suggestions
    assert "did you mean NVIDIA-A100-SXM4-40GB-MIG-3g.20gb?" in suggestions
    _, out = check_json("-f", str(SEED / "ml-pod-a100-80gb.yaml"), *POOL)
    assert out["workloads"][0]["problems"][0]["suggestion"] == "did you mean NVIDIA-A100-SXM4-80GB?"


def test_the_seeds_valid_pod_and_skipped_objects(capsys):
    code, out, _ = run_main(capsys, "check", "-f", str(SEED / "ml-pod-affinity.yaml"), "-f", str(SEED / "hpa.yaml"),
                            *POOL)
    assert code == 0
    assert "Pod/ml-pod" in out and "fits 3 of 5 nodes: dgx-a100-2x3g:single, dgx-a100-7x1g:single, a30-mig-off" in out
    assert "skipped " in out and "HorizontalPodAutoscaler/gpu-scaler: no pod template" in out


def test_our_examples_all_fit(tmp_path):
    examples = sorted(str(p) for p in (ROOT / "examples").glob("*.yaml") if p.name != "time-slicing.yaml")
    code, out = check_json(*(a for e in examples for a in ("-f", e)), *POOL)
    assert code == 0 and len(out["workloads"]) == 4, json.dumps(out, indent=1)
    # the time-slicing example brings its own config: a node with it
    sliced = ROOT / "examples" / "time-slicing.yaml"
    config = next(d for d in yaml.safe_load_all(sliced.read_text()) if d["kind"] == "ConfigMap")
    (tmp_path / "config.yaml").write_text(config["data"]["config.yaml"])
    code, out = check_json("-f", str(sliced), "--fixture", "a30-mig-off",
                           "--config-file", str(tmp_path / "config.yaml"))
    assert code == 0 and out["workloads"][0]["nodes_matching"] == ["a30-mig-off"]


# -- the rules --------------------------------------------------------------------------------------
def node(name: str, labels: dict, resources: dict) -> Node:
    return Node(name, labels, resources)


def pod(spec: dict, kind: str = "Pod") -> object:
    (found,), _ = workloads({"kind": kind, "metadata": {"name": "p"}, "spec": spec}, "t#1")
    return found


A100_SINGLE = node("single", labels_of("dgx-a100-2x3g", "single"), {"nvidia.com/gpu": 16})
A100_MIXED = node("mixed", labels_of("dgx-a100-mixed", "mixed"),
                  {"nvidia.com/mig-1g.5gb": 10, "nvidia.com/mig-2g.10gb": 6, "nvidia.com/mig-3g.20gb": 4,
                   "nvidia.com/mig-4g.20gb": 2, "nvidia.com/mig-7g.40gb": 2})
NODES = [A100_SINGLE, A100_MIXED]


def gpu_pod(resources: dict, **spec) -> object:
    return pod({"containers": [{"name": "c", "resources": {"limits": resources}}], **spec})


@pytest.mark.parametrize(("op", "values", "labels", "matches"), [
    ("In", ["a", "b"], {"k": "b"}, True), ("In", ["a"], {}, False),
    ("NotIn", ["a"], {}, True), ("NotIn", ["a"], {"k": "a"}, False),
    ("Exists", [], {"k": ""}, True), ("DoesNotExist", [], {"k": "x"}, False),
    ("Gt", ["7"], {"k": "8"}, True), ("Gt", ["8"], {"k": "8"}, False), ("Lt", ["8"], {"k": "x"}, False),
])
def test_match_expressions_as_the_scheduler_evaluates_them(op, values, labels, matches):
    assert expression_matches({"key": "k", "operator": op, "values": values}, labels) is matches


def test_terms_are_ored_and_expressions_anded():
    terms = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "nvidia.com/mig.strategy", "operator": "In", "values": ["mixed"]},
                              {"key": "nvidia.com/gpu.count", "operator": "Gt", "values": ["7"]}]},
        {"matchExpressions": [{"key": "nvidia.com/mig.strategy", "operator": "In", "values": ["none"]}]}]}}}
    result = check(gpu_pod({"nvidia.com/mig-1g.5gb": 1}, affinity=terms), NODES)
    assert result.nodes_matching == ["mixed"] and not codes(result)


def test_a_mig_resource_on_a_single_strategy_node_says_how_to_ask_for_it():
    result = check(gpu_pod({"nvidia.com/mig-3g.20gb": 1},
                           nodeSelector={"nvidia.com/mig.strategy": "single"}), NODES)
    (problem,) = [p for p in result.problems if p.severity == "error"]
    assert problem.code == "resource-not-advertised"
    assert "request nvidia.com/gpu and select nvidia.com/gpu.product ending in -MIG-3g.20gb" in problem.suggestion


def test_a_full_gpu_on_an_all_mig_mixed_node_names_what_is_there():
    result = check(gpu_pod({"nvidia.com/gpu": 1}, nodeSelector={"nvidia.com/mig.strategy": "mixed"}), NODES)
    assert codes(result) == ["resource-not-advertised"]
    assert "nvidia.com/mig-3g.20gb" in result.problems[0].suggestion


def test_a_profile_the_model_does_not_have():
    node80 = node("a100-80", labels_of("hgx-a100-80gb-mixed", "mixed"), {"nvidia.com/mig-2g.20gb": 4})
    result = check(gpu_pod({"nvidia.com/mig-2g.10gb": 1}), [node80])
    assert codes(result) == ["mig-profile-unknown-for-model"]
    assert "A100-SXM4-80GB" in result.problems[0].message and "2g.20gb" in result.problems[0].message


def test_demand_is_the_app_sum_or_the_largest_init_container():
    spec = {"initContainers": [{"name": "i", "resources": {"limits": {"nvidia.com/mig-3g.20gb": 5}}}],
            "containers": [{"name": f"c{i}", "resources": {"limits": {"nvidia.com/mig-3g.20gb": 2}}} for i in range(2)]}
    result = check(pod(spec), NODES)
    assert codes(result) == ["insufficient-resource"] and "needs 5" in result.problems[0].message
    spec["initContainers"][0]["restartPolicy"] = "Always"  # a native sidecar adds to the app sum: 5 + 4
    assert "needs 9" in check(pod(spec), NODES).problems[0].message
    spec["initContainers"][0]["resources"]["limits"]["nvidia.com/mig-3g.20gb"] = 0
    assert check(pod(spec), NODES).nodes_matching == ["mixed"]


@pytest.mark.parametrize(("resources", "code"), [
    ({"limits": {"nvidia.com/gpu": 0.5}}, "fractional-gpu"),
    ({"limits": {"nvidia.com/gpu": "500m"}}, "fractional-gpu"),
    ({"requests": {"nvidia.com/gpu": 1}}, "requests-not-equal-limits"),
    ({"requests": {"nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": 2}}, "requests-not-equal-limits"),
])
def test_what_the_api_server_rejects_in_gpu_requests(resources, code):
    result = check(pod({"containers": [{"name": "c", "resources": resources}]}), NODES)
    assert code in codes(result) and not result.fits


def test_parts_that_each_match_but_together_rule_out_every_node():
    result = check(gpu_pod({"nvidia.com/gpu": 1}, nodeSelector={"nvidia.com/mig.strategy": "single",
                                                                "nvidia.com/mig-3g.20gb.count": "4"}), NODES)
    assert codes(result) == ["selector-excludes-all-nodes"]


def test_unknown_keys_ours_are_reported_others_syntax_only():
    result = check(gpu_pod({"nvidia.com/gpu": 1}, nodeSelector={"nvidia.com/gpu.memory.total": "40960"}), NODES)
    assert codes(result)[0] == "no-such-label-key"
    other = check(gpu_pod({"nvidia.com/gpu": 1}, nodeSelector={"example.com/rack": "r1"}), NODES)
    assert "no-such-label-key" not in codes(other)
    bad = check(gpu_pod({"nvidia.com/gpu": 1}, nodeSelector={"example.com/rack": "r 1"}), NODES)
    assert "invalid-label-value" in codes(bad)


def test_a_toleration_silences_the_warning_and_fitting_pods_fit():
    spec = {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}
    result = check(gpu_pod({"nvidia.com/gpu": 2}, **spec), NODES)
    assert result.fits and result.problems == [] and result.nodes_matching == ["single"]


def test_every_kind_with_a_pod_template_is_found():
    spec = {"containers": [{"name": "c"}]}
    docs = {"kind": "List", "items": [
        {"kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": {"spec": spec}}},
        {"kind": "CronJob", "metadata": {"name": "c"}, "spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}},
        {"kind": "PodTemplate", "metadata": {"name": "t"}, "template": {"spec": spec}},
        {"kind": "TrainingJob", "metadata": {"name": "crd"}, "spec": {"template": {"spec": spec}}},
        {"kind": "Service", "metadata": {"name": "s"}, "spec": {}}]}
    found, skipped = workloads(docs, "x#1")
    assert [(w.kind, w.spec_path) for w in found] == [
        ("Deployment", "spec.template.spec"), ("CronJob", "spec.jobTemplate.spec.template.spec"),
        ("PodTemplate", "template.spec"), ("TrainingJob", "spec.template.spec")]
    assert skipped == ["Service/s"]


# -- inputs -----------------------------------------------------------------------------------------
def test_unreadable_input_is_exit_2_naming_the_file_and_document(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Pod\nmetadata: {name: a}\n---\nkind: [unclosed\n")
    code, _, err = run_main(capsys, "check", "-f", str(bad), "--fixture", "a30-mig-off")
    assert code == EXIT_BAD_INPUT and f"{bad}: document 2 is not valid YAML" in err.strip().splitlines()[-1]
    code, _, err = run_main(capsys, "check", "-f", str(tmp_path / "nope.yaml"), "--fixture", "a30-mig-off")
    assert code == EXIT_BAD_INPUT and "cannot read" in err


def test_standard_input_and_saved_labels_for_a_fleet(tmp_path):
    fleet = {"n1": labels_of("dgx-a100-7x1g", "single"), "n2": labels_of("a30-mig-off", "none")}
    (tmp_path / "fleet.json").write_text(json.dumps(fleet))
    text = yaml.safe_dump({"kind": "Pod", "metadata": {"name": "p"},
                           "spec": {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": 7}}}]}})
    code, out = check_json("-f", "-", "--labels", str(tmp_path / "fleet.json"), input_text=text)
    assert code == 0 and out["workloads"][0]["nodes_matching"] == ["n1"]  # 56 MIG devices vs 1 A30


def test_live_cluster_nodes_through_the_kubeconfig(kube_api, tmp_path):
    kube_api.add_node("gpu-a", labels_of("dgx-a100-7x1g", "single"))
    kube_api.nodes["gpu-a"].allocatable = {"nvidia.com/gpu": "56", "cpu": "128"}
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kube_api.url)
    spec = str(SEED / "ml-pod-affinity.yaml")
    code, out = check_json("-f", spec, "--nodes", "-l", "nvidia.com/gpu.present=true", "--kubeconfig", str(kubeconfig))
    assert code == 0 and out["nodes"] == ["gpu-a"] and out["workloads"][0]["nodes_matching"] == ["gpu-a"]
    code, out = check_json("-f", spec, "--node", "gpu-node-1", "--kubeconfig", str(kubeconfig))
    assert code == 1 and out["workloads"][0]["problems"][0]["code"] == "no-such-label-key"
