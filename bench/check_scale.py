"""``make bench`` section: ``check`` at cluster scale, end to end, next to merely parsing its input.

10,000 workloads (one multi-document YAML file) against 5,000 nodes in four GPU pools (a saved
labels file; each node also has its own hostname and a zone, as real nodes do). The same files
are parsed by a bare process with the fastest loader there is (libyaml's ``CSafeLoader``, ``json``),
which is the floor any checker pays; the target is ``check`` at most twice that.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

WORKLOADS, NODES, RUNS = 10_000, 5_000, 3
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


def write_inputs(folder: Path, pool_labels: Callable[[str, str], dict[str, str]]) -> tuple[Path, Path]:
    pods = folder / "pods.yaml"
    docs = [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"w{i}"},
             "spec": {"template": {"spec": _spec(i)}}} for i in range(WORKLOADS)]
    pods.write_text(yaml.dump_all(docs, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper)))
    labels = [pool_labels(name, strategy) for name, strategy in POOLS]
    fleet = {f"node-{i}": {**labels[i % len(POOLS)], "kubernetes.io/hostname": f"node-{i}",
                           "topology.kubernetes.io/zone": f"zone-{i % 3}"} for i in range(NODES)}
    nodes = folder / "fleet.json"
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


def _wall(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def bench_check_scale(folder: Path, pool_labels: Callable[[str, str], dict[str, str]],
                      row: Callable[..., None]) -> None:
    print(f"11. check at cluster scale: {WORKLOADS} workloads x {NODES} nodes in {len(POOLS)} pools "
          f"(fresh process, {RUNS} runs)")
    pods, nodes = write_inputs(folder, pool_labels)
    parse = [_wall([sys.executable, "-c", PARSE_ONLY, str(pods), str(nodes)]) for _ in range(RUNS)]
    check = [_wall([sys.executable, "-m", "mig_labeler", "check", "-f", str(pods), "--labels", str(nodes), "-o",
                    "json"]) for _ in range(RUNS)]
    floor, took = statistics.median(parse), statistics.median(check)
    row("parse only (CSafeLoader + json), median", f"{floor:.2f} s")
    row("check -f pods.yaml --labels fleet.json -o json, median", f"{took:.2f} s ({took / floor:.1f}x parse)",
        "<= 2x parse", took <= 2 * floor)
