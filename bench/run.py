"""``make bench``: speed, memory and API-cost numbers for mig-labeler, printed as a table.

Not part of ``make test``: nothing here asserts; each row says whether its target was met.
The Kubernetes API is the test suite's fake server (tests/fakes/kube_api.py) on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prometheus_client import CollectorRegistry  # noqa: E402

from bench.check_scale import bench_check_scale  # noqa: E402
from bench.child import timed_child, wait_for  # noqa: E402
from bench.mig_config import bench_mig_config  # noqa: E402
from bench.node_mode import bench_node_mode  # noqa: E402
from bench.results import RESULTS, ROWS, calibration_row, calibration_samples, row, save_results  # noqa: E402
from bench.shutdown import bench_shutdown, bench_timeouts  # noqa: E402
from mig_labeler.config import Config, MigStrategy  # noqa: E402
from mig_labeler.daemon.root import build_daemon  # noqa: E402
from mig_labeler.labels.desired import labels_for_topology  # noqa: E402
from mig_labeler.simulated.fake_nvml import FakeNvml  # noqa: E402
from mig_labeler.simulated.fixture import resolve_fixture  # noqa: E402
from mig_labeler.sources import TopologySource  # noqa: E402
from tests.conftest import free_port, write_kubeconfig  # noqa: E402
from tests.fakes.kube_api import FakeKubeApi  # noqa: E402

BIN = Path(sys.executable).parent / "mig-labeler"
# Two MIG layouts of a DGX H100 that the reaction benchmarks flip between, and their count label.
LAYOUTS = {"3g.40gb": "gpus: [{model: H100-SXM5-80GB, count: 8, mig: [3g.40gb, 3g.40gb]}]\n",
           "1g.10gb": "gpus: [{model: H100-SXM5-80GB, count: 8, mig: [1g.10gb, 1g.10gb, 1g.10gb]}]\n"}
COUNTS = {"3g.40gb": "16", "1g.10gb": "24"}
# The reaction sections run their trials back to back: with client-go's 5 requests/s (burst 10)
# every trial after the burst waits for a token, and the row would measure the limiter (0.2 s),
# not the reaction. A real MIG change finds the bucket full, so these daemons run without it.
UNLIMITED = ("--kube-api-qps", "-1")
def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_pass() -> None:
    print("1. one discovery + label pass, DGX H100 fixture (8 GPUs x 7 MIG devices)")
    fake = FakeNvml(resolve_fixture("dgx-h100-7x1g"))
    source = TopologySource(fake, None, fake)
    config = Config(mig_strategy=MigStrategy.SINGLE)
    times = []
    for _ in range(2000):
        start = time.perf_counter()
        labels_for_topology(source.read(), config, 1)
        times.append(time.perf_counter() - start)
    fake.calls.clear()
    source.read()
    median, p99 = statistics.median(times) * 1e3, pct(times, 0.99) * 1e3
    row("pass time median / p99 (2000 passes)", f"{median:.3f} / {p99:.3f} ms", "<= 2 ms", p99 <= 2.0, key="pass_time")
    row("NVML calls per pass (static facts cached)", str(sum(fake.calls.values())), key="nvml_calls_steady")
    cold = FakeNvml(resolve_fixture("dgx-h100-7x1g"))
    TopologySource(cold, None, cold).read()
    row("NVML calls on the first pass (nothing cached yet)", str(sum(cold.calls.values())), key="nvml_calls_first")


def bench_cold(api: FakeKubeApi, kubeconfig: Path) -> None:
    print("2. cold start (fresh process each time, 10 runs)")
    labels = [timed_child([str(BIN), "labels", "--fixture", "dgx-h100-7x1g", "--mig-strategy", "single"])
              for _ in range(10)]
    wall = [t for t, _, _ in labels]
    row("labels --fixture dgx-h100-7x1g: wall median / max", f"{statistics.median(wall):.3f} / {max(wall):.3f} s",
        "<= 0.15 s", statistics.median(wall) <= 0.15, key="labels_cold")
    row("labels: peak RSS", f"{max(r for _, r, _ in labels):.1f} MiB", key="labels_rss")
    oneshot = []
    for i in range(10):
        api.add_node(f"cold-{i}")
        oneshot.append(timed_child([str(BIN), "run", "--oneshot", "--node-name", f"cold-{i}", "--kubeconfig",
                                    str(kubeconfig), "--fixture", "dgx-h100-7x1g", "--mig-strategy", "single"]))
    wall = [t for t, _, _ in oneshot]
    row("run --oneshot (fake API server): wall median / max", f"{statistics.median(wall):.3f} / {max(wall):.3f} s",
        "<= 0.8 s", statistics.median(wall) <= 0.8, key="oneshot_kubeconfig")
    row("run --oneshot: peak RSS / exit codes",
        f"{max(r for _, r, _ in oneshot):.1f} MiB / {sorted({c for _, _, c in oneshot})}", key="oneshot_kubeconfig_rss")


def bench_sinks(api: FakeKubeApi, kubeconfig: Path, runs: int = 10, passes: int = 60) -> None:
    """Per sink: a cold ``run --oneshot`` (fresh process), and writes per hour when nothing changes
    (``passes`` passes of a daemon at the 60 s interval = one hour)."""
    print(f"9. sinks: cold oneshot ({runs} runs) and writes per hour with nothing changing ({passes} passes)")
    with tempfile.TemporaryDirectory() as tmp:
        for sink in ("node", "nodefeature", "file"):
            wall = []
            for i in range(runs):
                node = f"sink-{sink}-{i}"
                api.add_node(node)
                args = ["run", "--oneshot", "--sink", sink, "--fixture", "dgx-h100-7x1g", "--mig-strategy", "single",
                        "--namespace", "mig-labeler", "--output-file", f"{tmp}/{node}"]
                if sink != "file":
                    args += ["--node-name", node, "--kubeconfig", str(kubeconfig)]
                seconds, _, code = timed_child([str(BIN), *args])
                assert code == 0, (sink, code)
                wall.append(seconds)
            node = f"sink-{sink}-steady"
            api.add_node(node)
            config = Config(mig_strategy=MigStrategy.SINGLE, fixture=str(resolve_fixture("dgx-h100-7x1g")),
                            node_name=None if sink == "file" else node, no_timestamp=True, sinks=(sink,),
                            namespace="mig-labeler", output_file=f"{tmp}/{node}")
            daemon = build_daemon(config, host=api.url, registry=CollectorRegistry())
            daemon.run_pass()
            writes = len(api.writes())
            mtime = Path(f"{tmp}/{node}").stat().st_mtime_ns if sink == "file" else 0
            wrote = sum(daemon.run_pass().wrote for _ in range(passes))
            assert len(api.writes()) == writes
            assert sink != "file" or Path(f"{tmp}/{node}").stat().st_mtime_ns == mtime
            row(f"{sink}: cold oneshot wall median / max", f"{statistics.median(wall):.3f} / {max(wall):.3f} s",
                "<= 0.8 s", statistics.median(wall) <= 0.8, key=f"sink_{sink}_cold")
            row(f"{sink}: writes per hour, nothing changing", str(wrote), "0", wrote == 0, key=f"sink_{sink}_writes")


def bench_soak(api: FakeKubeApi, passes: int = 10_000) -> None:
    print(f"3. steady-state daemon RSS, {passes} passes, MIG layout flips every 10 passes (child process)")
    api.add_node("soak-node")
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, str(ROOT / "bench" / "soak.py"), api.url, f"{tmp}/node.yaml",
                              str(passes)], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    points = [json.loads(line) for line in out.splitlines()]
    first, last = points[1], points[-1]  # after pass 100 (warm), after the last pass
    row("RSS after pass 100 / after last pass", f"{first['rss_kib'] / 1024:.1f} / {last['rss_kib'] / 1024:.1f} MiB",
        "<= 60 MiB, flat", last["rss_kib"] <= 60 * 1024 and last["rss_kib"] - first["rss_kib"] < 2048, key="soak_rss")
    row("RSS samples (MiB)", " ".join(f"{p['rss_kib'] / 1024:.1f}" for p in points))
    row("writes over the run (one per layout flip expected)", f"{last['writes']} / {passes // 10}")


def steady_cost(api: FakeKubeApi, node: str, watch: bool, passes: int = 200) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        fixture = Path(tmp) / "n.yaml"
        fixture.write_text(resolve_fixture("dgx-h100-7x1g").read_text())
        config = Config(mig_strategy=MigStrategy.MIXED, fixture=str(fixture), node_name=node, no_timestamp=True)
        daemon = build_daemon(config, host=api.url, registry=CollectorRegistry(), watch=watch)
        if daemon.node.watcher:
            daemon.node.start_watching()
            while not (daemon.node.watcher.connected.is_set() and daemon.node.latest()):
                time.sleep(0.01)
        daemon.run_pass()
        time.sleep(0.05)
        before = len(api.log)
        writes_before = len(api.writes())
        for _ in range(passes):
            daemon.run_pass()
        requests = (len(api.log) - before) / passes
        assert len(api.writes()) == writes_before
        daemon.stop.request()
        return requests


def bench_api(api: FakeKubeApi) -> None:
    print("4. API cost in steady state")
    api.add_node("cost-poll")
    api.add_node("cost-watch")
    polling = steady_cost(api, "cost-poll", watch=False)
    watching = steady_cost(api, "cost-watch", watch=True)
    row("requests per pass: polling / with the watch", f"{polling:.2f} / {watching:.2f}", "<= 1, no GET",
        polling <= 1 and watching == 0, key="requests_per_pass")
    per_hour_watch = 60 * watching + 3600 / 300  # 60 s interval; the watch is renewed every 300 s
    row("per node per hour at 60s interval: requests (watch)", f"{per_hour_watch:.0f} (writes 0)",
        key="requests_per_hour_watch")
    row("per node per hour at 60s interval: requests (polling)", f"{60 * polling:.0f} (writes 0)",
        key="requests_per_hour_polling")
    fleet(api)


def labelers(api: FakeKubeApi, fixture: Path, prefix: str, count: int, watch: bool) -> list:
    """``count`` daemons, each with its own Node on the shared server, as on a real fleet."""
    daemons = []
    for i in range(count):
        api.add_node(f"{prefix}-{i}")
        config = Config(mig_strategy=MigStrategy.SINGLE, fixture=str(fixture), node_name=f"{prefix}-{i}",
                        no_timestamp=True)
        daemons.append(build_daemon(config, host=api.url, registry=CollectorRegistry(), watch=watch))
    return daemons


def fleet(api: FakeKubeApi, nodes: int = 1000, watching_sample: int = 100) -> None:
    """1,000 labelers against one server for 60 simulated seconds at the default 60 s interval:
    each makes its first pass (GET + apply + Event) and one periodic pass. Reduced-cost mode: the
    passes run back to back in this process, and request counts are divided by 60 s. The watch
    variant runs a real watching sample and scales it."""
    with tempfile.TemporaryDirectory() as tmp:
        fixture = Path(tmp) / "n.yaml"
        fixture.write_text(resolve_fixture("dgx-a100-7x1g").read_text())
        daemons = labelers(api, fixture, "fleet", nodes, watch=False)
        before = len(api.log)
        start = time.perf_counter()
        for daemon in daemons:
            daemon.run_pass()
        first = len(api.log) - before
        for daemon in daemons:
            daemon.run_pass()
        periodic = len(api.log) - before - first
        elapsed = time.perf_counter() - start
        for daemon in daemons:
            daemon.kube.close()
    row(f"fleet of {nodes}, polling: first minute (start-up) req/s", f"{first / 60:.1f}")
    row(f"fleet of {nodes}, polling: steady req/s", f"{periodic / 60:.1f}  ({elapsed:.1f}s real)",
        key="fleet_polling_steady")
    row(f"fleet of {nodes}, watch: steady req/s (watch renewals only)", f"{nodes / 300:.1f}",
        "", None, key="fleet_watch_steady")
    row(f"  (watch sample: {watching_sample} real watching labelers, steady requests per pass)",
        f"{watch_sample(api, watching_sample):.2f}")


def watch_sample(api: FakeKubeApi, count: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        fixture = Path(tmp) / "n.yaml"
        fixture.write_text(resolve_fixture("dgx-a100-7x1g").read_text())
        daemons = labelers(api, fixture, "watch", count, watch=True)
        for daemon in daemons:
            daemon.node.start_watching()
        for daemon in daemons:
            while not (daemon.node.watcher.connected.is_set() and daemon.node.latest()):
                time.sleep(0.005)
            daemon.run_pass()
        time.sleep(0.2)
        before = len(api.log)
        for daemon in daemons:
            daemon.run_pass()
        per_pass = (len(api.log) - before) / count
        for daemon in daemons:
            daemon.stop.request()
        api.break_watches()  # end the 100 watch streams now: they would load the benchmarks that follow
        for daemon in daemons:
            daemon.node.watcher.thread.join(timeout=10)
        return per_pass


def swap_layout(fixture: Path, profile: str) -> None:
    """Rewrite the fixture atomically, as a MIG reconfiguration changes what NVML shows."""
    tmp_file = fixture.with_suffix(".tmp")
    tmp_file.write_text(LAYOUTS[profile])
    tmp_file.replace(fixture)


def bench_reaction(api: FakeKubeApi, kubeconfig: Path, trials: int = 50) -> None:
    print(f"5. reaction latency: fixture rewritten + mig.config.state=success -> new labels ({trials} trials)")
    node = "reaction-node"
    api.add_node(node, {"nvidia.com/mig.config": "all-1g.10gb", "nvidia.com/mig.config.state": "success"})
    with tempfile.TemporaryDirectory() as tmp:
        fixture = Path(tmp) / "node.yaml"
        fixture.write_text(LAYOUTS["1g.10gb"])
        proc = subprocess.Popen([str(BIN), "run", "--node-name", node, "--kubeconfig", str(kubeconfig), "--fixture",
                                 str(fixture), "--mig-strategy", "mixed", "--sleep-interval", "1h", *UNLIMITED,
                                 "--metrics-port", "0"], stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: api.labels(node).get("nvidia.com/mig-1g.10gb.count") == "24", 10)
            time.sleep(0.3)
            latencies = []
            for i in range(trials):
                profile = "3g.40gb" if i % 2 == 0 else "1g.10gb"
                count = COUNTS[profile]
                api.edit_labels(node, {"nvidia.com/mig.config": f"all-{profile}",
                                       "nvidia.com/mig.config.state": "pending"}, manager="nvidia-mig-manager")
                swap_layout(fixture, profile)
                start = time.perf_counter()
                api.edit_labels(node, {"nvidia.com/mig.config.state": "success"}, manager="nvidia-mig-manager")
                wait_for(lambda p=profile, c=count: api.labels(node).get(f"nvidia.com/mig-{p}.count") == c, 10)
                latencies.append(time.perf_counter() - start)
        finally:
            proc.terminate()
            proc.wait(10)
    median, p99 = statistics.median(latencies) * 1e3, pct(latencies, 0.99) * 1e3
    row("reaction median / p99", f"{median:.1f} / {p99:.1f} ms", "< 2 s", p99 < 2000, key="reaction")
    row("for comparison: GFD's worst case (sleep interval)", "60000 ms")


def bench_pause_end(api: FakeKubeApi, kubeconfig: Path, trials: int = 20) -> None:
    """The GPU Operator pauses NVML clients for a MIG change, then lets them go: time from the
    pause's end (gpu.deploy.client=true, mig.config.state=success) to the new labels."""
    print(f"7. pause end: gpu.deploy.client paused -> true with a new MIG layout -> labels ({trials} trials)")
    node = "paused-node"
    api.add_node(node, {"nvidia.com/gpu.deploy.client": "true", "nvidia.com/mig.config.state": "success"})
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        fixture = Path(tmp) / "node.yaml"
        fixture.write_text(LAYOUTS["1g.10gb"])
        proc = subprocess.Popen([str(BIN), "run", "--node-name", node, "--kubeconfig", str(kubeconfig), "--fixture",
                                 str(fixture), "--mig-strategy", "mixed", "--sleep-interval", "1h", *UNLIMITED,
                                 "--metrics-port", str(port)], stderr=subprocess.DEVNULL)
        latencies = []
        try:
            wait_for(lambda: api.labels(node).get("nvidia.com/mig-1g.10gb.count") == "24", 10)
            for i in range(trials):
                profile = "3g.40gb" if i % 2 == 0 else "1g.10gb"
                count = COUNTS[profile]
                api.edit_labels(node, {"nvidia.com/gpu.deploy.client": "paused-for-mig-change",
                                       "nvidia.com/mig.config.state": "pending"}, manager="nvidia-mig-manager")
                wait_for(lambda: 'mig_labeler_paused{reason="gpu.deploy.client=paused-for-mig-change"} 1.0'
                         in _scrape(port), 10)
                swap_layout(fixture, profile)
                start = time.perf_counter()
                done = {"nvidia.com/gpu.deploy.client": "true", "nvidia.com/mig.config.state": "success"}
                api.edit_labels(node, done, manager="nvidia-mig-manager")
                wait_for(lambda p=profile, c=count: api.labels(node).get(f"nvidia.com/mig-{p}.count") == c, 10)
                latencies.append(time.perf_counter() - start)
            inits = next(line for line in _scrape(port).splitlines() if line.startswith("mig_labeler_nvml_inits_total"))
        finally:
            proc.terminate()
            proc.wait(10)
    median, p99 = statistics.median(latencies) * 1e3, pct(latencies, 0.99) * 1e3
    row("pause end -> labels, median / p99", f"{median:.1f} / {p99:.1f} ms", "< 2 s", p99 < 2000, key="pause_end")
    row("NVML sessions over the run (1 + one per pause end)", inits.split()[-1], f"{1 + trials}",
        float(inits.split()[-1]) == 1 + trials, key="pause_nvml_sessions")


