"""Shared test helpers: fakes at the library boundary, real code above them."""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, settings
from prometheus_client import CollectorRegistry

from mig_labeler.config import Config, MigStrategy
from mig_labeler.config_file import parse_sharing
from mig_labeler.daemon.root import Daemon, build_daemon
from mig_labeler.labels import compute_labels
from mig_labeler.simulated.fake_nvml import FakeNvml
from mig_labeler.simulated.fixture import parse_fixture
from mig_labeler.simulated.nvml_library import FakeNvmlLibrary, bind
from mig_labeler.sources import TopologySource
from mig_labeler.topology import NodeTopology

from .fakes.kube_api import FakeKubeApi

FIXTURES = Path(__file__).parent / "fixtures"
BUNDLED = Path(__file__).parents[1] / "mig_labeler" / "simulated" / "fixtures"
STARTED_AT = 1_700_000_000


def fixture_path(name: str) -> Path:
    for folder in (FIXTURES, BUNDLED):
        path = folder / f"{name}.yaml"
        if path.exists():
            return path
    raise FileNotFoundError(name)


def fake_from(doc_or_name: Any) -> FakeNvml:
    """The module-level fake alone (what a fixture answers); the reader's tests use ``binding_from``."""
    if isinstance(doc_or_name, str):
        return FakeNvml(fixture_path(doc_or_name))
    return FakeNvml(parse_fixture(doc_or_name))


@dataclasses.dataclass
class Binding:
    """The real ``pynvml`` binding (a private copy of the module) over the fake C library."""

    nvml: Any
    library: FakeNvmlLibrary

    @property
    def calls(self) -> Any:
        return self.library.fake.calls


def binding_from(doc_or_name: Any) -> Binding:
    if isinstance(doc_or_name, Path):
        source: Any = doc_or_name
    else:
        source = fixture_path(doc_or_name) if isinstance(doc_or_name, str) else parse_fixture(doc_or_name)
    library = FakeNvmlLibrary(source)
    return Binding(bind(library), library)


NO_SYSFS = "/nonexistent-sysfs"  # an unreadable PCI scan: no vgpu.* labels, as GFD's vectors (unprivileged)


def read(doc_or_name: Any, sysfs: str = NO_SYSFS) -> NodeTopology:
    """The topology through the production source and the real pynvml binding; the vGPU scan
    reads ``sysfs`` (never this machine's /sys: tests must not depend on the host's PCI devices)."""
    binding = binding_from(doc_or_name)
    topology = TopologySource(binding.nvml, None, binding.library.fake, sysfs=sysfs).read()
    assert not binding.library.internal_errors, binding.library.internal_errors
    return topology


def healthy_count(doc: dict) -> dict[str, str]:
    """Our label beside GFD's: the GPUs of a fixture document that answer (none lost here)."""
    return {"nvidia.com/gpu.healthy-count": str(sum(g.get("count", 1) for g in doc.get("gpus") or []))}


def make_config(strategy: str = "none", sharing: Any = None, **overrides: Any) -> Config:
    overrides.setdefault("no_timestamp", True)
    return Config(mig_strategy=MigStrategy(strategy), sharing=parse_sharing(sharing), **overrides)


def labels_of(doc_or_name: Any, strategy: str = "none", sharing: Any = None, **overrides: Any) -> dict[str, str]:
    return compute_labels(read(doc_or_name), make_config(strategy, sharing, **overrides), STARTED_AT)


WAIT_LIMIT = 30.0  # generous: CI is a busy 2-core machine; a passing test never gets near it


def wait_until(predicate: Any, timeout: float = WAIT_LIMIT) -> float:
    """Poll a condition the test means (a label landed, a watch is open) and return how long it
    took; fails only when it never comes. Never a fixed sleep standing in for "done by now"."""
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, "condition not reached"
        time.sleep(0.002)
    return time.monotonic() - start


def wait_for_passes(daemon: Daemon, count: int) -> None:
    """Until the running loop has finished ``count`` passes (not just begun them)."""
    assert daemon.wait_for_passes(count, WAIT_LIMIT), f"the loop did not finish {count} passes"


def settle(daemon: Daemon) -> None:
    """Until a running loop is idle: one more full pass after this call, so that a pass already
    in flight (say, one woken by the watch's first event) is over. That pass writes nothing, so
    nothing wakes the loop again."""
    done = daemon.passes_done
    daemon.wake.set()
    wait_for_passes(daemon, done + 1)


