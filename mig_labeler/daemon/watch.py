"""Background watchers that wake the loop: our own Node and the GPU Operator's mig-parted
ConfigMap (one watch each, with a field selector on the name), and the config file (a ConfigMap
mount is swapped through a symlink, so we poll a fingerprint).

Owns: re-establishing a watch with backoff, resuming from the last resourceVersion, relisting on
410 Gone, falling back to polling (logged once) without watch permission. Each hands every state
to the part it was built for (``our_node.OurNode``, ``live_settings.LiveSettings``) and never
decides anything about labels or configs itself. Every wait ends at once on the stop token.
"""

from __future__ import annotations

import logging
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, Protocol

from mig_labeler.daemon.metrics import Metrics
from mig_labeler.errors import ApiError, MigLabelerError
from mig_labeler.kube.client import CONNECTED, KubeClient
from mig_labeler.kube.errors import WatchExpired
from mig_labeler.kube.node_state import NodeState
from mig_labeler.stop import Stop

log = logging.getLogger("mig_labeler")

WATCH_TIMEOUT = 300  # seconds; the server ends each watch, we resume from the last resourceVersion
MAX_BACKOFF = 30.0
FAILURES_BEFORE_WARNING = 3  # reconnects in a row (about 7 s of backoff) before the watch is called blind


class NodeListener(Protocol):
    def node_changed(self, node: NodeState) -> None: ...

    def node_deleted(self, node: NodeState) -> None: ...


class ConfigMapListener(Protocol):
    def configmap_changed(self, obj: dict[str, Any]) -> None: ...

    def configmap_deleted(self, obj: dict[str, Any]) -> None: ...


class FileListener(Protocol):
    def file_changed(self, path: str) -> None: ...


class ObjectWatcher(ABC):
    """One named object's changes, for as long as ``stop`` is not set. A watch without a
    resourceVersion starts with a synthetic ADDED of the current object ("get state and start at
    most recent"), which is our list: no extra GET, no list verb. Subclasses say how to stream
    (``stream``), what a state's resourceVersion is, where a state goes (``changed``, ``deleted``)
and what to do without watch permission."""

    what = "object"
    kind = "object"  # the watch label of the metrics
    blind = "changes are not seen until it is back"  # what a failing watch means, for the warning

    def __init__(self, stop: Stop, metrics: Metrics | None = None, timeout_seconds: int = WATCH_TIMEOUT,
                 base_backoff: float = 0.5, name: str = "watch") -> None:
        self.stop = stop
        self.metrics = metrics
        if metrics is not None:  # the series the alert reads exists from the first scrape, at 0
            metrics.watch_failures.labels(watch=self.kind)
        self.timeout_seconds = timeout_seconds
        self.base_backoff = base_backoff
        self.available = True  # False after a 403 (see ``forbidden``)
        self.connected = threading.Event()
        self.relists = 0
        self.version = ""
        self.thread = threading.Thread(target=self.run, name=name, daemon=True)

    def start(self) -> ObjectWatcher:
        self.thread.start()
        return self

    @abstractmethod
    def stream(self, version: str) -> Iterator[tuple[str, Any]]:
        """The watch from ``version`` ("": the current state first), as (type, state) pairs."""

    @abstractmethod
    def resource_version(self, state: Any) -> str:
        """A state's resourceVersion, to resume from."""

    @abstractmethod
    def changed(self, state: Any) -> None:
        """ADDED or MODIFIED."""

    @abstractmethod
    def deleted(self, state: Any) -> None:
        """DELETED."""

    def forbidden(self, error: ApiError) -> None:
        """No permission to watch: say so; the watch ends."""
        log.warning("no permission to watch %s (%s)", self.what, error)
        self.available = False

    def run(self) -> None:
        failures = 0
        self._up(True)
        while not self.stop.requested:
            try:
                if not self.version:
                    self.relists += 1
                self.connected.set()
                for kind, state in self.stream(self.version):
                    if kind == CONNECTED:  # a watch stream: the gauge says up; failures end with an event
                        self._up(True)
                        continue
                    self.version = self.resource_version(state) or self.version
                    if kind in ("ADDED", "MODIFIED"):
                        self.changed(state)
                    elif kind == "DELETED":
                        self.deleted(state)
                    failures = self._recovered(failures)
                    if self.stop.requested:
                        return
            except WatchExpired:
                log.info("watch of %s expired (410); starting again from the current state", self.what)
                self.version = ""
                self.stop.wait(self.base_backoff)
            except ApiError as e:
                if e.status == 403:
                    self.connected.clear()
                    self.forbidden(e)
                    return
                failures += 1
                delay = min(MAX_BACKOFF, self.base_backoff * 2 ** min(failures, 10))
                self._failed(failures, e, delay)
                self.stop.wait(delay)
            except MigLabelerError as e:  # NodeNotFound: the pass reports it; keep trying quietly
                self.connected.clear()
                self.stop.wait(MAX_BACKOFF)
                log.debug("watch of %s: %s", self.what, e)

    def _failed(self, failures: int, error: ApiError, delay: float) -> None:
        """One failed connection or stream: counted; the gauge says blind; one WARNING when it keeps
        failing (a proxy answering with a login page, a partitioned API server), DEBUG before."""
        self.connected.clear()
        self._up(False)
        if self.metrics is not None:
            self.metrics.watch_failures.labels(watch=self.kind).inc()
        if failures == FAILURES_BEFORE_WARNING:
            log.warning("the watch of %s keeps failing (%d reconnects in a row, the last: %s); %s; reconnecting "
                        "with backoff up to %.0f s", self.what, failures, error, self.blind, MAX_BACKOFF)
        else:
            log.debug("watch of %s dropped (%s); reconnecting in %.1fs", self.what, error, delay)

    def _recovered(self, failures: int) -> int:
        """An event arrived: the watch works (an open stream alone is not proof: a proxy may open
        one and then send garbage). One INFO line if it had been called blind."""
        if failures:
            if failures >= FAILURES_BEFORE_WARNING:
                log.info("the watch of %s is back after %d failed reconnects", self.what, failures)
        return 0

    def _up(self, up: bool) -> None:
        if self.metrics is not None:
            self.metrics.watch_up.labels(watch=self.kind).set(1 if up else 0)


