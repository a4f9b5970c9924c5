"""The real daemon process: `mig-labeler run` against the fake API server, driven by signals."""

from __future__ import annotations

import signal
import subprocess
import sys

from .conftest import wait_until, write_kubeconfig

NODE = "gpu-node-1"


def test_sighup_reloads_the_config_and_sigterm_exits_0(kube_api, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("version: v1\nflags:\n  migStrategy: mixed\n")
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kube_api.url)
    seen: list[str] = []
    proc = subprocess.Popen(
        [sys.executable, "-m", "mig_labeler", "run", "--node-name", NODE, "--kubeconfig", str(kubeconfig),
         "--fixture", "dgx-a100-7x1g", "--config-file", str(config), "--sleep-interval", "1h",
         "--metrics-port", "0", "--log-format", "json"],
        stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_until(lambda: kube_api.labels(NODE).get("nvidia.com/mig.strategy") == "mixed")
        config.write_text("version: v1\nflags:\n  migStrategy: single\n")
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: kube_api.labels(NODE).get("nvidia.com/gpu.product") == "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb")
        assert not any(k.startswith("nvidia.com/mig-1g.5gb") for k in kube_api.labels(NODE))
        for bad in (b"flags: {gfd: {sleepInterval: 999999999h}}\n", b"flags: {migStrategy: \xff}\n"):
            config.write_bytes(bad)  # a bad ConfigMap edit: kept out, the daemon lives on
            proc.send_signal(signal.SIGHUP)
            while not (seen and "reload failed" in seen[-1]):  # blocks until the daemon has said it
                seen.append(proc.stderr.readline())
                assert seen[-1], "the daemon exited"
        config.write_text("version: v1\nflags:\n  migStrategy: mixed\n")
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: kube_api.labels(NODE).get("nvidia.com/mig.strategy") == "mixed")
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    log_lines = [line.rstrip("\n") for line in seen] + proc.stderr.read().splitlines()
    assert all(line.startswith("{") for line in log_lines), log_lines  # --log-format json
    assert any("labels updated" in line for line in log_lines)
    assert any("configuration reload failed, keeping the previous one" in line for line in log_lines)
    assert not any("Traceback" in line for line in log_lines)


SIGNAL_WHILE_LOCKED = """
import os, signal, sys, time
from mig_labeler.daemon.signals import handled
from mig_labeler.daemon.wake import Wake
from mig_labeler.stop import Stop
wake = Wake()
with handled(Stop(), wake):
    with wake.event._cond:  # the main thread holds the Event's lock, as inside wake.clear() or wait()
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(1000):  # bytecodes run: a Python-level handler would run here, in this thread
            pass
    deadline = time.monotonic() + 20
    while not (wake.reload_asked and wake.event.is_set()):
        assert time.monotonic() < deadline, "the SIGHUP never arrived"
        time.sleep(0.01)
print("ok")
"""


def test_a_signal_while_the_main_thread_holds_the_wake_lock_does_not_deadlock():
    """It once did: the handler called wake.set() in the main thread, which held that lock."""
    proc = subprocess.run([sys.executable, "-c", SIGNAL_WHILE_LOCKED], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
