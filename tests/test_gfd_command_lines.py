"""GFD's own command lines, unchanged, against mig-labeler (issue: Go flag grammar, no subcommand).

Each row is a command line (and environment) a GFD user already has: every GFD flag in each
spelling (``-flag``, ``--flag``, ``=value``, a following value, bare booleans), flags before and
after others, no subcommand, environment only, and the environment sets of the device plugin's
chart and of the GPU Operator. Each is checked by what the command does against the fake API
server and a fixture: which sink got the labels, the strategy, the timestamp, the exit code.
The flag set is GFD v0.20's (``cmd/gpu-feature-discovery/main.go``, ``internal/flags/``).
The one documented difference: GFD defaults to the NodeFeature API; mig-labeler patches the Node.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import write_kubeconfig
from .test_cli import run_main

NODE = "gpu-node-1"
NF = f"nvidia-features-for-{NODE}"
OUT = "OUT"  # replaced by a file in the test's temporary folder

# (id, argv, extra environment, sink that gets the labels, mig.strategy label or None, timestamp)
CASES = [
    ("no subcommand, = values", ["--mig-strategy=mixed", "--oneshot"], {}, "node", "mixed", True),
    ("single dash everywhere", ["-mig-strategy", "single", "-oneshot"], {}, "node", "single", True),
    ("-oneshot after run's flags", ["run", "--mig-strategy", "mixed", "-oneshot"], {}, "node", "mixed", True),
    ("--oneshot=true", ["--oneshot=true", "--no-timestamp"], {}, "node", None, False),
    ("bare boolean before a flag with a value", ["--no-timestamp", "--mig-strategy", "single", "--oneshot"], {},
     "node", "single", False),
    ("--no-timestamp=false", ["--oneshot", "--no-timestamp=false"], {}, "node", None, True),
    ("Go's other boolean spellings", ["-oneshot=1", "-no-timestamp=T"], {}, "node", None, False),
    ("--fail-on-init-error never takes the next argument", ["--fail-on-init-error", "--node-name", NODE,
                                                           "--oneshot"], {}, "node", None, True),
    ("-fail-on-init-error=false", ["-fail-on-init-error=false", "-oneshot"], {}, "node", None, True),
    ("--use-node-feature-api bare", ["--oneshot", "--use-node-feature-api"], {}, "nodefeature", None, True),
    ("--use-node-feature-api=false and an output file", ["--oneshot", "--use-node-feature-api=false",
                                                        "--output-file", OUT], {}, "file", None, True),
    ("-o PATH", ["--oneshot", "-o", OUT], {}, "file", None, True),
    ("--output=PATH", ["--oneshot", f"--output={OUT}"], {}, "file", None, True),
    ("-output PATH", ["-oneshot", "-output", OUT], {}, "file", None, True),
    ("--sleep-interval with a oneshot", ["--oneshot", "--sleep-interval", "5s"], {}, "node", None, True),
    ("-sleep-interval=1m30s", ["-sleep-interval=1m30s", "-oneshot"], {}, "node", None, True),
    ("--device-discovery-strategy=nvml", ["--oneshot", "--device-discovery-strategy=nvml"], {}, "node", None, True),
    ("-device-discovery-strategy auto", ["-oneshot", "-device-discovery-strategy", "auto"], {}, "node", None, True),
    ("--driver-root-ctr-path", ["--oneshot", "--driver-root-ctr-path", "/driver-root"], {}, "node", None, True),
    ("--container-driver-root=", ["--oneshot", "--container-driver-root=/run/nvidia/driver"], {}, "node", None,
     True),
    ("--kube-api-qps and --kube-api-burst", ["--oneshot", "--kube-api-qps", "20", "--kube-api-burst=40"], {},
     "node", None, True),
    ("--machine-type-file", ["--oneshot", "--machine-type-file=/nonexistent/product_name"], {}, "node", None, True),
    ("--namespace and --pod-name", ["--oneshot", "--namespace", "gpu-operator", "--pod-name", "gfd-x"], {},
     "node", None, True),
    ("environment only, no arguments", [], {"GFD_ONESHOT": "true", "GFD_MIG_STRATEGY": "single"}, "node",
     "single", True),
    ("environment: GFD_USE_NODE_FEATURE_API=1", ["run"], {"GFD_ONESHOT": "1", "GFD_USE_NODE_FEATURE_API": "1"},
     "nodefeature", None, True),
    ("environment: GFD_OUTPUT_FILE and GFD_NO_TIMESTAMP=True", [], {"GFD_ONESHOT": "TRUE", "GFD_OUTPUT_FILE": OUT,
                                                                  "GFD_NO_TIMESTAMP": "True"}, "file", None, False),
    ("environment only, no NODE_NAME: GFD's file mode", [], {"NODE_NAME": None, "GFD_ONESHOT": "TRUE",
                                                              "GFD_OUTPUT_FILE": OUT, "GFD_MIG_STRATEGY": "none"},
     "file", None, True),
    ("environment only, no NODE_NAME, GFD_USE_NODE_FEATURE_API=false", [],
     {"NODE_NAME": None, "GFD_ONESHOT": "TRUE", "GFD_OUTPUT_FILE": OUT, "GFD_USE_NODE_FEATURE_API": "false",
      "GFD_MIG_STRATEGY": "mixed"}, "file", "mixed", True),
    ("the device plugin chart's GFD environment", ["--oneshot"],
     {"NAMESPACE": "nvidia-device-plugin", "POD_NAME": "gfd-abc", "MIG_STRATEGY": "mixed",
      "FAIL_ON_INIT_ERROR": "true", "GFD_NO_TIMESTAMP": "false", "GFD_SLEEP_INTERVAL": "60s",
      "DEVICE_DISCOVERY_STRATEGY": "auto"}, "node", "mixed", True),
    ("the GPU Operator's GFD environment", ["--oneshot"],
     {"GFD_SLEEP_INTERVAL": "60s", "GFD_FAIL_ON_INIT_ERROR": "true", "NAMESPACE": "gpu-operator",
      "POD_NAME": "gpu-feature-discovery-x", "MIG_STRATEGY": "single", "USE_NODE_FEATURE_API": "false"},
     "node", "single", True),
    ("the GPU Operator's GFD environment with the NodeFeature API", ["--oneshot"],
     {"GFD_SLEEP_INTERVAL": "60s", "GFD_FAIL_ON_INIT_ERROR": "true", "NAMESPACE": "gpu-operator",
      "MIG_STRATEGY": "mixed", "USE_NODE_FEATURE_API": "true"}, "nodefeature", "mixed", True),
]


@pytest.fixture
def gfd_env(kube_api, tmp_path, monkeypatch):
    for name in ("GFD_MIG_STRATEGY", "MIG_STRATEGY", "GFD_ONESHOT", "GFD_NO_TIMESTAMP", "GFD_OUTPUT_FILE",
                 "GFD_USE_NODE_FEATURE_API", "USE_NODE_FEATURE_API", "NAMESPACE", "POD_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", kube_api.url)))
    monkeypatch.setenv("NODE_NAME", NODE)
    monkeypatch.setenv("MIG_LABELER_FIXTURE", "dgx-a100-7x1g")
    monkeypatch.setenv("MIG_LABELER_METRICS_PORT", "0")
    return monkeypatch


def published(kube_api, out: Path, namespace: str) -> dict[str, dict[str, str]]:
    """Where labels went: the Node (ours only), the NodeFeature, the file."""
    where: dict[str, dict[str, str]] = {}
    node = {k: v for k, v in kube_api.labels(NODE).items() if k.startswith("nvidia.com/")
            and k not in ("nvidia.com/mig.config", "nvidia.com/mig.config.state")
            and not k.startswith("nvidia.com/gpu.deploy.")}
    if node:
        where["node"] = node
    nodefeature = kube_api.nodefeature(namespace, NF)
    if nodefeature is not None:
        where["nodefeature"] = dict(nodefeature["spec"]["labels"])
    if out.exists():
        where["file"] = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    return where


@pytest.mark.parametrize(("argv", "env", "sink", "strategy", "timestamp"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_a_gfd_command_line_does_what_it_does_for_gfd(capsys, kube_api, tmp_path, gfd_env, argv, env, sink,
                                                      strategy, timestamp):
    out = tmp_path / "features.d" / "gfd"
    out.parent.mkdir()
    for name, value in env.items():
        if value is None:
            gfd_env.delenv(name, raising=False)
        else:
            gfd_env.setenv(name, str(out) if value == OUT else value)
    code, _, err = run_main(capsys, *[str(out) if a == OUT else a.replace(OUT, str(out)) for a in argv])
    assert code == 0, err
    where = published(kube_api, out, env.get("NAMESPACE", "default"))
    assert list(where) == [sink], err
    labels = where[sink]
    assert labels.get("nvidia.com/mig.strategy") == strategy
    assert ("nvidia.com/gfd.timestamp" in labels) is timestamp
    assert not (Path.cwd() / "neshot").exists()


def test_gfds_static_daemonset_without_node_name_is_one_line_and_exit_2_never_the_help(capsys, gfd_env):
    """deployments/static/gpu-feature-discovery-daemonset-with-mig-mixed.yaml: MIG_STRATEGY and
    NVIDIA_MIG_MONITOR_DEVICES, no arguments, no NODE_NAME. It once printed the help and exited 0
    (a restart loop of Completed containers whose log was the usage text)."""
    gfd_env.delenv("NODE_NAME")
    gfd_env.setenv("MIG_STRATEGY", "mixed")
    gfd_env.setenv("NVIDIA_MIG_MONITOR_DEVICES", "all")
    code, out, err = run_main(capsys)
    assert code == 2 and out == "" and err.strip().splitlines() == [
        "mig-labeler: error: no node name: pass --node-name or set NODE_NAME (in a pod, from spec.nodeName)"]


def test_no_arguments_at_a_terminal_is_the_help(capsys, gfd_env):
    for name in ("NODE_NAME", "KUBECONFIG"):
        gfd_env.delenv(name, raising=False)
    gfd_env.setenv("KUBECONFIG", "/home/me/.kube/config")  # set on workstations: not "configured as GFD"
    code, out, _ = run_main(capsys)
    assert code == 0 and out.startswith("Usage: mig-labeler")


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "-oneshot", "-o", "json"], "-o/--output on run is GFD's --output-file, a path, not an output format"),
    (["--oneshot=yes"], "--oneshot=yes must be a boolean"),
    (["--use-node-feature-api=yes", "--oneshot"], "--use-node-feature-api=yes must be a boolean"),
    (["-oneshott"], "unknown flag -oneshott: a single dash starts one whole flag"),
    (["-xyz"], "unknown flag -xyz"),
    (["--mig-strategy"], "flag needs an argument: --mig-strategy"),
    (["--oneshot", "--device-discovery-strategy=tegra"], "--device-discovery-strategy tegra is not supported"),
    (["--oneshot", "--device-discovery-strategy", "vfio"], "finds GPUs through NVML only"),
    (["--oneshot", "--device-discovery-strategy=cuda"], "invalid --device-discovery-strategy option 'cuda'"),
    (["--oneshot", "--kube-api-qps", "fast"], "--kube-api-qps must be a number, not 'fast'"),
    (["--oneshot", "--kube-api-burst=1.5"], "--kube-api-burst must be an integer"),
    (["--oneshot", "--sleep-interval", "0"], "--sleep-interval '0' is too short: it must be at least 1s"),
    (["labels", "--oneshot"], "--oneshot is not an option of `mig-labeler labels`"),
])
def test_a_bad_gfd_command_line_is_one_line_and_exit_2(capsys, gfd_env, argv, message):
    code, _, err = run_main(capsys, *argv)
    assert code == 2, err
    assert message in err and "Traceback" not in err


def test_a_bad_boolean_in_gfds_environment_names_the_variable(capsys, gfd_env):
    gfd_env.setenv("GFD_ONESHOT", "yes")
    code, _, err = run_main(capsys)
    assert code == 2
    assert "GFD_ONESHOT must be a boolean (true/false, 1/0, t/f), not 'yes'" in err


def test_no_arguments_at_a_terminal_prints_the_help(capsys, monkeypatch):
    monkeypatch.delenv("NODE_NAME", raising=False)
    code, out, _ = run_main(capsys)
    assert code == 0 and "Commands:" in out and "run" in out


def test_version_in_gfds_spelling(capsys):
    for argv in (["--version"], ["-version"], ["-v"]):
        code, out, _ = run_main(capsys, *argv)
        assert code == 0 and out.startswith("mig-labeler, version ")


def test_labels_keeps_o_as_its_output_format_and_takes_gfds_booleans(capsys):
    code, out, _ = run_main(capsys, "labels", "--fixture", "a30-mig-off", "-o", "json", "-no-timestamp")
    assert code == 0 and out.startswith("{") and "gfd.timestamp" not in out


def test_our_own_options_take_a_single_dash_too(capsys):
    code, out, _ = run_main(capsys, "labels", "-fixture", "a30-mig-off", "-mig-strategy=single", "--no-timestamp")
    assert code == 0 and "nvidia.com/mig.strategy=single" in out
