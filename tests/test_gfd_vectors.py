"""Labels GFD's own code gave, as ordinary fixtures (tests/fixtures/gfd/*.yaml).

Each file is a node layout that the differential run against GFD (``tools/gfd_diff.py``, GFD
v0.20's ``internal/lm`` over go-nvlib, each layout run 200 times) compared: several models per
node, MIG on/off/empty, CI profiles, several compute instances in one GPU instance, per-GPU
memory, sharing, every strategy. ``gfd_variants`` are the distinct label maps GFD gave (GFD is
random among models that are all full or all MIG-enabled); our labels must be one of them. A
file with ``floor`` is a documented difference (README "Where we differ from GFD"): our labels
are a GFD variant with exactly those keys replaced, for the reason given.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from .conftest import labels_of

VECTORS = sorted((Path(__file__).parent / "fixtures" / "gfd").glob("*.yaml"))
OTHER_LABELERS = {"nvidia.com/gpu.machine", "nvidia.com/gpu.mode", "nvidia.com/gpu.present", "nvidia.com/gpu.clique",
                  "nvidia.com/gpu.healthy-count"}


def resource_labels(labels: dict[str, str]) -> dict[str, str]:
    """The keys GFD's resource labelers own (``lm.NewResourceLabeler``)."""
    return {k: v for k, v in labels.items() if k not in OTHER_LABELERS and (
        k.startswith(("nvidia.com/gpu.", "nvidia.com/mig-")) or k == "nvidia.com/mig.strategy")}


def test_the_vectors_are_there():
    assert len(VECTORS) >= 40


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_labels_are_one_of_gfds_answers_or_a_documented_floor(path):
    vector = yaml.safe_load(path.read_text())
    doc = {"driver_version": "550.54.15", "cuda_driver_version": 12040, "gpus": vector["gpus"]}
    ours = resource_labels(labels_of(doc, vector["strategy"], vector["sharing"]))
    floor = vector.get("floor")
    if floor is None:
        assert ours in vector["gfd_variants"]
        return
    assert floor["why"]
    assert ours in [variant | floor["labels"] for variant in vector["gfd_variants"]]
    assert ours not in vector["gfd_variants"]  # the floor is real: GFD gives other values there
