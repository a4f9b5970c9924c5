"""The config mig-manager generates from a node's GPUs (GPU Operator 26.3+), judged by mig-parted's
own expectations (tests/fixtures/mig-parted/generator-cases.json, from its builder_test.go), and
predictions that need no config file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mig_labeler.gpu_models import gpu_models
from mig_labeler.simulated.generated_config import Profile, generated_config, model_profiles

from .test_cli import run_main

CASES = json.loads((Path(__file__).parent / "fixtures" / "mig-parted" / "generator-cases.json").read_text())
# Our model table's keys → the GPU types in mig-parted's test data (its discovery's output per type).
SAME_GPU = {"A30": "A30-24GB", "A100-SXM4-40GB": "A100-40GB", "A100-PCIE-40GB": "A100-40GB",
            "A100-SXM4-80GB": "A100-80GB", "A100-80GB-PCIe": "A100-80GB", "H100-SXM5-80GB": "H100-80GB",
            "H100-PCIE-80GB": "H100-80GB", "H100-NVL": "H100-94GB", "GH200-480GB": "H100-96GB",
            "H200": "H200-141GB", "B200": "B200-180GB"}


def profiles(raw: list[dict]) -> list[Profile]:
    return [Profile(p["name"], p["max_count"], p["device_id"]) for p in raw]


@pytest.mark.parametrize("case", CASES["cases"], ids=[c["name"] for c in CASES["cases"]])
def test_the_generator_gives_what_mig_parted_expects_of_its_own(case):
    configs = generated_config([profiles(g) for g in case["gpus"]])["mig-configs"]
    assert configs["all-disabled"] == [{"devices": "all", "mig-enabled": False}]
    assert configs["all-enabled"] == [{"devices": "all", "mig-enabled": True, "mig-devices": {}}]
    assert set(configs) == {"all-disabled", "all-enabled"} | {w["config"] for w in case["want"]}
    for want in case["want"]:
        matching = [e for e in configs[want["config"]]
                    if sorted(e.get("device-filter") or []) == sorted(want["device_filter"] or [])]
        assert len(matching) == 1, want
        assert matching[0]["devices"] == "all" and matching[0]["mig-enabled"] is True
        assert matching[0]["mig-devices"][want["profile"]] == want["count"], want
    wanted = {(w["config"], tuple(sorted(w["device_filter"] or []))): 0 for w in case["want"]}
    for name, entries in configs.items():  # nothing more than mig-parted expects: no extra entry, no extra profile
        for entry in entries:
            if name in ("all-disabled", "all-enabled"):
                continue
            key = (name, tuple(sorted(entry.get("device-filter") or [])))
            assert key in wanted, key
            assert set(entry["mig-devices"]) == {w["profile"] for w in case["want"]
                                                 if (w["config"], tuple(sorted(w["device_filter"] or []))) == key}


@pytest.mark.parametrize(("ours", "theirs"), sorted(SAME_GPU.items()))
def test_our_model_table_gives_the_profiles_and_counts_mig_parted_discovers(ours, theirs):
    model = gpu_models()[ours]
    expected = {p["name"]: p["max_count"] for p in CASES["gpu_profiles"][theirs]}
    assert {p.name: p.max_count for p in model.profiles} == {n: c for n, c in expected.items()
                                                             if n in {p.name for p in model.profiles}}
    assert set(model.unmeasured_profiles) | {p.name for p in model.profiles} == set(expected)


def test_a_node_of_several_gpu_types_gets_device_filters():
    a100, a30 = gpu_models()["A100-SXM4-40GB"], gpu_models()["A30"]
    configs = generated_config([model_profiles(a100), model_profiles(a30)])["mig-configs"]
    assert configs["all-balanced"] == [
        {"devices": "all", "mig-enabled": True, "mig-devices": {"1g.5gb": 2, "2g.10gb": 1, "3g.20gb": 1},
         "device-filter": ["0x20B010DE"]},
        {"devices": "all", "mig-enabled": True, "mig-devices": {"1g.6gb": 2, "2g.12gb": 1},
         "device-filter": ["0x20B710DE"]}]


def test_a_prediction_needs_no_config_file_when_mig_manager_generates_it(capsys):
    code, out, err = run_main(capsys, "labels", "--gpu", "H100-SXM5-80GB:8", "--mig-config", "all-balanced",
                              "--mig-strategy", "mixed", "--no-timestamp")
    assert code == 0, err
    counts = {k: v for k, v in (line.split("=", 1) for line in out.splitlines()) if k.endswith(".count")}
    assert counts == {"nvidia.com/gpu.count": "8", "nvidia.com/mig-1g.10gb.count": "16",
                      "nvidia.com/mig-2g.20gb.count": "8", "nvidia.com/mig-3g.40gb.count": "8"}
    code, out, err = run_main(capsys, "labels", "--gpu", "A30:2", "--mig-config", "all-1g.6gb.me",
                              "--mig-strategy", "mixed", "--no-timestamp")
    assert code == 0 and "nvidia.com/mig-1g.6gb.me.count=2" in out, err


def test_a_generated_layout_the_model_table_cannot_label_says_why(capsys):
    code, _, err = run_main(capsys, "labels", "--gpu", "B200:8", "--mig-config", "all-balanced")
    assert code == 2 and "B200 has the 3g.90gb profile, but the model table has no measured numbers" in err
