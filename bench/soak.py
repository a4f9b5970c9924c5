"""Child process for the steady-state RSS benchmark: a watching Daemon against the benchmark's API
server, run_pass() 10,000 times with the MIG layout flipping every 10 passes. Prints JSON lines."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry

from mig_labeler.config import Config, MigStrategy
from mig_labeler.daemon.root import build_daemon

LAYOUTS = [
    "gpus: [{model: H100-SXM5-80GB, count: 8, mig: [1g.10gb, 1g.10gb, 1g.10gb, 1g.10gb, 1g.10gb, 1g.10gb, 1g.10gb]}]\n",
    "gpus: [{model: H100-SXM5-80GB, count: 8, mig: [3g.40gb, 2g.20gb, 1g.10gb, 1g.10gb]}]\n",
]


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main(url: str, fixture: str, passes: int) -> None:
    path = Path(fixture)
    path.write_text(LAYOUTS[0])
    config = Config(mig_strategy=MigStrategy.MIXED, fixture=fixture, node_name="soak-node", no_timestamp=True)
    daemon = build_daemon(config, host=url, registry=CollectorRegistry(), watch=True)
    daemon.node.start_watching()
    daemon.node.watcher.connected.wait(5)
    writes = 0
    for i in range(passes):
        if i % 10 == 0:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(LAYOUTS[(i // 10) % 2])
            tmp.replace(path)
        result = daemon.run_pass()
        writes += result.wrote
        if i in (0, 99, passes - 1) or (i + 1) % 2000 == 0:
            print(json.dumps({"pass": i + 1, "rss_kib": rss_kib(), "writes": writes, "ok": result.ok}), flush=True)
    daemon.stop.request()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
