"""`mig-labeler check`: the user's document's pods fail with the right codes, our examples pass,
and each rule behaves as the scheduler and the API server do."""

from __future__ import annotations

import json
import re
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


def check_json(*args: str, input_text: str | None = None, list_nodes: bool = True) -> tuple[int, dict]:
    argv = ["check", *args, "-o", "json", *(["--list-nodes"] if list_nodes else [])]
    result = run(*argv) if input_text is None else \
        __import__("click.testing").testing.CliRunner().invoke(__import__("mig_labeler.cli").cli.commands.cli,
                                                               argv, input=input_text)
    return result.exit_code, json.loads(result.stdout)


def test_json_names_node_groups_compactly_and_node_names_only_when_asked(tmp_path):
    """The output grows with the input, not with workloads × nodes: each workload names its groups of
    alike nodes; ``--list-nodes`` adds the names, the same ones the groups carry."""
    pods = tmp_path / "pods.yaml"
    pods.write_text(yaml.safe_dump_all([{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}"}, "spec": {
        "nodeSelector": {"nvidia.com/gpu.present": "true"},
        "containers": [{"name": "c", "image": "x", "resources": {"limits": {"nvidia.com/gpu": i}}}]}}
        for i in (1, 2)]))
    args = ["-f", str(pods), *POOL]
    result = run("check", *args, "-o", "json")
    _, listed = check_json(*args)
    grouped = json.loads(result.stdout)
    assert result.stdout == json.dumps(grouped, separators=(",", ":")) + "\n"  # compact: one line
    assert all(w["nodes_matching_count"] >= 2 for w in grouped["workloads"])
    names = {g["id"]: g["nodes"] for g in grouped["node_groups"]}
    for plain, full in zip(grouped["workloads"], listed["workloads"], strict=True):
        assert "nodes_matching" not in plain
        assert [n for g in plain["groups_matching"] for n in names[g]] == full["nodes_matching"]
        assert plain["nodes_matching_count"] == len(full["nodes_matching"])


# -- the user's document and our examples -----------------------------------------------------------
@pytest.mark.parametrize(("name", "expected"), [
    ("single-strategy", ["invalid-label-value"]),  # one problem per requirement, with one fix
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
    assert "use 'NVIDIA-A100-SXM4-40GB-MIG-3g.20gb'" in suggestions  # a value a node has: the fix works
    _, out = check_json("-f", str(SEED / "ml-pod-a100-80gb.yaml"), *POOL)
    assert out["workloads"][0]["problems"][0]["suggestion"] == "did you mean NVIDIA-A100-SXM4-80GB?"


def test_the_seeds_valid_pod_fits_and_its_autoscaler_is_broken_three_ways(capsys):
    code, out, _ = run_main(capsys, "check", "-f", str(SEED / "ml-pod-affinity.yaml"), "-f", str(SEED / "hpa.yaml"),
                            *POOL)
    assert code == 1  # the HPA: the API server would refuse it
    assert "Pod/ml-pod" in out and "fits 3 of 5 nodes: dgx-a100-2x3g:single, dgx-a100-7x1g:single, a30-mig-off" in out
    assert "HorizontalPodAutoscaler/gpu-scaler" in out and "no pod template" not in out
    _, doc = check_json("-f", str(SEED / "hpa.yaml"), *POOL)
    (hpa,) = doc["autoscalers"]
    assert [p["code"] for p in hpa["problems"]] == ["removed-api-version", "invalid-quantity",
                                                   "gpu-metric-needs-an-adapter"]
    fixes = [p["suggestion"] for p in hpa["problems"]]
    assert fixes[0] == "use apiVersion: autoscaling/v2 (same fields)"
    assert fixes[1].startswith('averageValue: "80"')
    assert "DCGM_FI_DEV_GPU_UTIL" in fixes[2] and "prometheus-adapter" in fixes[2]


def test_the_one_fix_for_the_seeds_single_strategy_selector_works(tmp_path):
    _, out = check_json("-f", str(SEED / "single-strategy.yaml"), *POOL)
    (problem,) = [p for p in out["workloads"][0]["problems"] if p["severity"] == "error"]
    fixed = problem["suggestion"].removeprefix("use ").strip("'")
    doc = yaml.safe_load((SEED / "single-strategy.yaml").read_text())
    doc["spec"]["nodeSelector"]["nvidia.com/gpu.product"] = fixed
    (tmp_path / "pod.yaml").write_text(yaml.safe_dump(doc))
    code, out = check_json("-f", str(tmp_path / "pod.yaml"), *POOL)
    assert code == 0 and out["workloads"][0]["nodes_matching"] == ["dgx-a100-2x3g:single"]


def test_a_mixed_pod_on_single_nodes_gets_every_true_cause_in_one_run(tmp_path):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "mixed"}, "spec": {
        "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "containers": [{"name": "c", "image": "x", "resources": {"limits": {"nvidia.com/mig-3g.20gb": 1}}}]}}
    (tmp_path / "pod.yaml").write_text(yaml.safe_dump(pod))
    code, out = check_json("-f", str(tmp_path / "pod.yaml"), "--fixture", "dgx-a100-2x3g:single")
    problems = out["workloads"][0]["problems"]
    assert code == 1 and [p["code"] for p in problems] == ["no-such-label-value", "resource-not-advertised"]
    assert "use the single MIG strategy" in problems[0]["message"]
    assert "NVIDIA-A100-SXM4-40GB-MIG-3g.20gb" in problems[0]["message"]
    assert "request nvidia.com/gpu" in problems[1]["suggestion"]


def test_did_you_mean_suggests_only_values_a_node_has():
    pod = {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"nodeSelector": {"nvidia.com/gpu.product": "H100-SXM"},
                                                             "containers": [{"name": "c"}]}}
    (workload,), _ = workloads(pod, "p")
    node = Node("a30", labels_of("a30-mig-off"), {"nvidia.com/gpu": 1})
    (problem,) = check(workload, [node]).problems
    assert "NVIDIA-H100" not in problem.suggestion
    assert problem.suggestion == "did you mean NVIDIA-A30?" or problem.suggestion.startswith("no node has a similar")


def test_nodes_left_out_are_named_with_the_requirement_they_fail():
    a100, a30 = labels_of("dgx-a100-7x1g", "single"), labels_of("a30-mig-off")
    nodes = [Node(f"a100-{i}", a100, {"nvidia.com/gpu": 56}) for i in range(2)] + \
            [Node(f"a30-{i}", a30, {"nvidia.com/gpu": 1}) for i in range(2)]
    pod = {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}], "affinity": {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "nvidia.com/gpu.family", "operator": "In", "values": ["ampere"]},
                                  {"key": "nvidia.com/mig.strategy", "operator": "In", "values": ["single"]}]}]}}}}}
    (workload,), _ = workloads(pod, "p")
    result = check(workload, nodes)
    assert result.nodes_matching == ["a100-0", "a100-1"]
    assert [(g.names, why) for g, why in result.excluded] == [
        (("a30-0", "a30-1"), "node affinity: nvidia.com/mig.strategy In ['single']: it has no such label")]