def bench_check(workloads: int = 1000, nodes: int = 1000) -> None:
    """`mig-labeler check` of 1,000 workloads against 1,000 nodes, the pure part (files and the
    cluster are read once, outside)."""
    from mig_labeler.check import Node, NodeIndex, check
    from mig_labeler.check import workloads as find
    from mig_labeler.config import Config
    from mig_labeler.labels import compute_labels
    from mig_labeler.labels.advertised import advertised_resources

    print(f"8. check: {workloads} workloads x {nodes} nodes")
    pool = []
    for name, strategy in (("dgx-a100-7x1g", MigStrategy.SINGLE), ("dgx-a100-mixed", MigStrategy.MIXED),
                           ("dgx-h100-7x1g", MigStrategy.MIXED), ("a30-mig-off", MigStrategy.NONE)):
        fake = FakeNvml(resolve_fixture(name))
        topology = TopologySource(fake, None, fake).read()
        config = Config(mig_strategy=strategy, no_timestamp=True)
        pool.append((compute_labels(topology, config, 0), advertised_resources(topology, config)))
    fleet = [Node(f"node-{i}", *pool[i % len(pool)]) for i in range(nodes)]
    specs = [
        {"nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"},
         "containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": 2}}}]},
        {"nodeSelector": {"nvidia.com/mig.strategy": "mixed"},
         "containers": [{"name": "c", "resources": {"limits": {"nvidia.com/mig-3g.20gb": 1}}}]},
        {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "nvidia.com/gpu.present", "operator": "Exists"}]}]}}},
         "containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": 1}}}]},
        {"nodeSelector": {"nvidia.com/gpu.product": "A100-SXM-80GB"},
         "containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": 0.5}}}]},
    ]
    found = [find({"kind": "Pod", "metadata": {"name": f"w{i}"}, "spec": specs[i % len(specs)]}, "bench")[0][0]
             for i in range(workloads)]
    start = time.perf_counter()
    index = NodeIndex(fleet)
    results = [check(w, index) for w in found]
    elapsed = time.perf_counter() - start
    fitting = sum(r.fits for r in results)
    row(f"check {workloads} x {nodes} ({fitting} fit)", f"{elapsed:.2f} s", "< 2 s", elapsed < 2, key="check_1k")


