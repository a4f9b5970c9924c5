"""MIG profile naming: go-nvlib's rule, checked against every profile in the real model table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mig_labeler.gpu_models import gpu_models
from mig_labeler.topology import CI_INDEX_FOR_SLICES, MIB, mig_memory_gb, mig_profile_name

from .conftest import labels_of, read

SPEC = Path(__file__).parents[2] / "shared" / "spec" / "mig-profiles.json"
MODEL_PROFILES = [
    pytest.param(model, profile, id=f"{key}-{profile.name}")
    for key, model in gpu_models().items()
    for profile in model.profiles
]


@pytest.mark.parametrize(("model", "profile"), MODEL_PROFILES)
def test_derived_profile_name_matches_the_table_for_every_profile(model, profile):
    derived = mig_profile_name(
        profile.gi_profile_index, CI_INDEX_FOR_SLICES[profile.attributes.slices_gi],
        profile.attributes.memory_mib, model.memory_mib * MIB,
    )
    assert derived == profile.name


@pytest.mark.parametrize(("model", "profile"), MODEL_PROFILES)
def test_reader_derives_the_fixture_name_through_the_fake_nvml(model, profile):
    topology = read({"gpus": [{"model": model.key, "mig": [profile.name]}]})
    assert [m.profile for m in topology.mig_devices] == [profile.name]


def test_compute_instance_profiles_get_the_c_prefix():
    rows = gpu_models()["A100-SXM4-40GB"].compute_instance_profiles
    # one per GPU: in the fake each MIG device is its own GPU instance, and seven would not fit on one
    topology = read({"gpus": [{"model": "A100-SXM4-40GB", "mig": [r.name]} for r in rows[:7]]})
    assert [m.profile for m in topology.mig_devices] == [r.name for r in rows[:7]]


@pytest.mark.skipif(not SPEC.exists(), reason="shared/spec not beside the checkout")
def test_every_spec_memory_pair_reproduces_nvidias_name():
    spec = json.loads(SPEC.read_text())
    checked = 0
    for gpu in spec["gpus"]:
        total = gpu["full_gpu"].get("memory_total_mib")
        for row in gpu.get("profiles", []):
            mems = row.get("memory_mib_from_lgip") or row.get("memory_mib")
            if total is None or mems is None:
                continue
            for mem in mems if isinstance(mems, list) else [mems]:
                gb = mig_memory_gb(mem, total * MIB)
                assert row["name"].split("g.", 1)[1].startswith(f"{gb}gb"), (gpu["model"], row["name"], mem)
                checked += 1
    assert checked >= 50


@pytest.mark.parametrize(
    ("memory_mib", "total_mib", "expected_gb"),
    [
        (71168, 143771, 71),  # H200 3g: 70.5 rounds away from zero; Python's round() says 70
        (22528, 183359, 23),  # B200 1g: 22.5 → 23
        (46592, 189471, 47),  # GB200 2g: 46.5 → 47 (the public 189471 MiB total; mig-parted#227's name)
        (4864, 40960, 5),  # the name says 5gb while the memory label says 4864
        (80896, 81920, 80),  # A100-80GB 7g: a 2022 mig-parted said 79gb
    ],
)
def test_gb_rounding_is_half_away_from_zero_not_bankers(memory_mib, total_mib, expected_gb):
    assert mig_memory_gb(memory_mib, total_mib * MIB) == expected_gb


@pytest.mark.parametrize(
    ("gi_index", "ci_index", "expected"),
    [
        (0x7, 0x0, "1g.24gb+me"),
        (0xF, 0x0, "1g.24gb+me.all"),
        (0xD, 0x0, "1g.24gb-me"),
        (0xA, 0x0, "1g.24gb+gfx"),
        (0x9, 0x0, "1g.24gb"),  # REV2 has no suffix: told apart by its GB only
        (0x11, 0x2, "3g.24gb+gfx"),  # 3_SLICE_GFX, which go-nvlib does not handle
        (0x2, 0x0, "1c.3g.24gb"),
        (0x4, 0x8, "7g.24gb"),  # 7_SLICE_NVL compute profile is 7 slices
    ],
)
def test_suffixes_and_compute_prefix_follow_the_gi_and_ci_index(gi_index, ci_index, expected):
    assert mig_profile_name(gi_index, ci_index, 23680, 97000 * MIB) == expected


def test_unknown_profile_index_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match="unknown GPU instance profile index"):
        mig_profile_name(0x12, 0, 4864, 40960 * MIB)


def test_plus_becomes_dot_in_mixed_label_keys():
    labels = labels_of({"gpus": [{"model": "H100-SXM5-80GB", "mig": ["1g.10gb+me", "1g.10gb"]}]}, "mixed")
    assert labels["nvidia.com/mig-1g.10gb.me.count"] == "1"
    assert labels["nvidia.com/mig-1g.10gb.me.product"] == "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb.me"