class NodeWatcher(ObjectWatcher):
    """Our own Node (one watch with a field selector); without watch permission the loop polls."""

    kind = "node"
    blind = "each pass reads the Node with a GET instead, so its changes wait for the next interval"

    def __init__(self, kube: KubeClient, node_name: str, listener: NodeListener, stop: Stop,
                 metrics: Metrics | None = None, timeout_seconds: int = WATCH_TIMEOUT,
                 base_backoff: float = 0.5) -> None:
        super().__init__(stop, metrics, timeout_seconds, base_backoff, name="node-watch")
        self.listener = listener
        self.kube = kube
        self.node_name = node_name
        self.what = f"node {node_name}"

    def stream(self, version: str) -> Iterator[tuple[str, NodeState]]:
        return self.kube.watch_node(self.node_name, version, self.timeout_seconds)

    def resource_version(self, state: NodeState) -> str:
        return state.resource_version

    def changed(self, state: NodeState) -> None:
        self.listener.node_changed(state)

    def deleted(self, state: NodeState) -> None:
        self.listener.node_deleted(state)

    def forbidden(self, error: ApiError) -> None:
        log.warning("no permission to watch node %s (%s); polling every pass instead", self.node_name, error)
        self.available = False


class ConfigMapWatcher(ObjectWatcher):
    """One ConfigMap in any namespace (the GPU Operator's mig-parted config), from the version
    read at start-up. Without watch permission (a Role granting get only) it reads the ConfigMap
    every ``poll`` seconds instead."""

    kind = "configmap"
    blind = "a change of the mig-parted config is seen when it is back"

    def __init__(self, kube: KubeClient, namespace: str, name: str, version: str, listener: ConfigMapListener,
                 stop: Stop, metrics: Metrics | None = None, poll: float = 60.0, base_backoff: float = 0.5,
                 timeout_seconds: int = WATCH_TIMEOUT) -> None:
        super().__init__(stop, metrics, timeout_seconds, base_backoff, name="configmap-watch")
        self.listener = listener
        self.kube = kube
        self.namespace, self.name = namespace, name
        self.what = f"ConfigMap {namespace}/{name}"
        self.version = version
        self.poll = poll

    def stream(self, version: str) -> Iterator[tuple[str, dict[str, Any]]]:
        return self.kube.watch_configmap(self.namespace, self.name, version, self.timeout_seconds)

    def resource_version(self, state: dict[str, Any]) -> str:
        return str((state.get("metadata") or {}).get("resourceVersion") or "")

    def changed(self, state: dict[str, Any]) -> None:
        self.listener.configmap_changed(state)

    def deleted(self, state: dict[str, Any]) -> None:
        self.listener.configmap_deleted(state)

    def forbidden(self, error: ApiError) -> None:
        log.warning("no permission to watch %s (%s); reading it every %.0fs instead (grant watch on it to pick up "
                    "a change at once)", self.what, error, self.poll)
        self.available = False
        while not self.stop.wait(self.poll):
            try:
                state = self.kube.read_configmap(self.namespace, self.name)
            except MigLabelerError as e:  # ObjectNotFound is an ApiError too: the config stays as it was
                log.debug("reading %s: %s", self.what, e)
                continue
            if self.resource_version(state) != self.version:
                self.version = self.resource_version(state)
                self.changed(state)


class ConfigFileWatcher:
    """Polls the config file's fingerprint (resolved path, inode, mtime, size) every ``period``
    seconds; a kubelet ConfigMap update swaps the ``..data`` symlink, which changes all of them."""

    def __init__(self, path: str, listener: FileListener, stop: Stop, period: float = 1.0) -> None:
        self.path = path
        self.listener = listener
        self.stop = stop
        self.period = period
        self.fingerprint = file_fingerprint(path)
        self.thread = threading.Thread(target=self.run, name="config-watch", daemon=True)

    def start(self) -> ConfigFileWatcher:
        self.thread.start()
        return self

    def run(self) -> None:
        while not self.stop.wait(self.period):
            self.check()

    def check(self) -> bool:
        current = file_fingerprint(self.path)
        if current == self.fingerprint:
            return False
        self.fingerprint = current
        self.listener.file_changed(self.path)
        return True


def file_fingerprint(path: str) -> tuple[Any, ...] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return os.path.realpath(path), st.st_ino, st.st_mtime_ns, st.st_size
