"""The mig-parted config format, parsed as NVIDIA/mig-parted's api/spec/v1 does, and predicting a
node's labels from a GPU model and a config name through the same path as a real node."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mig_labeler.errors import ConfigError
from mig_labeler.gpu_models import gpu_models
from mig_labeler.mig_parted import parse_mig_parted
from mig_labeler.text_files import load_mig_parted

from .test_cli import run_main

CONFIG = Path(__file__).parent / "fixtures" / "mig-parted" / "config.yaml"
# all-balanced per model of our table, as the GPU Operator's default config defines it (B200, GB200,
# H100 NVL and GH200 have entries there too, but the spec has no numbers for some of their
# profiles: test below)
BALANCED = {"A100-SXM4-40GB": ["1g.5gb", "1g.5gb", "2g.10gb", "3g.20gb"],
            "A100-PCIE-40GB": ["1g.5gb", "1g.5gb", "2g.10gb", "3g.20gb"],
            "A100-SXM4-80GB": ["1g.10gb", "1g.10gb", "2g.20gb", "3g.40gb"],
            "A100-80GB-PCIe": ["1g.10gb", "1g.10gb", "2g.20gb", "3g.40gb"],
            "H100-SXM5-80GB": ["1g.10gb", "1g.10gb", "2g.20gb", "3g.40gb"],
            "H100-PCIE-80GB": ["1g.10gb", "1g.10gb", "2g.20gb", "3g.40gb"],
            "A30": ["1g.6gb", "1g.6gb", "2g.12gb"],
            "H200": ["1g.18gb", "1g.18gb", "2g.35gb", "3g.71gb"]}


def test_the_config_parses_and_selects_entries_as_mig_manager_does():
    config = load_mig_parted(str(CONFIG))
    assert sorted(config.configs) == ["all-1g.5gb", "all-balanced", "all-disabled", "all-enabled", "half-half",
                                      "too-many"]
    a30 = config.entry_for("all-balanced", 0, 0x20B710DE)
    assert a30 is not None and a30.layout() == ["1g.6gb", "1g.6gb", "2g.12gb"]
    assert config.entry_for("all-balanced", 0, 0x2BB510DE) is None  # RTX PRO 6000: no entry here
    assert config.entry_for("all-balanced", 0, 0x290110DE).layout() == ["1g.23gb", "1g.23gb", "2g.45gb", "3g.90gb"]
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


def test_every_model_the_table_holds_has_its_all_balanced_entry():
    config = load_mig_parted(str(CONFIG))
    models = gpu_models()
    assert {m for m, g in models.items() if config.entry_for("all-balanced", 0, g.pci_device_id) is not None} == {
        *BALANCED, *(model for model, _ in UNMEASURED)}


UNMEASURED = [("B200", "3g.90gb"), ("GB200", "3g.93gb"), ("H100-NVL", "2g.24gb, 3g.47gb"),
              ("GH200-480GB", "1g.12gb, 2g.24gb, 3g.48gb")]


@pytest.mark.parametrize(("model", "profile"), UNMEASURED)
def test_a_profile_the_table_has_no_numbers_for_is_refused_as_unmeasured_not_impossible(capsys, model, profile):
    """The spec leaves some profiles without numbers (B200's 3g.90gb): the prediction is refused,
    naming the profile, rather than made up, and without claiming mig-parted would refuse it."""
    code, _, err = run_main(capsys, "labels", "--gpu", f"{model}:8", "--mig-config", "all-balanced",
                            "--mig-parted-config", str(CONFIG))
    assert code == 2 and "Traceback" not in err
    assert f"all-balanced: {model} has the {profile} profile, but the model table has no measured numbers" in err
    assert "mig-manager can still apply it" in err and "would refuse" not in err


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
    (["--gpu", "A30:10", "--mig-config", "half-half"], "half-half: no entry selects GPU 8 (A30, PCI device "
                                                         "0X20B710DE)"),
    (["--gpu", "A100-SXM4-40GB", "--mig-config", "no-such"], "the mig-parted config has no config 'no-such'"),
    (["--gpu", "A200:8", "--mig-config", "all-balanced"], "unknown GPU model 'A200'"),
    (["--gpu", "A30:0"], "the GPU count must be a number from 1 to 64"),
    (["--mig-config", "all-balanced"], "--mig-config goes with --gpu"),
])
def test_a_prediction_that_cannot_be_is_one_line_and_exit_2(capsys, args, message):
    code, _, err = run_main(capsys, "labels", *args, "--mig-parted-config", str(CONFIG))
    assert code == 2 and message in err and "Traceback" not in err, err


# -- check, with predicted nodes ----------------------------------------------------------------
TRAINER = """apiVersion: v1
kind: Pod
metadata: {name: trainer}
spec:
  nodeSelector: {nvidia.com/mig-3g.40gb.product: NVIDIA-H100-80GB-HBM3-MIG-3g.40gb}
  tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
  containers:
  - name: c
    image: nvcr.io/nvidia/pytorch:24.01-py3
    resources: {limits: {nvidia.com/mig-3g.40gb: 1}}
"""


def test_check_places_a_pod_on_predicted_nodes_of_a_pool_that_does_not_exist_yet(capsys, tmp_path):
    pod = tmp_path / "pod.yaml"
    pod.write_text(TRAINER)
    args = ["check", "-f", str(pod), "--mig-config", "all-balanced", "--mig-parted-config", str(CONFIG),
            "--mig-strategy", "mixed"]
    code, out, err = run_main(capsys, *args, "--gpu", "H100-SXM5-80GB:8", "--gpu", "A100-SXM4-40GB:8")
    assert code == 0, err
    assert out.splitlines()[0] == "Pod/trainer (" + str(pod) + "#1): fits 1 of 2 nodes: H100-SXM5-80GB:8+all-balanced"
    code, out, _ = run_main(capsys, *args, "--gpu", "A100-SXM4-40GB:8")
    assert code == 1
    assert "fix: request one of nvidia.com/mig-1g.5gb, nvidia.com/mig-2g.10gb, nvidia.com/mig-3g.20gb" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--fixture", "a30-mig-off", "--mig-config", "all-balanced"], "--mig-config goes with --gpu MODEL[:COUNT]"),
    (["--gpu", "A30:2", "--mig-config", "all-3g.20gb"], "the config mig-manager generates for A30 has no config "
                                                        "'all-3g.20gb'"),
    (["--gpu", "A30:2", "--labels", "x.json"], "give the nodes one way"),
])
def test_check_with_predicted_nodes_refuses_what_it_cannot_do_in_one_line(capsys, tmp_path, args, message):
    pod = tmp_path / "pod.yaml"
    pod.write_text(TRAINER)
    code, _, err = run_main(capsys, "check", "-f", str(pod), *args)
    assert code == 2 and message in err and "Traceback" not in err, err


def test_the_documented_prediction_prints_what_the_docs_show(capsys):
    """docs/mig-configs.md shows these lines of the H100 prediction; they must stay true."""
    doc = (Path(__file__).parents[1] / "docs" / "mig-configs.md").read_text()
    block = doc.split("$ mig-labeler labels --gpu H100-SXM5-80GB:8", 1)[1].split("```", 1)[0]
    shown = [line for line in block.splitlines()[2:] if line.startswith('"nvidia.com/')]
    code, out, err = run_main(capsys, "labels", "--gpu", "H100-SXM5-80GB:8", "--mig-config", "all-balanced",
                              "--mig-parted-config", str(CONFIG), "--mig-strategy", "mixed", "-o", "yaml")
    assert code == 0, err
    assert len(shown) == 5 and all(line in out.splitlines() for line in shown), shown


# -- the GPU Operator's own default config, when a copy is at hand -----------------------------
OPERATOR_CONFIG = os.environ.get("MIG_LABELER_OPERATOR_MIG_PARTED_CONFIG", "")


@pytest.mark.skipif(not OPERATOR_CONFIG, reason="set MIG_LABELER_OPERATOR_MIG_PARTED_CONFIG to a copy of the GPU "
                    "Operator's default-mig-parted-config config.yaml (it may not be committed here)")
def test_the_operators_default_config_parses_in_full_and_predicts_every_measured_model(capsys):
    """kubectl -n gpu-operator get configmap default-mig-parted-config -o jsonpath='{.data.config\\.yaml}'"""
    config = load_mig_parted(OPERATOR_CONFIG)
    assert "all-balanced" in config.configs and "all-disabled" in config.configs
    for model, gpu in gpu_models().items():
        entry = config.entry_for("all-balanced", 0, gpu.pci_device_id)
        if entry is None or set(entry.layout()) & set(gpu.unmeasured_profiles):
            continue
        code, _, err = run_main(capsys, "labels", "--gpu", f"{model}:2", "--mig-config", "all-balanced",
                                "--mig-parted-config", OPERATOR_CONFIG, "--mig-strategy", "mixed")
        assert code == 0, (model, err)


def test_the_documented_templates_hold_the_predicted_values(capsys):
    """Every nvidia.com/ label and MIG resource count in docs/mig-configs.md's Karpenter,
    cluster-autoscaler and Kueue examples is what the H100 prediction gives."""
    import re

    import yaml

    code, out, _ = run_main(capsys, "labels", "--gpu", "H100-SXM5-80GB:8", "--mig-config", "all-balanced",
                            "--mig-parted-config", str(CONFIG), "--mig-strategy", "mixed", "-o", "json")
    predicted = {**json.loads(out), "nvidia.com/mig.config": "all-balanced"}
    doc = (Path(__file__).parents[1] / "docs" / "mig-configs.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", doc, re.S)
    assert len(blocks) == 3
    pairs: list[tuple[str, str]] = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(key, str) and isinstance(value, str):
                    pairs.append((key, value))
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for block in blocks:
        for doc_ in yaml.safe_load_all(block):
            walk(doc_)
    labels = [(k.rsplit("/label/", 1)[-1], v) for k, v in pairs if k.rsplit("/label/", 1)[-1].startswith("nvidia.com/")
              and "/resources/" not in k]
    assert labels and all(predicted.get(k) == v for k, v in labels), labels
    counts = [(k.rsplit("/resources/", 1)[1], v) for k, v in pairs if "/resources/" in k]
    assert counts and all(predicted[f"{r}.count"] == v for r, v in counts), counts


# -- device filters that name a board (a PCI subsystem), as mig-parted matches them -------------
BOARDS = """version: v1
mig-configs:
  by-board:
    - device-filter: "0x20B010DE:0x145F10DE"
      devices: all
      mig-enabled: true
      mig-devices: {"3g.20gb": 2}
    - device-filter: "0x20B010DE"
      devices: all
      mig-enabled: true
      mig-devices: {"1g.5gb": 7}
"""


@pytest.mark.parametrize(("subsystem", "layout"), [("0x145F10DE", ["3g.20gb"] * 2), ("0x134F10DE", ["1g.5gb"] * 7),
                                                   (None, ["1g.5gb"] * 7)])
def test_a_filter_naming_a_board_selects_only_that_board_read_from_nvml(subsystem, layout):
    """mig-parted's DeviceID.Matches: a subsystem in the filter must match too (NVML's
    pciSubSystemId, read by the production reader from the fake); without one, the device alone."""
    from mig_labeler.gpu_operator import MigRequest
    from mig_labeler.labels.mig_config import verify_mig_config

    from .conftest import read

    gpu = {"model": "A100-SXM4-40GB", "mig": layout, **({"pci_subsystem_id": subsystem} if subsystem else {})}
    topology = read({"gpus": [gpu]})
    assert topology.gpus[0].pci_subsystem_id == (int(subsystem, 16) if subsystem else None)
    config = parse_mig_parted(BOARDS)
    verified = verify_mig_config(topology, config, MigRequest("by-board", "success", 0.0))
    assert verified.mismatch is None and verified.labels == {"nvidia.com/mig.config.applied": "by-board"}


def test_a_config_name_given_twice_keeps_the_last_as_mig_manager_does_and_says_so(capsys, tmp_path):
    """mig-parted decodes with sigs.k8s.io/yaml's Unmarshal (non-strict go-yaml v2: setMapIndex
    overwrites), so mig-manager applies the last of two entries with one name; PyYAML agrees. Said."""
    path = tmp_path / "dup.yaml"
    path.write_text("version: v1\nmig-configs:\n  all-balanced:\n    - {devices: all, mig-enabled: false}\n"
                    "  all-balanced:\n    - {devices: all, mig-enabled: true, mig-devices: {1g.5gb: 7}}\n")
    config = load_mig_parted(str(path))
    assert config.configs["all-balanced"][0].mig_enabled
    assert config.warnings == (f"{path}: line 5: 'all-balanced' is given twice in one mapping; the last one is "
                               "used, as mig-manager uses it",)
    from .test_cli import run_main

    code, out, err = run_main(capsys, "labels", "--gpu", "A100-SXM4-40GB:1", "--mig-config", "all-balanced",
                              "--mig-parted-config", str(path), "--mig-strategy", "mixed")
    assert code == 0 and "nvidia.com/mig-1g.5gb.count=7" in out and "given twice" in err


def test_a_mismatch_names_every_gpu_that_differs_grouped_by_how():
    """It once named only the first differing GPU (``GPU 4: ...`` while 5, 6 and 7 differed too)."""
    from mig_labeler.gpu_operator import MigRequest
    from mig_labeler.labels.mig_config import verify_mig_config

    from .conftest import read

    balanced = {"model": "A100-SXM4-40GB", "count": 4, "mig": ["3g.20gb", "2g.10gb", "1g.5gb", "1g.5gb"]}
    topology = read({"gpus": [balanced, {"model": "A100-SXM4-40GB", "count": 3, "mig": ["1g.5gb"] * 7},
                              {"model": "A100-SXM4-40GB"}]})
    verified = verify_mig_config(topology, load_mig_parted(str(CONFIG)), MigRequest("all-balanced", "success", 0.0))
    assert verified.mismatch == ("GPUs 4, 5, 6: has 7×1g.5gb, all-balanced wants 2×1g.5gb + 1×2g.10gb + 1×3g.20gb; "
                                 "GPU 7: MIG is off, all-balanced wants it on")
