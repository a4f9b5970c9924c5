"""Measuring the processes a benchmark starts: a fresh process's wall time and peak RSS, measured by
a small launcher (a child forked straight from a large benchmark process would report the parent's
pages as its own peak until it execs, and the benchmark's own RUSAGE_CHILDREN peak is the largest of
every child it ever had), and waiting for the condition a step means."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Mapping

LAUNCHER = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            "rc = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
            "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)")


def timed_child(args: list[str], env: Mapping[str, str] | None = None) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MiB, exit code) of ``args`` run to its end."""
    out = subprocess.run([sys.executable, "-S", "-c", LAUNCHER, *args], capture_output=True, text=True, check=True,
                         env=env)
    wall, rss_kib, code = out.stdout.split()
    return float(wall), int(rss_kib) / 1024, int(code)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str = "the benchmark's condition") -> None:
    """Until ``predicate()`` holds; TimeoutError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not reached within {timeout:g} s: {what}")
        time.sleep(0.001)
