"""Fixtures recorded from real NVML (tools/record_fixture.py, read-only): the fake NVML, fed the
recording, must give the labels the real machine gave, and the model table must agree with the
GPU instance profiles the real driver reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mig_labeler.gpu_models import gpu_models
from mig_labeler.topology import mig_memory_gb

from .conftest import healthy_count, labels_of

RECORDED = Path(__file__).parent / "fixtures" / "recorded"
MACHINES = sorted(p.name.removesuffix(".yaml") for p in RECORDED.glob("*.yaml"))


@pytest.mark.parametrize("machine", MACHINES)
@pytest.mark.parametrize("strategy", ["none", "single", "mixed"])
def test_the_fake_gives_the_labels_real_nvml_gave(machine, strategy):
    real = json.loads((RECORDED / f"{machine}.labels.json").read_text())[strategy]
    import yaml

    doc = yaml.safe_load((RECORDED / f"{machine}.yaml").read_text())
    assert labels_of(doc, strategy) == real | healthy_count(doc)


@pytest.mark.parametrize("machine", MACHINES)
def test_the_model_table_matches_the_profiles_the_real_driver_reported(machine):
    """Everything but memory must match. Memory is driver-dependent (labels.md: the three memory
    figures differ by 128-256 MiB across drivers); it may differ only so little that the profile
    name go-nvlib derives from it stays the same."""
    raw = json.loads((RECORDED / f"{machine}.profiles.json").read_text())
    for gpu in raw["gpus"]:
        model = next(m for m in gpu_models().values() if m.nvml_name == gpu["name"])
        table = {p.gi_profile_index: p for p in model.profiles}
        reported = {p["index"]: p for p in gpu["profiles"] if "error" not in p}
        assert set(reported) == set(table), "the driver supports exactly the table's profile indices"
        total_bytes = gpu["memory_total_bytes"]
        for index, real in reported.items():
            ours = table[index]
            a = ours.attributes
            assert (real["id"], real["slices"], real["instances"], real["multiprocessors"]) == \
                (ours.gi_profile_id, a.slices_gi, ours.max_count, a.multiprocessors), ours.name
            assert (real["copy"], real["decoder"], real["encoder"], real["jpeg"], real["ofa"]) == \
                (a.copy_engines, a.decoders, a.encoders, a.jpeg, a.ofa), ours.name
            assert abs(real["memory_mib"] - a.memory_mib) <= 256, ours.name
            assert mig_memory_gb(real["memory_mib"], total_bytes) == mig_memory_gb(a.memory_mib, total_bytes)


def test_the_recorder_keeps_what_a_mig_parted_device_filter_needs():
    """tools/record_fixture.py, over the production reader: a recording of a board with its own
    subsystem ID (and a device ID the table does not list) reads back with the same IDs."""
    from tools.record_fixture import fixture_of

    from .conftest import read

    node = {"gpus": [{"model": "A100-SXM4-40GB", "mig": ["3g.20gb"], "pci_subsystem_id": "0x145F10DE"},
                     {"model": "A100-SXM4-40GB", "pci_device_id": "0x20B110DE"}]}
    recorded = fixture_of(read(node))
    assert [g.get("pci_subsystem_id") for g in recorded["gpus"]] == ["0x145F10DE", None]
    assert [g.get("pci_device_id") for g in recorded["gpus"]] == [None, "0x20B110DE"]
    again = read(recorded)
    assert [(g.pci_device_id, g.pci_subsystem_id) for g in again.gpus] == [(0x20B010DE, 0x145F10DE), (0x20B110DE, None)]
