"""Background watchers that wake the loop: our own Node (one watch with a field selector) and the
config file (a ConfigMap mount is swapped through a symlink, so we poll a fingerprint).

Owns: re-establishing the Node watch with backoff, resuming from the last resourceVersion,
relisting on 410 Gone, falling back to polling (logged once) without watch permission. It hands
every Node state to a callback and never decides anything about labels itself.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from mig_labeler.api_errors import WatchExpired
from mig_labeler.errors import ApiError, MigLabelerError
from mig_labeler.kube import KubeClient
from mig_labeler.node_state import NodeState

log = logging.getLogger("mig_labeler")

WATCH_TIMEOUT = 300  # seconds; the server ends each watch, we resume from the last resourceVersion
MAX_BACKOFF = 30.0


class NodeWatcher:
    def __init__(self, kube: KubeClient, node_name: str, on_state: Callable[[NodeState], None],
                 stop: threading.Event, timeout_seconds: int = WATCH_TIMEOUT, base_backoff: float = 0.5,
                 on_deleted: Callable[[NodeState], None] | None = None) -> None:
        self.kube = kube
        self.node_name = node_name
        self.on_state = on_state
        self.on_deleted = on_deleted
        self.stop = stop
        self.timeout_seconds = timeout_seconds
        self.base_backoff = base_backoff
        self.available = True  # False after a 403: the loop polls instead
        self.connected = threading.Event()
        self.relists = 0
        self.thread = threading.Thread(target=self.run, name="node-watch", daemon=True)

    def start(self) -> NodeWatcher:
        self.thread.start()
        return self

    def run(self) -> None:
        """A watch without a resourceVersion starts with a synthetic ADDED of the current Node
        ("get state and start at most recent"), which is our list: no extra GET, no list verb."""
        version = ""
        failures = 0
        while not self.stop.is_set():
            try:
                if not version:
                    self.relists += 1
                self.connected.set()
                for kind, state in self.kube.watch_node(self.node_name, version, self.timeout_seconds):
                    version = state.resource_version or version
                    if kind in ("ADDED", "MODIFIED"):
                        self.on_state(state)
                    elif kind == "DELETED" and self.on_deleted is not None:
                        self.on_deleted(state)
                    failures = 0
                    if self.stop.is_set():
                        return
            except WatchExpired:
                log.info("node watch expired (410); starting again from the current state")
                version = ""
                self.stop.wait(self.base_backoff)
            except ApiError as e:
                if e.status == 403:
                    log.warning("no permission to watch node %s (%s); polling every pass instead", self.node_name, e)
                    self.available = False
                    return
                failures += 1
                self.connected.clear()
                delay = min(MAX_BACKOFF, self.base_backoff * 2 ** min(failures, 10))
                log.debug("node watch dropped (%s); reconnecting in %.1fs", e, delay)
                self.stop.wait(delay)
            except MigLabelerError as e:  # NodeNotFound: the pass reports it; keep trying quietly
                self.connected.clear()
                self.stop.wait(MAX_BACKOFF)
                log.debug("node watch: %s", e)


class ConfigFileWatcher:
    """Polls the config file's fingerprint (resolved path, inode, mtime, size) every ``period``
    seconds; a kubelet ConfigMap update swaps the ``..data`` symlink, which changes all of them."""

    def __init__(self, path: str, on_change: Callable[[], None], stop: threading.Event, period: float = 1.0) -> None:
        self.path = path
        self.on_change = on_change
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
        log.info("config file %s changed; reloading", self.path)
        self.on_change()
        return True


def file_fingerprint(path: str) -> tuple[Any, ...] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return os.path.realpath(path), st.st_ino, st.st_mtime_ns, st.st_size
