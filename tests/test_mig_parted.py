"""The mig-parted config format, parsed as NVIDIA/mig-parted's api/spec/v1 does, and predicting a
node's labels from a GPU model and a config name through the same path as a real node."""

from __future__ import annotations

from pathlib import Path

import pytest

from mig_labeler.errors import ConfigError
from mig_labeler.gpu_models import gpu_models
from mig_labeler.mig_parted import load_mig_parted, parse_mig_parted

from .test_cli import run_main

CONFIG = Path(__file__).parent / "fixtures" / "mig-parted" / "config.yaml"
BALANCED = {"A100-SXM4-40GB": ["1g.5gb", "1g.5gb", "2g.10gb", "3g.20gb"],
            "A100-SXM4-80GB": ["1g.10gb", "1g.10gb", "2g.20gb", "3g.40gb"],
            "H100-SXM5-80GB": ["1g.10gb", "1g.10gb", "2g.20gb", "3g.40gb"],
            "A30": ["1g.6gb", "1g.6gb", "2g.12gb"],
            "H200": ["1g.18gb", "1g.18gb", "2g.35gb", "3g.71gb"]}


def test_the_config_parses_and_selects_entries_as_mig_manager_does():
    config = load_mig_parted(str(CONFIG))
    assert sorted(config.configs) == ["all-1g.5gb", "all-balanced", "all-disabled", "all-enabled", "half-half",
                                      "too-many"]
    a30 = config.entry_for("all-balanced", 0, 0x20B710DE)
    assert a30 is not None and a30.layout() == ["1g.6gb", "1g.6gb", "2g.12gb"]
    assert config.entry_for("all-balanced", 0, 0x290110DE) is None  # B200: no entry
    assert not config.entry_for("half-half", 2, None).mig_enabled
    assert config.entry_for("half-half", 5, None).layout() == ["3g.20gb", "3g.20gb"]
    assert config.entry_for("all-enabled", 0, None).layout() == []


@pytest.mark.parametrize(("text", "message"), [
    ("mig-configs: {a: [{devices: all, mig-enabled: false}]}", "missing 'version' field"),
    ("version: v2\nmig-configs: {a: [{devices: all, mig-enabled: false}]}", "unknown version: 'v2'"),
    ("version: v1\nmig-configs: {a: [{devices: all, mig-enabled: false}]}\nextra: 1", "unexpected field: extra"),
    ("version: v1\nmig-configs: {}", "at least one entry in 'mig-configs' is required"),
    ("version: v1\nmig-configs: {a: []}", "at least one entry in 'a' is required"),
    ("version: v1\nmig-configs: {a: [{mig-enabled: false}]}", "missing required field: devices"),
    ("version: v1\nmig-configs: {a: [{devices: all, mig-enabled: true}]}", "missing required field 'mig-devices'"),
    ("version: v1\nmig-configs: {a: [{devices: all, mig-enabled: false, mig-devices: {1g.5gb: 1}}]}",
     "MIG devices included when 'mig-enabled' is false"),
    ("version: v1\nmig-configs: {a: [{devices: all, mig-enabled: true, mig-devices: {1g.5gb: 0}}]}",
     "all counts for all MigProfiles are 0"),
    ("version: v1\nmig-configs: {a: [{devices: all, mig-enabled: true, mig-devices: {1g5gb: 1}}]}",
     "invalid format for '1g5gb'"),
    ("version: v1\nmig-configs: {a: [{devices: some, mig-enabled: false}]}", "devices must be 'all' or a list"),
    ("version: v1\nmig-configs: {a: [{devices: all, mig-enabled: false, device-filter: 0xZZ}]}",
     "not a PCI device ID"),
    ("version: v1\nmig-configs: {a: [{devices: all, mig-enabled: false, colour: red}]}", "unexpected field: colour"),
    ("version: v1\nmig-configs: [", "is not valid YAML"),
])
def test_a_bad_config_is_one_line_naming_what_mig_parted_would_say(text, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("'", "'")):
        parse_mig_parted(text, "cfg.yaml")


@pytest.mark.parametrize("model", sorted(BALANCED))
def test_a_predicted_node_gets_the_labels_of_the_same_layout_read_as_a_fixture(capsys, tmp_path, model):
    assert gpu_models()[model].pci_device_id  # the device filter needs it
    code, predicted, err = run_main(capsys, "labels", "--gpu", f"{model}:8", "--mig-config", "all-balanced",
                                    "--mig-parted-config", str(CONFIG), "--mig-strategy", "mixed", "--no-timestamp")
    assert code == 0, err
    fixture = tmp_path / "node.yaml"
    fixture.write_text(f"gpus:\n  - model: {model}\n    count: 8\n    mig: {BALANCED[model]}\n")
    code, expected, _ = run_main(capsys, "labels", "--fixture", str(fixture), "--mig-strategy", "mixed",
                                 "--no-timestamp")
    assert code == 0
    lines = [line for line in predicted.splitlines() if not line.startswith("nvidia.com/cuda.")]
    assert lines == [line for line in expected.splitlines() if not line.startswith("nvidia.com/cuda.")]
    assert "nvidia.com/mig.strategy=mixed" in lines


