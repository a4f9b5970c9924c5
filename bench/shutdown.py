"""``make bench`` section: SIGTERM (or Ctrl-C) to exit, per state of the process, against the fake
API server that can leave a request unanswered or half answered (tests/fakes/kube_api.py).

Each state is reached by waiting on the condition it means (a request hanging on the server, a
retry line on stderr, labels on the Node), then the signal goes out and the clock runs until the
process has exited. Median and max of ``RUNS`` runs per state; the target is a median of 0.1 s
(and no run over 1 s). One state talks to a frozen server instead: a socket whose connections are
accepted and then never read or answered, as a SIGSTOPped or wedged API server behaves.
"""

from __future__ import annotations

import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench.child import wait_for
from bench.results import slug
from tests.conftest import write_kubeconfig
from tests.fakes.kube_api import FakeKubeApi
from tests.fakes.silent_server import SilentServer

RUNS = 5
TARGET, WORST = 0.1, 1.0
DAEMON = ["run", "--metrics-port", "0", "--sleep-interval", "1h"]


CHECK_POD = ('{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", '
             '"image": "x", "resources": {"limits": {"nvidia.com/gpu": 1}}}]}}')


def _start(kubeconfig: Path, node: str, args: list[str]) -> subprocess.Popen:
    if args[0] == "check":  # the live node against a workload (JSON is YAML)
        pod = kubeconfig.with_name("check-pod.yaml")
        pod.write_text(CHECK_POD)
        target = [*args, "--node", node, "-f", str(pod), "--kubeconfig", str(kubeconfig)]
    else:
        target = [*args, "--node-name", node, "--kubeconfig", str(kubeconfig), "--fixture", "a30-mig-off"]
    return subprocess.Popen([sys.executable, "-m", "mig_labeler", *target], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _read_until(proc: subprocess.Popen, text: str) -> None:
    while text not in (line := proc.stderr.readline()):
        if not line:
            raise RuntimeError(f"the process exited before saying {text!r}")


def _hung(api: FakeKubeApi) -> Callable[[subprocess.Popen], None]:
    before = api.hung

    def reached(_: subprocess.Popen) -> None:
        if not api.wait_hung(before + 1, timeout=60):
            raise RuntimeError("no request reached the server")
    return reached


def _frozen(frozen: SilentServer) -> Callable[[FakeKubeApi, str], Callable[[subprocess.Popen], None]]:
    def prepare(api: FakeKubeApi, node: str) -> Callable[[subprocess.Popen], None]:
        count = len(frozen.conns) + 1

        def reached(_: subprocess.Popen) -> None:
            if not frozen.wait_for(count):
                raise RuntimeError("nothing connected to the frozen server")
        return reached
    return prepare


def _measure(api: FakeKubeApi, kubeconfig: Path, state: str, args: list[str], sig: signal.Signals,
             prepare: Callable[[FakeKubeApi, str], Callable[[subprocess.Popen], None]]) -> tuple[list[float], set]:
    times, codes = [], set()
    for i in range(RUNS):
        node = f"stop-{state.split(maxsplit=1)[0]}-{i}-{time.monotonic_ns()}"
        api.add_node(node)
        wait = prepare(api, node)
        proc = _start(kubeconfig, node, args)
        try:
            wait(proc)
            watchdog = threading.Timer(120, proc.kill)  # a blocking wait, exact to the exit, never forever
            watchdog.start()
            sent = time.perf_counter()
            proc.send_signal(sig)
            proc.wait()
            times.append(time.perf_counter() - sent)
            watchdog.cancel()
            codes.add(proc.returncode)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stderr.close()
        with api.lock:
            api.faults.clear()
    return times, codes


def _hang(method: str, partial: bool = False) -> Callable[[FakeKubeApi, str], Callable[[subprocess.Popen], None]]:
    def prepare(api: FakeKubeApi, node: str) -> Callable[[subprocess.Popen], None]:
        api.hang_next(method=method, partial=partial)
        return _hung(api)
    return prepare


def _backoff(api: FakeKubeApi, node: str) -> Callable[[subprocess.Popen], None]:
    api.fail_next(5, 503, retry_after=30, method="PATCH")
    return lambda proc: _read_until(proc, "; retry 1 of 4 in 30.0 s")


def _idle(api: FakeKubeApi, node: str) -> Callable[[subprocess.Popen], None]:
    def reached(proc: subprocess.Popen) -> None:
        _read_until(proc, "labels updated on node")
        # the watch is open: the daemon waits for the next wake-up
        wait_for(lambda: api.open_watches >= 1, 60, "the Node watch open")
    return reached


METRICS_PORT = "18099"  # the /metrics and /healthz server on, as deployed (the other daemon states run without it)

STATES = [
    ("daemon idle between passes", DAEMON, signal.SIGTERM, _idle),
    ("daemon idle, metrics server on", ["run", "--metrics-port", METRICS_PORT, "--sleep-interval", "1h"],
     signal.SIGTERM, _idle),
    ("daemon start-up, GET never answered", DAEMON, signal.SIGTERM, _hang("GET")),
    ("daemon mid-pass, PATCH never answered", DAEMON, signal.SIGTERM, _hang("PATCH")),
    ("daemon mid-pass, PATCH half answered", DAEMON, signal.SIGTERM, _hang("PATCH", partial=True)),
    ("daemon in a retry backoff (Retry-After: 30)", DAEMON, signal.SIGTERM, _backoff),
    ("run --oneshot, GET never answered: TERM", ["run", "--oneshot"], signal.SIGTERM, _hang("GET")),
    ("run --oneshot, GET never answered: INT", ["run", "--oneshot"], signal.SIGINT, _hang("GET")),
    ("diff, GET never answered: Ctrl-C (INT)", ["diff"], signal.SIGINT, _hang("GET")),
    ("check --node, GET never answered: Ctrl-C (INT)", ["check"], signal.SIGINT, _hang("GET")),
]


def bench_shutdown(api: FakeKubeApi, kubeconfig: Path, row: Callable[..., None]) -> None:
    print(f"10. signal to exit, per state ({RUNS} runs each; fresh process each run)")
    frozen = SilentServer()  # accepts connections, never reads or answers them
    frozen_kubeconfig = write_kubeconfig(kubeconfig.with_name("frozen-kubeconfig"), frozen.url)
    states = [*STATES, ("daemon start-up, server frozen (connection accepted, never read)", DAEMON, signal.SIGTERM,
                        _frozen(frozen))]
    try:
        for state, args, sig, prepare in states:
            config = frozen_kubeconfig if "frozen" in state else kubeconfig
            times, codes = _measure(api, config, state, args, sig, prepare)
            median, worst = statistics.median(times), max(times)
            row(f"{state}: median / max, exit", f"{median:.3f} / {worst:.3f} s, {sorted(codes)}",
                f"<= {TARGET:g} s, max {WORST:g}", median <= TARGET and worst <= WORST,
                key=f"shutdown_{slug(state)}")
    finally:
        frozen.close()


TIMEOUT_LIMIT = 2.0
TIMEOUTS = [
    ("diff --timeout 2s, GET never answered", ["diff", "--timeout", "2s"], False),
    ("diff --timeout 2s, GET half answered", ["diff", "--timeout", "2s"], True),
    ("run --oneshot --oneshot-timeout 2s, GET never answered", ["run", "--oneshot", "--oneshot-timeout", "2s"], False),
    ("run --oneshot --oneshot-timeout 2s, GET half answered", ["run", "--oneshot", "--oneshot-timeout", "2s"], True),
]


def bench_timeouts(api: FakeKubeApi, kubeconfig: Path, row: Callable[..., None]) -> None:
    """The time limits are deadlines: from the process's start to its exit, whatever the server does
    (every attempt hangs, so the retries would run on without one), start-up included."""
    print(f"10b. time limit to exit, per state ({RUNS} runs each; from the process's start, start-up included)")
    for state, args, partial in TIMEOUTS:
        times, codes = [], set()
        for i in range(RUNS):
            node = f"limit-{i}-{time.monotonic_ns()}"
            api.add_node(node)
            api.hang_next(count=20, method="GET", partial=partial)
            began = time.perf_counter()
            proc = _start(kubeconfig, node, [*args, "--metrics-port", "0"] if args[0] == "run" else args)
            watchdog = threading.Timer(120, proc.kill)
            watchdog.start()
            proc.wait()
            times.append(time.perf_counter() - began)
            watchdog.cancel()
            codes.add(proc.returncode)
            proc.stderr.close()
            with api.lock:
                api.faults.clear()
        median, worst = statistics.median(times), max(times)
        row(f"{state}: median / max, exit", f"{median:.3f} / {worst:.3f} s, {sorted(codes)}",
            f"<= {TIMEOUT_LIMIT + 0.1:g} s", worst <= TIMEOUT_LIMIT + 0.1, key=f"time_limit_{slug(state)}")
