"""Our side of the differential check against GFD's own labeler (shared/spec/gfd-differential.md).

Two steps, run by hand (CI cannot fetch GFD; what this finds goes into tests/fixtures/gfd/ as data):

    python tools/gfd_diff.py cases --count 1000 --seed 1 > cases.json
    <GFD's internal/lm over an NVML answered from each case's "nvml" transcript> < cases.json > gfd.json
    python tools/gfd_diff.py compare cases.json gfd.json [--write DIR]

``cases`` draws node layouts (several models per node, MIG on/off/empty per GPU, CI profiles, several
compute instances in one GPU instance, per-GPU memory, sharing configs, every strategy) and writes,
for each, the fixture, the strategy, the sharing config, what our fake NVML answers call by call
(``nvml``) and our labels. ``compare`` reads GFD's answers, one object per case
(``{"id": ..., "variants": [label map, ...]}``, each distinct result of many runs, as GFD is random
among equals) and reports every case where our labels are not one of GFD's variants, restricted to
the keys GFD's resource labelers own (``nvidia.com/gpu.*``, ``nvidia.com/mig-*``, ``mig.strategy``).
The harness that builds GFD is not part of this repository (the workplace does not let a recipe
that builds a fetched program be committed); the spec above describes one.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

import pynvml
import yaml

from mig_labeler.config import Config, MigStrategy
from mig_labeler.config_file import parse_sharing
from mig_labeler.gpu_models import GiProfile, GpuModel, gpu_models
from mig_labeler.labels import compute_labels
from mig_labeler.simulated.fake_nvml import FakeNvml
from mig_labeler.simulated.fixture import parse_fixture
from mig_labeler.simulated.layout import layout_problem
from mig_labeler.sources.nvml import read_topology

MODELS = ["A100-SXM4-40GB", "A100-SXM4-80GB", "A100-PCIE-40GB", "H100-SXM5-80GB", "H200", "A30", "B200"]
T4 = {"name": "Tesla T4", "memory_mib": 15360, "compute_capability": [7, 5], "mig_capable": False}
SHARING = [None,
           {"timeSlicing": {"resources": [{"name": "nvidia.com/gpu", "replicas": 4}]}},
           {"timeSlicing": {"renameByDefault": True, "resources": [{"name": "nvidia.com/gpu", "replicas": 2}]}},
           {"timeSlicing": {"resources": [{"name": "nvidia.com/mig-1g.10gb", "replicas": 3},
                                          {"name": "nvidia.com/mig-1g.5gb", "replicas": 2}]}},
           {"mps": {"resources": [{"name": "nvidia.com/gpu", "replicas": 2}]}}]
STRATEGIES = ["none", "single", "mixed"]
OTHER_LABELERS = {"nvidia.com/gpu.machine", "nvidia.com/gpu.mode", "nvidia.com/gpu.present", "nvidia.com/gpu.clique",
                  "nvidia.com/gpu.healthy-count"}


def is_resource_key(key: str) -> bool:
    """The keys GFD's resource labelers (NewResourceLabeler) own."""
    if key in OTHER_LABELERS:
        return False
    return key.startswith(("nvidia.com/gpu.", "nvidia.com/mig-")) or key == "nvidia.com/mig.strategy"


def _gi(model: GpuModel, name: str) -> GiProfile:
    ci = model.ci_profile(name)
    profile = model.profile(ci.gi if ci else name)
    assert profile is not None
    return profile


def _layout(rng: random.Random, model: GpuModel) -> list[Any]:
    names = [p.name for p in model.profiles] + [c.name for c in model.compute_instance_profiles]
    if rng.random() < 0.25 and model.compute_instance_profiles:  # several CIs in one GI
        gi = _gi(model, rng.choice(model.compute_instance_profiles).name)
        ones = [c.name for c in model.compute_instance_profiles if c.gi == gi.name and c.ci_slices == 1]
        group = [{"profile": ones[0], "gi": "shared"} for _ in range(rng.randint(2, gi.attributes.slices_gi))]
        wanted = [rng.choice(names) for _ in range(rng.randint(0, 3))]
        return group + _fitting(model, wanted, [(gi.name, gi)])
    return _fitting(model, [rng.choice(names) for _ in range(rng.randint(1, model.max_mig_devices))], [])


def _fitting(model: GpuModel, wanted: list[str], placed: list[tuple[str, GiProfile]]) -> list[Any]:
    kept: list[str] = []
    for name in wanted:
        if layout_problem(model, [*placed, *((n, _gi(model, n)) for n in (*kept, name))]) is None:
            kept.append(name)
    return kept


def _entry(rng: random.Random) -> dict:
    if rng.random() < 0.1:
        return dict(T4, count=rng.randint(1, 2))
    model = gpu_models()[rng.choice(MODELS)]
    entry: dict[str, Any] = {"model": model.key, "count": rng.randint(1, 3)}
    roll = rng.random()
    if roll < 0.4:
        entry["mig"] = _layout(rng, model)
    elif roll < 0.5:
        entry["mig"] = []
    if "mig" not in entry and rng.random() < 0.15:  # one board of the model with less memory (ECC on)
        entry["memory_mib"] = model.memory_mib - rng.choice([512, 1024, 2560])
        entry["count"] = 1
    return entry


def draw_case(rng: random.Random, index: int) -> dict:
    fixture = {"driver_version": "550.54.15", "cuda_driver_version": 12040,
               "gpus": [_entry(rng) for _ in range(rng.randint(1, 4))]}
    return {"id": f"case-{index}", "strategy": rng.choice(STRATEGIES), "sharing": rng.choice(SHARING),
            "fixture": fixture}