@pytest.mark.parametrize(("args", "message"), [
    (["--gpu", "A100-SXM4-40GB:8", "--mig-config", "too-many"],
     "too-many: cannot be applied to A100-SXM4-40GB (A100-SXM4-40GB holds at most 2 3g.20gb), as mig-parted would "
     "refuse it"),
    (["--gpu", "B200:8", "--mig-config", "all-balanced"], "all-balanced: no entry selects GPU 0 (B200, PCI device "
                                                         "0X290110DE)"),
    (["--gpu", "A100-SXM4-40GB", "--mig-config", "no-such"], "the mig-parted config has no config 'no-such'"),
    (["--gpu", "A200:8", "--mig-config", "all-balanced"], "unknown GPU model 'A200'"),
    (["--gpu", "A30:0"], "the GPU count must be a number from 1 to 64"),
    (["--mig-config", "all-balanced"], "--mig-config goes with --gpu"),
])
def test_a_prediction_that_cannot_be_is_one_line_and_exit_2(capsys, args, message):
    code, _, err = run_main(capsys, "labels", *args, "--mig-parted-config", str(CONFIG))
    assert code == 2 and message in err and "Traceback" not in err, err


# -- verifying a node's layout against the config it was given ----------------------------------
NODE = "gpu-node-1"
A100_BALANCED = {"gpus": [{"model": "A100-SXM4-40GB", "count": 2, "mig": BALANCED["A100-SXM4-40GB"]}]}
A100_7X1G = {"gpus": [{"model": "A100-SXM4-40GB", "count": 2, "mig": ["1g.5gb"] * 7}]}


def verifying_daemon(kube_api, tmp_path, layout: dict, state: str = "success"):
    from .conftest import make_daemon, write_fixture

    node_file = write_fixture(tmp_path / "node.yaml", layout)
    kube_api.edit_labels(NODE, {"nvidia.com/mig.config": "all-balanced", "nvidia.com/mig.config.state": state},
                         manager="nvidia-mig-manager")
    return make_daemon(kube_api, node_file, mig_parted=load_mig_parted(str(CONFIG))), node_file


def test_a_node_whose_layout_matches_is_labelled_in_its_first_pass(kube_api, tmp_path):
    daemon, _ = verifying_daemon(kube_api, tmp_path, A100_BALANCED)
    daemon.run_pass()
    labels = kube_api.labels(NODE)
    assert labels["nvidia.com/mig.config.applied"] == "all-balanced"
    assert labels["nvidia.com/mig.config.state"] == "success"  # mig-manager's, untouched
    assert daemon.metrics.mig_config_match._value.get() == 1
    assert not [e for e in kube_api.events if e["reason"] == "MIGLayoutMismatch"]


def test_a_layout_that_drifts_loses_the_label_with_one_warning_event(kube_api, tmp_path):
    from .conftest import write_fixture

    daemon, node_file = verifying_daemon(kube_api, tmp_path, A100_BALANCED)
    daemon.run_pass()
    write_fixture(node_file, A100_7X1G)  # repartitioned by hand; mig.config and its state still say success
    daemon.run_pass()
    daemon.run_pass()
    assert "nvidia.com/mig.config.applied" not in kube_api.labels(NODE)
    mismatches = [e for e in kube_api.events if e["reason"] == "MIGLayoutMismatch"]
    assert [(e["type"], e["message"]) for e in mismatches] == [
        ("Warning", "mig-labeler: GPU 0: has 7×1g.5gb, all-balanced wants 2×1g.5gb + 1×2g.10gb + 1×3g.20gb")]
    assert daemon.metrics.mig_config_match._value.get() == 0


def test_nothing_is_verified_while_mig_manager_is_not_done(kube_api, tmp_path):
    daemon, _ = verifying_daemon(kube_api, tmp_path, A100_7X1G, state="pending")
    daemon.run_pass()
    assert "nvidia.com/mig.config.applied" not in kube_api.labels(NODE)
    assert not [e for e in kube_api.events if e["reason"] == "MIGLayoutMismatch"]


def test_a_bad_mig_parted_config_stops_a_start_with_exit_2(capsys, tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_text("version: v1\nmig-configs: {}\n")
    code, _, err = run_main(capsys, "run", "--oneshot", "--fixture", "a30-mig-off", "--output-file", "-",
                            "--mig-parted-config", str(bad))
    assert code == 2 and "at least one entry in 'mig-configs' is required" in err