def pool_labels(fixture: str, strategy: str) -> dict[str, str]:
    """The labels a node of a pool gets: the fixture through the fake NVML, the strategy's rules."""
    from mig_labeler.config import Config
    from mig_labeler.labels import compute_labels

    fake = FakeNvml(resolve_fixture(fixture))
    topology = TopologySource(fake, None, fake).read()
    return compute_labels(topology, Config(mig_strategy=MigStrategy(strategy), no_timestamp=True), 0)


def _scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            return response.read().decode()
    except OSError:
        return ""


def bench_gfd_uninstall(api: FakeKubeApi, kubeconfig: Path, trials: int = 20) -> None:
    """Uninstalling GFD deletes its NodeFeature; nfd-master then removes every label it applied,
    the ones mig-labeler adopted included. The watching daemon restores them."""
    print(f"6. migration: nfd-master removes GFD's labels (GFD uninstalled) -> restored ({trials} trials)")
    node = "migrated-node"
    command = [str(BIN), "labels", "--fixture", "dgx-a100-mixed", "--mig-strategy", "mixed", "--no-timestamp",
               "-o", "json"]
    gfd = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    api.add_node(node, {"kubernetes.io/hostname": node})
    api.edit_labels(node, gfd, manager="nfd-master")
    proc = subprocess.Popen([str(BIN), "run", "--node-name", node, "--kubeconfig", str(kubeconfig), "--fixture",
                             "dgx-a100-mixed", "--mig-strategy", "mixed", "--no-timestamp", "--sleep-interval", "1h",
                             *UNLIMITED,
                             "--metrics-port", "0"], stderr=subprocess.DEVNULL)
    latencies = []
    try:
        wait_for(lambda: not [k for k in gfd if ("nfd-master", "Update") in _owner_entries(api, node, k)], 10)
        wait_for(lambda: api.open_watches >= 1, 10)
        for _ in range(trials):
            start = time.perf_counter()
            api.edit_labels(node, dict.fromkeys(gfd), manager="nfd-master")
            wait_for(lambda: all(api.labels(node).get(k) == v for k, v in gfd.items()), 10)
            latencies.append(time.perf_counter() - start)
    finally:
        proc.terminate()
        proc.wait(10)
    median, p99 = statistics.median(latencies) * 1e3, pct(latencies, 0.99) * 1e3
    row(f"{len(gfd)} labels restored, median / p99", f"{median:.1f} / {p99:.1f} ms", "< 2 s", p99 < 2000,
        key="migration_restore")