def our_labels(case: dict) -> dict[str, str]:
    config = Config(mig_strategy=MigStrategy(case["strategy"]), sharing=parse_sharing(case["sharing"]),
                    no_timestamp=True)
    topology = read_topology(FakeNvml(parse_fixture(case["fixture"])))
    return {k: v for k, v in compute_labels(topology, config, 0).items() if is_resource_key(k)}


# -- the NVML transcript: every answer go-nvlib asks for, from the same fake our reader uses ---------
def transcript(fixture: dict) -> dict:
    nvml = FakeNvml(parse_fixture(fixture))
    nvml.nvmlInit()
    gpus = [_gpu_transcript(nvml, i) for i in range(nvml.nvmlDeviceGetCount())]
    return {"driver": nvml.nvmlSystemGetDriverVersion(), "cuda": nvml.nvmlSystemGetCudaDriverVersion(), "gpus": gpus}


def _struct(info: Any) -> dict:
    return {name: getattr(info, name) for name, _ in info._fields_ if name not in ("name", "version")}


def _gpu_transcript(nvml: FakeNvml, index: int) -> dict:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
    out: dict[str, Any] = {"name": nvml.nvmlDeviceGetName(handle), "uuid": nvml.nvmlDeviceGetUUID(handle),
                           "memory_bytes": nvml.nvmlDeviceGetMemoryInfo(handle).total, "cc": [major, minor]}
    try:
        mode = nvml.nvmlDeviceGetMigMode(handle)
    except pynvml.NVMLError:
        return out | {"mig_mode": None}
    out |= {"mig_mode": mode, "max_mig": nvml.nvmlDeviceGetMaxMigDeviceCount(handle), "gi_profiles": {},
            "migs": [], "gis": {}}
    if mode[0] != 1:
        return out
    for p in range(pynvml.NVML_GPU_INSTANCE_PROFILE_COUNT):
        try:
            out["gi_profiles"][str(p)] = _struct(nvml.nvmlDeviceGetGpuInstanceProfileInfo(handle, p))
        except pynvml.NVMLError:
            pass
    for slot in range(out["max_mig"]):
        try:
            mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
        except pynvml.NVMLError:
            continue
        gi_id, ci_id = nvml.nvmlDeviceGetGpuInstanceId(mig), nvml.nvmlDeviceGetComputeInstanceId(mig)
        out["migs"].append({"slot": slot, "uuid": nvml.nvmlDeviceGetUUID(mig), "gi_id": gi_id, "ci_id": ci_id,
                            "memory_bytes": nvml.nvmlDeviceGetMemoryInfo(mig).total,
                            "attributes": _struct(nvml.nvmlDeviceGetAttributes(mig))})
        gi = nvml.nvmlDeviceGetGpuInstanceById(handle, gi_id)
        entry = out["gis"].setdefault(str(gi_id), {"profile_id": nvml.nvmlGpuInstanceGetInfo(gi).profileId,
                                                   "ci_profiles": _ci_profiles(nvml, gi), "cis": {}})
        ci = nvml.nvmlGpuInstanceGetComputeInstanceById(gi, ci_id)
        entry["cis"][str(ci_id)] = nvml.nvmlComputeInstanceGetInfo(ci).profileId
    return out


def _ci_profiles(nvml: FakeNvml, gi: Any) -> dict:
    found = {}
    for p in range(pynvml.NVML_COMPUTE_INSTANCE_PROFILE_COUNT):
        try:
            found[str(p)] = _struct(nvml.nvmlGpuInstanceGetComputeInstanceProfileInfo(gi, p, 0))
        except pynvml.NVMLError:
            pass
    return found


def cmd_cases(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    cases = []
    for i in range(args.count):
        case = draw_case(rng, i)
        case["nvml"] = transcript(case["fixture"])
        case["ours"] = our_labels(case)
        cases.append(case)
    json.dump(cases, sys.stdout)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    cases = {c["id"]: c for c in json.loads(Path(args.cases).read_text())}
    answers = json.loads(Path(args.gfd).read_text())
    differ = 0
    for answer in answers:
        case = cases[answer["id"]]
        if answer.get("error"):
            print(f"{case['id']}: GFD failed: {answer['error']}")
            continue
        variants = [{k: v for k, v in m.items() if is_resource_key(k)} for m in answer["variants"]]
        ours = our_labels(case)
        if ours in variants:
            continue
        differ += 1
        print(f"{case['id']} ({case['strategy']}, {len(variants)} GFD variants): "
              f"{yaml.safe_dump(case['fixture']['gpus'], default_flow_style=True).strip()}")
        for key in sorted(set(ours) | {k for v in variants for k in v}):
            theirs = sorted({v.get(key, "<absent>") for v in variants})
            if [ours.get(key, "<absent>")] != theirs:
                print(f"    {key}: ours {ours.get(key, '<absent>')!r}, GFD {theirs}")
        if args.write:
            doc = {"strategy": case["strategy"], "sharing": case["sharing"], "fixture": case["fixture"],
                   "gfd_variants": variants}
            Path(args.write, f"{case['id']}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    print(f"{len(answers)} cases compared, {differ} differ")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cases = sub.add_parser("cases", help="generated layouts with their NVML transcripts, JSON on stdout")
    cases.add_argument("--count", type=int, default=1000)
    cases.add_argument("--seed", type=int, default=1)
    compare = sub.add_parser("compare", help="our labels against GFD's answers")
    compare.add_argument("cases")
    compare.add_argument("gfd")
    compare.add_argument("--write", help="write each differing case as a fixture into this folder")
    args = parser.parse_args()
    return cmd_cases(args) if args.command == "cases" else cmd_compare(args)


if __name__ == "__main__":
    sys.exit(main())
