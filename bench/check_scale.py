"""``make bench`` section: ``check`` at cluster scale, end to end, next to merely parsing its input.

Workloads (one multi-document YAML file) against nodes in four GPU pools (a saved labels file;
each node also has its own hostname and a zone, as real nodes do), at two shapes: 10,000 × 5,000
and 50,000 × 1,000 (many workloads on a mid-size fleet: the shape where output per workload would
grow with the fleet). The same files are parsed by a bare process with the fastest loader there is
(libyaml's ``CSafeLoader``, ``json``), which is the floor any checker pays; the targets are
``check`` at most twice that, and under 600 MB at its peak.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from bench.child import timed_child

SHAPES, RUNS = ((10_000, 5_000), (50_000, 1_000)), 3
PEAK_MB = 600
POOLS = (("dgx-a100-7x1g", "single"), ("dgx-a100-mixed", "mixed"), ("dgx-h100-7x1g", "mixed"), ("a30-mig-off", "none"))
SPECS = [
    {"nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"},
     "containers": [{"name": "c", "image": "x", "resources": {"limits": {"nvidia.com/gpu": 2}}}]},
    {"nodeSelector": {"nvidia.com/mig.strategy": "mixed", "topology.kubernetes.io/zone": "zone-1"},
     "containers": [{"name": "c", "image": "x", "resources": {"limits": {"nvidia.com/mig-3g.20gb": 1}}}]},
    {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "nvidia.com/gpu.present", "operator": "Exists"}]}]}}},
     "containers": [{"name": "c", "image": "x", "resources": {"limits": {"nvidia.com/gpu": 1}}}]},
    {"nodeSelector": {"nvidia.com/gpu.product": "A100-SXM-80GB"},
     "containers": [{"name": "c", "image": "x", "resources": {"limits": {"nvidia.com/gpu": 1}}}]},
]
PARSE_ONLY = ("import json, sys, yaml; list(yaml.load_all(open(sys.argv[1]).read(), Loader=yaml.CSafeLoader)); "
              "json.load(open(sys.argv[2]))")


def write_inputs(folder: Path, pool_labels: Callable[[str, str], dict[str, str]], workloads: int,
                 nodes_count: int) -> tuple[Path, Path]:
    pods = folder / f"pods-{workloads}.yaml"
    docs = [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"w{i}"},
             "spec": {"template": {"spec": _spec(i)}}} for i in range(workloads)]
    pods.write_text(yaml.dump_all(docs, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper)))
    labels = [pool_labels(name, strategy) for name, strategy in POOLS]
    fleet = {f"node-{i}": {**labels[i % len(POOLS)], "kubernetes.io/hostname": f"node-{i}",
                           "topology.kubernetes.io/zone": f"zone-{i % 3}"} for i in range(nodes_count)}
    nodes = folder / f"fleet-{nodes_count}.json"
    nodes.write_text(json.dumps(fleet))
    return pods, nodes


def _spec(i: int) -> dict:
    """One of the four shapes, each with its own image, command and GPU count, as real teams differ."""
    spec = json.loads(json.dumps(SPECS[i % len(SPECS)]))
    container = spec["containers"][0]
    container |= {"name": f"app-{i}", "image": f"registry.example.com/team-{i % 97}/app:{i}",
                  "command": ["python", "train.py", f"--run={i}"]}
    limits = container["resources"]["limits"]
    limits.update({name: 1 + i % 3 for name in limits})
    return spec


def bench_check_scale(folder: Path, pool_labels: Callable[[str, str], dict[str, str]],
                      row: Callable[..., None]) -> None:
    print(f"11. check at cluster scale: workloads x nodes in {len(POOLS)} pools (fresh process, {RUNS} runs each)")
    for workloads, nodes_count in SHAPES:
        pods, nodes = write_inputs(folder, pool_labels, workloads, nodes_count)
        shape = f"{workloads // 1000}k x {nodes_count // 1000}k"
        parse = [timed_child([sys.executable, "-c", PARSE_ONLY, str(pods), str(nodes)]) for _ in range(RUNS)]
        check = [timed_child([sys.executable, "-m", "mig_labeler", "check", "-f", str(pods), "--labels", str(nodes),
                         "-o", "json"]) for _ in range(RUNS)]
        floor, took = statistics.median(t for t, _, _ in parse), statistics.median(t for t, _, _ in check)
        peak = max(r for _, r, _ in check)
        key = f"check_{workloads // 1000}kx{nodes_count // 1000}k"
        row(f"{shape}: parse only (CSafeLoader + json), median", f"{floor:.2f} s", key=f"{key}_parse")
        row(f"{shape}: check -o json, median (x parse)", f"{took / floor:.2f}x ({took:.2f} s)", "<= 2x parse",
            took <= 2 * floor, key=f"{key}_ratio")
        row(f"{shape}: check -o json, peak RSS", f"{peak:.0f} MiB", f"< {PEAK_MB} MB", peak * 1.048576 < PEAK_MB,
            key=f"{key}_peak")
