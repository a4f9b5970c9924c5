"""`run --oneshot` and `diff` through the CLI against the fake API server via a kubeconfig."""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

from mig_labeler.cli import main

from .conftest import FOREIGN

NODE = "gpu-node-1"


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def test_run_oneshot_publishes_and_exits_0(capsys, kube_api, kubeconfig):
    code, _, err = run_main(capsys, "run", "--oneshot", "--node-name", NODE, "--kubeconfig", kubeconfig,
                            "--fixture", "dgx-a100-7x1g", "--mig-strategy", "single")
    assert code == 0, err
    labels = kube_api.labels(NODE)
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"
    assert {k: labels[k] for k in FOREIGN} == FOREIGN
    assert "labels updated on node gpu-node-1" in err


def test_node_name_from_env_and_kubeconfig_from_env(capsys, kube_api, kubeconfig, monkeypatch):
    monkeypatch.setenv("NODE_NAME", NODE)
    monkeypatch.setenv("KUBECONFIG", kubeconfig)
    code, _, _ = run_main(capsys, "run", "--oneshot", "--fixture", "a30-mig-off")
    assert code == 0 and kube_api.labels(NODE)["nvidia.com/gpu.product"] == "NVIDIA-A30"


def test_diff_shows_the_plan_and_writes_nothing(capsys, kube_api, kubeconfig):
    run_main(capsys, "run", "--oneshot", "--node-name", NODE, "--kubeconfig", kubeconfig, "--fixture",
             "dgx-a100-7x1g", "--mig-strategy", "mixed", "--no-timestamp")
    writes = len(kube_api.writes())
    code, out, _ = run_main(capsys, "diff", "--node-name", NODE, "--kubeconfig", kubeconfig, "--fixture",
                            "dgx-a100-mixed", "--mig-strategy", "mixed", "--no-timestamp")
    assert code == 0
    assert len(kube_api.writes()) == writes
    assert "~ nvidia.com/mig-1g.5gb.count: '56' -> '10'" in out.splitlines()
    assert "+ nvidia.com/mig-3g.20gb.count=4" in out.splitlines()
    assert out.splitlines()[-1].startswith("# ")


def test_diff_with_nothing_to_do_says_so(capsys, kube_api, kubeconfig):
    args = ["--node-name", NODE, "--kubeconfig", kubeconfig, "--fixture", "a30-mig-off", "--no-timestamp"]
    run_main(capsys, "run", "--oneshot", *args)
    code, out, _ = run_main(capsys, "diff", *args)
    assert code == 0 and out.splitlines()[0] == "no changes"


def test_missing_node_name_exits_2(capsys, kubeconfig, monkeypatch):
    monkeypatch.delenv("NODE_NAME", raising=False)
    code, _, err = run_main(capsys, "run", "--oneshot", "--kubeconfig", kubeconfig, "--fixture", "a30-mig-off")
    assert code == 2 and "pass --node-name or set NODE_NAME" in err and len(err.strip().splitlines()) == 1


def test_unknown_node_exits_1_with_one_line(capsys, kubeconfig):
    code, _, err = run_main(capsys, "run", "--oneshot", "--node-name", "ghost", "--kubeconfig", kubeconfig,
                            "--fixture", "a30-mig-off")
    assert code == 1
    assert err.strip().splitlines()[-1] == 'mig-labeler: error: node "ghost" not found: check --node-name / NODE_NAME'
    assert "Traceback" not in err


def test_forbidden_exits_1_naming_the_rbac_verb(capsys, kube_api, kubeconfig):
    kube_api.forbidden.add(("patch", "nodes"))
    code, _, err = run_main(capsys, "run", "--oneshot", "--node-name", NODE, "--kubeconfig", kubeconfig,
                            "--fixture", "a30-mig-off")
    assert code == 1 and "needs RBAC verb 'patch nodes'" in err.strip().splitlines()[-1]


def test_oneshot_with_nvml_failure_exits_1_and_writes_nothing(capsys, kube_api, kubeconfig, tmp_path):
    node = tmp_path / "n.yaml"
    node.write_text("init_error: NVML_ERROR_DRIVER_NOT_LOADED\ngpus: []\n")
    code, _, err = run_main(capsys, "run", "--oneshot", "--node-name", NODE, "--kubeconfig", kubeconfig,
                            "--fixture", str(node))
    assert code == 1 and "driver is not loaded" in err and kube_api.writes() == []


def test_bad_sleep_interval_exits_2(capsys, kubeconfig):
    code, _, err = run_main(capsys, "run", "--node-name", NODE, "--kubeconfig", kubeconfig, "--fixture",
                            "a30-mig-off", "--sleep-interval", "60")
    assert code == 2 and "invalid duration '60'" in err


def test_daemon_with_an_unknown_node_exits_1_at_start(capsys, kubeconfig):
    code, _, err = run_main(capsys, "run", "--node-name", "ghost", "--kubeconfig", kubeconfig, "--fixture",
                            "a30-mig-off", "--metrics-port", "0")
    assert code == 1 and 'node "ghost" not found' in err


def test_metrics_port_in_use_is_one_line_exit_1(capsys, kubeconfig):
    import socket

    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run_main(capsys, "run", "--node-name", NODE, "--kubeconfig", kubeconfig, "--fixture",
                                "a30-mig-off", "--metrics-port", str(port))
    assert code == 1 and f"cannot serve /healthz and /metrics on port {port}" in err
    assert "Traceback" not in err


def _kubeconfig(path, context: str, server: str):
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": context, "cluster": {"server": server}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
        "users": [{"name": context, "user": {}}]}))
    return path


def test_a_two_file_kubeconfig_reads_the_cluster_kubectl_reads(capsys, kube_api, tmp_path, monkeypatch):
    """client-go merges a list with "the first file to set a value wins", current-context included;
    the Python client's merger took the last current-context and diff planned against the other
    cluster. The same files through kubectl and through mig-labeler."""
    from .k8s_tools import tool

    first = _kubeconfig(tmp_path / "a", "eks", kube_api.url)
    second = _kubeconfig(tmp_path / "b", "fake", "http://127.0.0.1:1")  # nothing listens there
    merged = f"{first}{os.pathsep}{second}"
    kubectl = subprocess.run([tool("kubectl"), "config", "view", "--minify", "-o",
                              "jsonpath={.clusters[0].cluster.server}"], capture_output=True, text=True, check=True,
                             env={**os.environ, "KUBECONFIG": merged})
    assert kubectl.stdout == kube_api.url
    monkeypatch.setenv("KUBECONFIG", merged)
    code, out, err = run_main(capsys, "diff", "--node-name", NODE, "--fixture", "a30-mig-off")
    assert code == 0 and out.splitlines()[-1].startswith("#"), err
    code, out, err = run_main(capsys, "diff", "--node-name", NODE, "--fixture", "a30-mig-off", "--context", "fake",
                              "--timeout", "2s")
    assert code == 1 and "cannot reach the API server at 127.0.0.1:1" in err  # kubectl --context fake says so too
    code, _, err = run_main(capsys, "diff", "--node-name", NODE, "--fixture", "a30-mig-off", "--context", "gke")
    assert code == 2 and "has no context 'gke' (it has: eks, fake)" in err