def _owner_entries(api: FakeKubeApi, node: str, key: str) -> set[tuple[str, str]]:
    with api.lock:
        return {who for who, keys in api.nodes[node].owners.items() if key in keys}



def main() -> None:
    """Every section, or those named in BENCH_ONLY (comma-separated: make bench BENCH_ONLY=node,shutdown)."""
    print(f"mig-labeler benchmarks  (python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    only = [name for name in os.environ.get("BENCH_ONLY", "").split(",") if name]
    unknown = [name for name in only if name not in SECTIONS]
    if unknown:
        sys.exit(f"BENCH_ONLY: no section {', '.join(unknown)} (sections: {', '.join(SECTIONS)})")
    api = FakeKubeApi().start()
    samples = calibration_samples()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            kubeconfig = write_kubeconfig(Path(tmp) / "kubeconfig", api.url)
            for name, section in SECTIONS.items():
                if not only or name in only:
                    section(api, kubeconfig, Path(tmp))
    finally:
        api.stop()
        print("0. calibration (a fixed pure-Python workload, at the start and at the end)")
        calibration_row(samples + calibration_samples())
        save_results()
    missed = [r for r in ROWS if r[3] == "MISSED"]
    print(f"targets: {sum(r[3] == 'met' for r in ROWS)} met, {len(missed)} missed; rows in {RESULTS.relative_to(ROOT)}")


SECTIONS = {
    "pass": lambda api, kubeconfig, tmp: bench_pass(),
    "cold": lambda api, kubeconfig, tmp: bench_cold(api, kubeconfig),
    "node": lambda api, kubeconfig, tmp: bench_node_mode(row),
    "soak": lambda api, kubeconfig, tmp: bench_soak(api, int(os.environ.get("BENCH_SOAK_PASSES", "10000"))),
    "api": lambda api, kubeconfig, tmp: bench_api(api),
    "reaction": lambda api, kubeconfig, tmp: (bench_reaction(api, kubeconfig), bench_gfd_uninstall(api, kubeconfig),
                                              bench_pause_end(api, kubeconfig)),
    "check": lambda api, kubeconfig, tmp: (bench_check(), bench_check_scale(tmp, pool_labels, row)),
    "sinks": lambda api, kubeconfig, tmp: bench_sinks(api, kubeconfig),
    "shutdown": lambda api, kubeconfig, tmp: (bench_shutdown(api, kubeconfig, row),
                                              bench_timeouts(api, kubeconfig, row)),
    "mig": lambda api, kubeconfig, tmp: bench_mig_config(api, tmp, row),
}


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