@contextmanager
def watching_daemon(api: FakeKubeApi, fixture: str | Path, watches: int = 1, **overrides: Any) -> Iterator[Daemon]:
    """A watching daemon in a thread with a one-hour interval (anything faster is event-driven),
    idle once yielded: its first pass done, its ``watches`` open (the Node's; with a mig-parted
    ConfigMap, read as run does before the loop, that one's too), nothing in flight. Stopped after."""
    daemon = make_daemon(api, fixture, sleep_interval=3600.0, watch=True, **overrides)
    daemon.start_up()
    thread = threading.Thread(target=daemon.run_forever, daemon=True)
    thread.start()
    try:
        wait_for_passes(daemon, 1)
        wait_until(lambda: api.open_watches == watches)
        settle(daemon)
        yield daemon
    finally:
        daemon.stop.request()
        thread.join(timeout=WAIT_LIMIT)
    assert not thread.is_alive()


def write_fixture(path: Path, doc: dict) -> Path:
    """Atomically, as a running daemon may read it at any moment."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(doc))
    tmp.replace(path)
    return path


FOREIGN = {
    "kubernetes.io/hostname": "gpu-node-1",
    "nvidia.com/mig.config": "all-1g.5gb",
    "nvidia.com/mig.config.state": "success",
    "nvidia.com/gpu.deploy.device-plugin": "true",
    "nvidia.com/gpu.deploy.gpu-feature-discovery": "false",
}


@pytest.fixture
def kube_api():
    api = FakeKubeApi().start()
    api.add_node("gpu-node-1", FOREIGN)
    yield api
    api.stop()


@pytest.fixture
def kubeconfig(kube_api, tmp_path):
    """A kubeconfig file pointing the real client at the fake API server."""
    return str(write_kubeconfig(tmp_path / "kubeconfig", kube_api.url))


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class CommandLine:
    """What the command line would read on a reload (the daemon's ``ConfigSource``): a test
    changes ``config`` (or makes ``read`` fail), then asks for a reload as SIGHUP does."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.reads = 0

    def read(self) -> Config:
        self.reads += 1
        return self.config


def make_daemon(api: FakeKubeApi, fixture: str | Path, strategy: str = "mixed", clock: FakeClock | None = None,
                watch: bool = False, command_line: CommandLine | None = None, **overrides: Any) -> Daemon:
    clock = clock or FakeClock()
    overrides.setdefault("node_name", "gpu-node-1")
    config = make_config(strategy, fixture=str(fixture), **overrides) if command_line is None else command_line.config
    return build_daemon(config, command_line, host=api.url, registry=CollectorRegistry(), clock=clock,
                        retry_sleep=clock.sleep, watch=watch, watch_backoff=0.01)


def reloadable_daemon(api: FakeKubeApi, fixture: str | Path, strategy: str = "mixed", clock: FakeClock | None = None,
                      watch: bool = False, **overrides: Any) -> tuple[Daemon, CommandLine]:
    """A daemon whose settings a test changes through ``reload_with`` (or the loop's reload)."""
    overrides.setdefault("node_name", "gpu-node-1")
    command_line = CommandLine(make_config(strategy, fixture=str(fixture), **overrides))
    return make_daemon(api, fixture, clock=clock, watch=watch, command_line=command_line), command_line


def reload_with(daemon: Daemon, command_line: CommandLine, **changes: Any) -> None:
    """As a SIGHUP after the config file changed: the settings owner reads ``command_line`` again
    and the root builds the pass anew (a daemon made with ``command_line=command_line``)."""
    command_line.config = dataclasses.replace(command_line.config, **changes)
    daemon.wake.request_reload()
    daemon.reload()


def free_port() -> int:
    """A loopback port nothing listens on now (for a daemon's --metrics-port)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_kubeconfig(path: Path, url: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": url}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "nobody"}}],
        "users": [{"name": "nobody", "user": {}}],
    }))
    return path


@pytest.fixture(autouse=True)
def _restore_logger():
    """The CLI points the mig_labeler logger at the stderr of the moment (a test's capture buffer)
    and stops propagation; undo that so later tests neither write to a closed buffer nor miss
    records in caplog."""
    logger = logging.getLogger("mig_labeler")
    saved = (list(logger.handlers), logger.propagate, logger.level)
    yield
    logger.handlers[:], logger.propagate, logger.level = saved[0], saved[1], saved[2]


# Property tests are derandomized (the same examples every run) and have no per-example deadline:
# on a busy 2-core CI machine a slow example is not a failure, and a red run must be reproducible.
settings.register_profile("mig-labeler", deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("mig-labeler")
