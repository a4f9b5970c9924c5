"""``make bench`` section: verifying MIG layouts against the GPU Operator's mig-parted config.

What the feature costs a pass (the same DGX H100 pass as section 1, with and without comparing
its 8 GPUs against ``all-balanced``), how fast an edit of the operator's ConfigMap reaches the
Node through the watch (from the edit to ``mig.config.applied`` changing), and what a prediction
costs from a fresh process (``labels --gpu H100-SXM5-80GB:8 --mig-config all-balanced``).
"""

from __future__ import annotations

import logging
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry

from mig_labeler.config import Config, MigStrategy
from mig_labeler.daemon.root import build_daemon
from mig_labeler.gpu_operator import MigRequest
from mig_labeler.labels.desired import labels_for_topology
from mig_labeler.labels.mig_config import verify_mig_config
from mig_labeler.simulated.fake_nvml import FakeNvml
from mig_labeler.simulated.fixture import parse_fixture
from mig_labeler.sources import TopologySource
from mig_labeler.text_files import load_mig_parted

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "tests" / "fixtures" / "mig-parted" / "config.yaml"
BALANCED = {"gpus": [{"model": "H100-SXM5-80GB", "count": 8, "mig": ["1g.10gb", "1g.10gb", "2g.20gb", "3g.40gb"]}]}
NAMESPACE, NAME = "gpu-operator", "default-mig-parted-config"
Row = Callable[..., None]


def bench_mig_config(api, tmp: Path, row: Row, passes: int = 2000, trials: int = 20) -> None:
    print("12. MIG configs: verifying the layout, a ConfigMap edit reaching the Node, a prediction")
    _pass_cost(row, passes)
    _configmap_edit(api, tmp, row, trials)
    _prediction(row)


def _pass_cost(row: Row, passes: int) -> None:
    fake = FakeNvml(parse_fixture({"driver_version": "550.54.15", "cuda_driver_version": 12040, **BALANCED}))
    source = TopologySource(fake, None, fake)
    request = MigRequest("all-balanced", "success", 0.0)
    plain = Config(mig_strategy=MigStrategy.MIXED)
    verifying = Config(mig_strategy=MigStrategy.MIXED, mig_parted=load_mig_parted(str(CONFIG)))
    assert labels_for_topology(source.read(), verifying, 1, mig_request=request).labels[
        "nvidia.com/mig.config.applied"] == "all-balanced"

    def median(config: Config) -> float:
        times = []
        for _ in range(passes):
            start = time.perf_counter()
            labels_for_topology(source.read(), config, 1, mig_request=request)
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1e3

    without, with_it = median(plain), median(verifying)
    topology, parted = source.read(), verifying.mig_parted
    times = []
    for _ in range(passes):
        start = time.perf_counter()
        verify_mig_config(topology, parted, request)
        times.append(time.perf_counter() - start)
    alone = statistics.median(times) * 1e6
    row("pass median without / with verification (8 GPUs)", f"{without:.3f} / {with_it:.3f} ms", key="mig_verify_pass")
    row("the verification alone (8 GPUs against all-balanced), median", f"{alone:.0f} µs", "<= 10% of a pass",
        alone <= 100 * without, key="mig_verify_alone")


def _configmap_edit(api, tmp: Path, row: Row, trials: int) -> None:
    """A watching daemon; the ConfigMap flips all-balanced between the node's layout and another:
    from the edit to the applied label appearing or vanishing on the Node."""
    node = "bench-mig-config"
    api.add_node(node, {"nvidia.com/mig.config": "all-balanced", "nvidia.com/mig.config.state": "success"})
    fixture = tmp / "mig-config-node.yaml"
    fixture.write_text("gpus: [{model: H100-SXM5-80GB, count: 8, mig: [1g.10gb, 1g.10gb, 2g.20gb, 3g.40gb]}]\n")
    matching = CONFIG.read_text()
    other = matching.replace('"1g.10gb": 2\n        "2g.20gb": 1\n        "3g.40gb": 1',
                             '"1g.10gb": 7', 1)
    assert other != matching
    api.put_configmap(NAMESPACE, NAME, {"config.yaml": matching})
    # No client-side rate limit: 20 edits back to back would otherwise be paced by client-go's
    # 5 requests/s (each edit costs an apply and an Event or two), measuring the limiter, not us.
    config = Config(mig_strategy=MigStrategy.MIXED, fixture=str(fixture), node_name=node, sleep_interval=3600.0,
                    mig_parted_configmap=(NAMESPACE, NAME, "config.yaml"), no_timestamp=True, kube_api_qps=-1.0)
    logger = logging.getLogger("mig_labeler")
    level = logger.level
    logger.setLevel(logging.ERROR)  # each edit logs its mismatch: not for the table
    daemon = build_daemon(config, host=api.url, registry=CollectorRegistry(), watch=True)
    daemon.start_up()
    thread = threading.Thread(target=daemon.run_forever, daemon=True)
    thread.start()
    times = []
    try:
        _until(lambda: api.labels(node).get("nvidia.com/mig.config.applied") == "all-balanced")
        for i in range(trials):
            text, applied = (other, None) if i % 2 == 0 else (matching, "all-balanced")
            start = time.perf_counter()
            api.put_configmap(NAMESPACE, NAME, {"config.yaml": text})
            _until(lambda applied=applied: api.labels(node).get("nvidia.com/mig.config.applied") == applied)
            times.append(time.perf_counter() - start)
    finally:
        daemon.stop.request()
        thread.join(10)
        logger.setLevel(level)
    median, worst = statistics.median(times) * 1e3, max(times) * 1e3
    row(f"ConfigMap edit to Node label, median / max ({trials} edits)", f"{median:.0f} / {worst:.0f} ms", "<= 1 s",
        worst <= 1000, key="configmap_edit")


def _prediction(row: Row, runs: int = 5) -> None:
    command = [str(Path(sys.executable).parent / "mig-labeler"), "labels", "--gpu", "H100-SXM5-80GB:8",
               "--mig-config", "all-balanced", "--mig-parted-config", str(CONFIG), "--mig-strategy", "mixed"]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    row(f"labels --gpu H100-SXM5-80GB:8 --mig-config, fresh process (median of {runs})",
        f"{statistics.median(times) * 1e3:.0f} ms", "<= 1 s", statistics.median(times) <= 1.0, key="predict_labels")


def _until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("bench: the condition never came")
        time.sleep(0.001)
