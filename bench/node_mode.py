"""``make bench`` section 2b: the node daemon as the DaemonSet runs it.

In a pod's view of the machine: the service account's token and CA where the kubelet mounts them,
the API server's address in the environment, HTTPS, no kubeconfig (``tests/fakes/pod.py``: a user
and mount namespace). This is the path whose imports ``deferred_imports`` keeps small, so its
memory and start-up are measured here rather than through a kubeconfig (section 2), which loads
the kubeconfig machinery a pod never needs.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bench.child import timed_child, wait_for
from tests.conftest import free_port
from tests.fakes.kube_api import FakeKubeApi
from tests.fakes.pod import available, pod_command, pod_env

BIN = str(Path(sys.executable).parent / "mig-labeler")
TOKEN = "bench-service-account"
FIXTURE = "dgx-h100-7x1g"
RUNS = 10
SCRAPES = 10
IDLE_TARGET_MIB = 36.0


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def _oneshot(api: FakeKubeApi, node: str) -> tuple[float, float]:
    """Wall from exec to exit (namespace set-up included) and peak RSS."""
    api.add_node(node)
    argv = [BIN, "run", "--oneshot", "--node-name", node, "--fixture", FIXTURE, "--metrics-port", "0"]
    wall, peak, code = timed_child(pod_command(argv, TOKEN), env=pod_env(api))
    if code != 0:
        raise RuntimeError(f"run --oneshot in a pod exited {code}")
    return wall, peak


def _idle(api: FakeKubeApi, node: str) -> tuple[float, float, float]:
    """Seconds from exec to labels on the Node, VmRSS once idle (labels published, watch open), and
    VmRSS after ``SCRAPES`` scrapes of /metrics (what Prometheus does every 30 s)."""
    api.add_node(node)
    watches = api.open_watches
    port = free_port()
    argv = [BIN, "run", "--node-name", node, "--fixture", FIXTURE, "--sleep-interval", "1h",
            "--metrics-port", str(port)]
    start = time.perf_counter()
    proc = subprocess.Popen(pod_command(argv, TOKEN), env=pod_env(api), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: "nvidia.com/gpu.count" in api.labels(node), 60, "labels on the Node")
        first = time.perf_counter() - start
        wait_for(lambda: api.open_watches > watches, 60, "the Node watch open")
        idle = _rss_kib(proc.pid) / 1024
        for _ in range(SCRAPES):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
                response.read()
        return first, idle, _rss_kib(proc.pid) / 1024
    finally:
        proc.terminate()
        proc.wait()


def bench_node_mode(row: Callable[..., None]) -> None:
    print(f"2b. node mode as in a pod (service account over HTTPS, no kubeconfig), {FIXTURE} fixture")
    reason = available()
    if reason is not None:
        print(f"  skipped: {reason}")
        return
    api = FakeKubeApi(tls=True).start()
    api.bearer_token = TOKEN
    try:
        oneshot = [_oneshot(api, f"pod-oneshot-{i}") for i in range(RUNS)]
        walls = [w for w, _ in oneshot]
        row(f"run --oneshot in a pod: wall median / max ({RUNS} runs)",
            f"{statistics.median(walls):.3f} / {max(walls):.3f} s", "<= 0.57 s", statistics.median(walls) <= 0.57,
            key="pod_oneshot_wall")
        row("run --oneshot in a pod: peak RSS (largest run)", f"{max(r for _, r in oneshot):.1f} MiB",
            key="pod_oneshot_rss")
        idle = [_idle(api, f"pod-daemon-{i}") for i in range(5)]
        firsts, rss, scraped = [f for f, _, _ in idle], [r for _, r, _ in idle], [s for _, _, s in idle]
        row("daemon in a pod: exec to labels on the Node, median (5 runs)", f"{statistics.median(firsts):.3f} s",
            key="pod_first_publish")
        row("daemon in a pod: RSS idle (published, watch open), median / max", f"{statistics.median(rss):.1f} / "
            f"{max(rss):.1f} MiB", f"<= {IDLE_TARGET_MIB:g} MiB", statistics.median(rss) <= IDLE_TARGET_MIB,
            key="pod_idle_rss")
        row(f"daemon in a pod: RSS after {SCRAPES} scrapes of /metrics, median / max",
            f"{statistics.median(scraped):.1f} / {max(scraped):.1f} MiB", key="pod_scraped_rss")
    finally:
        api.stop()
