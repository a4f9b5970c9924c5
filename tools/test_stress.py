"""`make test-stress`: the whole suite N times in a row (default 20) while two CPU-bound processes
compete for the cores, as on a busy CI machine. Stops at the first failing run and says which.

The burners are bounded: they stop with this script, and on their own after --limit seconds.
"""

from __future__ import annotations

import argparse
import multiprocessing
import subprocess
import sys
import time


def burn(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(i * i for i in range(10_000))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--burners", type=int, default=2)
    parser.add_argument("--limit", type=float, default=3600.0, help="burners stop after this many seconds")
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()
    burners = [multiprocessing.Process(target=burn, args=(args.limit,), daemon=True) for _ in range(args.burners)]
    for b in burners:
        b.start()
    started = time.monotonic()
    try:
        for run in range(1, args.runs + 1):
            t0 = time.monotonic()
            proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args.pytest_args],
                                  check=False, capture_output=True, text=True)
            tail = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
            print(f"run {run}/{args.runs}: exit {proc.returncode} in {time.monotonic() - t0:.1f}s: {tail}", flush=True)
            if proc.returncode != 0:
                print(proc.stdout[-8000:], proc.stderr[-4000:], sep="\n")
                print(f"FAILED on run {run} of {args.runs} with {args.burners} CPU burners")
                return 1
    finally:
        for b in burners:
            b.terminate()
    print(f"{args.runs} passed, 0 failed: {args.runs} consecutive green runs with {args.burners} CPU burners "
          f"in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
