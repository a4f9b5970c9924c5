"""Our Node as freshly as we know it: from the watch, a GET, or the API server's answer to our apply.

Owns: the Node cache (``NodeCache``: the newer state wins, since-when of mig-manager's labels),
the Node watch (``NodeWatcher``, which reports to ``node_changed`` / ``node_deleted``), which state
a pass and the node sink plan against (the watched one while the watch is connected, else the one
this pass read, else a fresh GET), and which Node changes wake the loop: the GPU Operator's pause
ending, mig-manager finishing or changing the config, someone touching our labels, nfd-master
taking over a handoff. Knows what the labels it watches mean only through ``gpu_operator``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from mig_labeler.daemon.node_cache import NodeCache
from mig_labeler.daemon.watch import NodeWatcher
from mig_labeler.errors import ApiError
from mig_labeler.gpu_operator import REQUESTED, STATE, handoff_trigger, pause, watch_trigger
from mig_labeler.kube.client import KubeClient
from mig_labeler.kube.node_state import NodeState

if TYPE_CHECKING:
    from collections.abc import Callable

    from mig_labeler.daemon.health import HealthState
    from mig_labeler.daemon.metrics import Metrics
    from mig_labeler.daemon.reporting import PauseGauge
    from mig_labeler.daemon.wake import Wake
    from mig_labeler.stop import Stop

log = logging.getLogger("mig_labeler")


class OurNode:
    def __init__(self, kube: KubeClient, name: str, *, stop: Stop, wake: Wake, metrics: Metrics,
                 health: HealthState, pause_gauge: PauseGauge, clock: Callable[[], float], feeds_nfd: bool,
                 watch: bool, watch_backoff: float = 0.5, config_label: str | None = None) -> None:
        """``feeds_nfd``: a selected sink hands labels over to nfd-master, so its takeover wakes a
        pass; ``watch``: keep a watch on the Node (else every pass GETs it); ``config_label``: the
        label that picks the device-plugin config, whose change wakes a pass."""
        self.kube = kube
        self.name = name
        self.wake = wake
        self.metrics = metrics
        self.health = health
        self.pause_gauge = pause_gauge
        self.feeds_nfd = feeds_nfd
        self.config_label = config_label
        self.cache = NodeCache(tracked=(REQUESTED, STATE), clock=clock)
        self.watcher = NodeWatcher(kube, name, self, stop, metrics, base_backoff=watch_backoff) if watch else None
        self.fresh: NodeState | None = None  # the Node read at the start of this pass
        self.desired: Mapping[str, str] | None = None  # what the last pass put on the Node itself

    def start_watching(self) -> None:
        if self.watcher is not None:
            self.watcher.start()

    # -- what a pass and the node sink plan against ----------------------------------------------
    def read(self) -> NodeState:
        """At the start of a pass: the watched Node, else one GET (polling). The node sink's first
        attempt reuses it."""
        try:
            node = self.watched() or self.kube.read_node(self.name)
        except ApiError as e:
            self.metrics.count_api_error(e)
            raise
        self.remember(node)
        self.fresh = node
        return node

    def for_publish(self) -> NodeState:
        """For the node sink: the watched Node, else the one this pass read, else a fresh GET (a retry)."""
        node = self.watched() or self.fresh or self.kube.read_node(self.name)
        self.fresh = None
        self.remember(node)
        return node

    def watched(self) -> NodeState | None:
        """The watched Node stands in for a GET while the watch is connected."""
        if self.watcher is None or not self.watcher.available or not self.watcher.connected.is_set():
            return None
        return self.cache.latest()

    def remember(self, node: NodeState) -> NodeState | None:
        """Keep the newer state (``NodeCache.remember``); returns the one it replaced."""
        return self.cache.remember(node)

    def latest(self) -> NodeState | None:
        return self.cache.latest()

    def held(self) -> dict[str, tuple[str, float]]:
        return self.cache.held()

    def expect(self, desired: Mapping[str, str] | None) -> None:
        """What the pass put on the Node itself (None: no sink writes the Node): a change to those
        labels on the watch wakes a pass that puts them back."""
        self.desired = desired

    # -- what the watch reports ------------------------------------------------------------------
    def node_changed(self, node: NodeState) -> None:
        """Cache the Node, and wake the loop when the change needs a pass."""
        previous = self.remember(node)
        latest = self.cache.latest()
        if latest is not None:  # cached first, then the gauge: a pass that sees the gauge sees the pause
            self.pause_gauge.set(pause(latest.labels))
        if previous is None:
            if self.cache.back():  # it is back: label it now, not at the next interval
                self.wake.set()
            return
        reason = watch_trigger(previous.labels, node.labels, node.owned, self.desired)
        label = self.config_label
        if reason is None and label is not None and previous.labels.get(label) != node.labels.get(label):
            reason = f"{label} changed"
        if reason is None and self.feeds_nfd:
            reason = handoff_trigger(previous.nfd_labels, node.nfd_labels, node.owned)
        if reason:
            log.debug("node %s changed (%s): rescanning now", node.name, reason)
            self.wake.now()

    def node_deleted(self, node: NodeState) -> None:
        """Our Node is gone. Forget it, say so once, and let the next pass find out (a GET:
        NodeNotFound, not ready) instead of counting passes against a stale cache. The watch keeps
        running; the Node's return (ADDED) wakes a pass that labels it again."""
        self.cache.forget(node)
        self.health.end_pass(False, f"node {node.name} was deleted")
        self.metrics.ready.set(0)
        log.warning("node %s was deleted; labels are written again when it comes back", node.name)
        self.wake.set()
