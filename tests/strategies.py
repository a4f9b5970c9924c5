"""Hypothesis strategies: node fixtures drawn from the real GPU model table, configs, label maps."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from mig_labeler.gpu_models import GiProfile, GpuModel, gpu_models
from mig_labeler.simulated.layout import layout_problem

MODELS = sorted(gpu_models())
CLUSTERS = ["7b968a6d-c8aa-45e1-9e07-e1e51be99c31", "00000000-0000-0000-0000-000000000000",
            "FFFFFFFF-FFFF-4FFF-BFFF-FFFFFFFFFFFF"]
ODD_NAMES = ["Tesla T4", "NVIDIA RTX PRO 6000 Blackwell Server Edition", "GPU (rev 2)", "  spaced  out ",
             "Grüße/GPU", "-leading", "trailing.", "x" * 80]


@st.composite
def gpu_entries(draw: Any) -> dict:
    if draw(st.integers(0, 5)) == 0:  # a non-MIG GPU with an awkward name
        return {"name": draw(st.sampled_from(ODD_NAMES) | st.text(min_size=1, max_size=40)),
                "memory_mib": draw(st.integers(0, 200_000)),
                "compute_capability": [draw(st.integers(0, 14)), draw(st.integers(0, 9))],
                "count": draw(st.integers(1, 3))}
    model = gpu_models()[draw(st.sampled_from(MODELS))]
    entry: dict[str, Any] = {"model": model.key, "count": draw(st.integers(1, 4))}
    layout = draw(st.sampled_from(["off", "mig", "pending"]))
    names = [p.name for p in model.profiles] + [c.name for c in model.compute_instance_profiles]
    if layout == "mig" and names:
        entry["mig"] = fitting(model, draw(st.lists(st.sampled_from(names), max_size=model.max_mig_devices)))
    elif layout == "pending":
        entry["mig_mode"] = {"current": draw(st.integers(0, 1)), "pending": draw(st.integers(0, 1))}
    if draw(st.integers(0, 3)) == 0:  # an NVLink fabric (gpu.clique)
        entry["fabric"] = {"cluster_uuid": draw(st.sampled_from(CLUSTERS)),
                           "clique_id": draw(st.integers(0, 2**32 - 1)),
                           "state": draw(st.sampled_from(["completed", "in_progress", "not_started", "not_supported"])),
                           "status": draw(st.sampled_from(["NVML_SUCCESS", "NVML_ERROR_NOT_READY"]))}
    return entry


def fitting(model: GpuModel, wanted: list[str]) -> list[str]:
    """The drawn profiles that fit on the GPU, in order, by the fixture parser's own rule."""
    def gi(name: str) -> GiProfile:
        ci = model.ci_profile(name)
        profile = model.profile(ci.gi if ci else name)
        assert profile is not None
        return profile

    kept: list[str] = []
    for name in wanted:
        if layout_problem(model, [(n, gi(n)) for n in (*kept, name)]) is None:
            kept.append(name)
    return kept


@st.composite
def node_fixtures(draw: Any) -> dict:
    major = draw(st.integers(400, 600))
    fields = [str(major), f"{draw(st.integers(0, 200)):02d}"] + draw(st.lists(st.just("01"), max_size=1))
    return {
        "driver_version": ".".join(fields),
        "cuda_driver_version": draw(st.integers(10000, 13090)),
        "machine_type": draw(st.none() | st.sampled_from(ODD_NAMES) | st.text(max_size=70)),
        "gpus": draw(st.lists(gpu_entries(), max_size=4)),
    }


def _resources(draw: Any) -> list[dict]:
    names = ["gpu", "nvidia.com/gpu", "mig-1g.5gb", "mig-3g.20gb", "mig-1g.10gb", "mig-1g.10gb.me", "mig-7g.80gb"]
    return [{"name": n, "replicas": draw(st.integers(2, 16))}
            for n in draw(st.lists(st.sampled_from(names), min_size=1, max_size=4))]


@st.composite
def sharing_configs(draw: Any) -> dict | None:
    kind = draw(st.sampled_from([None, "timeSlicing", "mps"]))
    if kind is None:
        return None
    return {kind: {"renameByDefault": draw(st.booleans()), "resources": _resources(draw)}}
