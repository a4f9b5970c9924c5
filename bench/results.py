"""``make bench``'s rows: printed as a table, and kept machine-readable in build/bench/results.json
(each row's numbers in order, under a stable key) for ``make bench-check``, which compares the
figures the README and docs/ publish with them."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROWS: list[tuple[str, str, str, str]] = []
RESULTS = ROOT / "build" / "bench" / "results.json"  # every row, machine-readable: tools/bench_check.py reads it
FOUND: dict[str, dict] = {}


def row(what: str, value: str, target: str = "", met: bool | None = None, key: str | None = None) -> None:
    """One printed row, kept under ``key`` (default: ``what`` as a slug) with the numbers in ``value``
    in order, for ``make bench-check``."""
    verdict = "" if met is None else ("met" if met else "MISSED")
    ROWS.append((what, value, target, verdict))
    print(f"  {what:<58} {value:>26}  {target:<16} {verdict}", flush=True)
    FOUND[key or slug(what)] = {"what": what, "value": value, "numbers": [float(n) for n in NUMBER.findall(value)],
                                "target": target, "met": met}


NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def save_results() -> None:
    """Merge this run's rows into build/bench/results.json (a BENCH_ONLY run replaces its own rows)."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    rows = {**old.get("rows", {}), **FOUND}
    machine = {"python": sys.version.split()[0], "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d")}
    RESULTS.write_text(json.dumps({"machine": machine, "rows": rows}, indent=1, sort_keys=True) + "\n")


CALIBRATION = "sorted(json.loads(json.dumps(d)).items()) for 20,000 label maps"


def calibration_samples(runs: int = 7) -> list[float]:
    """A fixed pure-Python workload of the kind a pass does (dicts, strings, JSON), timed in the same
    run as everything else (at its start and at its end): published times are compared as multiples
    of it (``make bench-check``), so a slower or busier machine does not read as a regression, nor a
    faster one hide one."""
    labels = {f"nvidia.com/mig-{i}g.{i * 10}gb.count": str(i) for i in range(1, 40)}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(20_000 // 40):
            for _ in range(40):
                sorted(json.loads(json.dumps(labels)).items())
        times.append(time.perf_counter() - start)
    return times


def calibration_row(samples: list[float]) -> None:
    """The fastest sample: what the machine can do, which a busy moment at the start or the end
    of the run does not move (a median did, by 1.7 times between two runs on one machine)."""
    row(f"calibration: {CALIBRATION}, fastest of {len(samples)} (start and end)",
        f"{min(samples) * 1e3:.1f} ms", key="calibration")