@pytest.mark.parametrize("make", [lambda d: (d / "empty.yaml", ""), lambda d: (d / "only-comments.yaml", "# x\n"),
                                  lambda d: (d / "sub", None)])
def test_input_without_workloads_is_an_error(capsys, tmp_path, make):
    path, text = make(tmp_path)
    if text is None:
        path.mkdir()
    else:
        path.write_text(text)
    code, _, err = run_main(capsys, "check", "-f", str(path), "--fixture", "a30-mig-off")
    assert code == EXIT_BAD_INPUT and "no workloads found in" in err


def test_a_fixture_with_an_unknown_strategy_says_so(capsys):
    code, _, err = run_main(capsys, "check", "-f", str(SEED / "ml-pod-affinity.yaml"), "--fixture",
                            "dgx-a100-mixed:weird")
    assert code == EXIT_BAD_INPUT and "unknown MIG strategy 'weird' after ':'" in err


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


def test_a_whole_cluster_is_one_paginated_list(kube_api, tmp_path, monkeypatch):
    from mig_labeler.kube import client as kube

    monkeypatch.setattr(kube, "LIST_PAGE", 3)  # a constant, not our logic: 8 nodes in pages of 3
    for i in range(7):
        kube_api.add_node(f"gpu-{i}", labels_of("dgx-a100-7x1g", "single"))
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kube_api.url)
    code, out = check_json("-f", str(SEED / "ml-pod-affinity.yaml"), "--nodes", "--kubeconfig", str(kubeconfig))
    assert sorted(out["nodes"]) == [*(f"gpu-{i}" for i in range(7)), "gpu-node-1"]
    assert kube_api.list_pages == 3
    assert all(r.query.get("limit") == ["3"] for r in kube_api.log if r.path == "/api/v1/nodes")


def test_a_missing_node_and_a_dead_server_are_named_as_check_spells_them(capsys, kube_api, tmp_path):
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kube_api.url)
    code, _, err = run_main(capsys, "check", "-f", str(SEED / "ml-pod-affinity.yaml"), "--node", "ghost",
                            "--kubeconfig", str(kubeconfig))
    assert code == 1 and 'node "ghost" not found: check --node' in err and "--node-name" not in err
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = write_kubeconfig(tmp_path / "dead", f"http://127.0.0.1:{port}")
    code, _, err = run_main(capsys, "check", "-f", str(SEED / "ml-pod-affinity.yaml"), "--nodes", "--kubeconfig",
                            str(dead), "--timeout", "1s")
    assert code == 1 and "LIST nodes: cannot reach the API server" in err and "GET nodes/:" not in err


def test_the_documented_commands_exit_as_the_docs_say(tmp_path, monkeypatch):
    """docs/check.md's example commands, run as written (from the repository root)."""
    monkeypatch.chdir(ROOT)
    config = next(d for d in yaml.safe_load_all((ROOT / "examples/time-slicing.yaml").read_text())
                  if d["kind"] == "ConfigMap")["data"]["config.yaml"]
    (tmp_path / "time-slicing-config.yaml").write_text(config)
    text = (ROOT / "docs" / "check.md").read_text()
    commands = [" ".join(c.replace("\\\n", " ").split())
                for c in re.findall(r"^\$ mig-labeler (check [^#]*?)#\s*exit 0", text, re.M)]
    assert len(commands) == 2
    for command in commands:
        args = [a if a != "time-slicing-config.yaml" else str(tmp_path / a) for a in command.split()]
        result = run(*args)
        assert result.exit_code == 0, (command, result.stdout)
