"""The daemon: one pass (read → compute → validate → plan → apply) and the loop around it.

Owns: ``Daemon.run_pass`` (returns a ``PassResult`` that tests and metrics read), the wait between
passes (interval, SIGHUP, SIGTERM/SIGINT), keeping the last good labels when NVML fails
(labels.md #4: a failed pass never writes), readiness, Events and their rate limit. Time
(``clock``, ``sleep``) is injected so loop tests run in milliseconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mig_labeler.config import Config
from mig_labeler.desired import labels_for_topology
from mig_labeler.discovery import TopologySource
from mig_labeler.errors import ApiError, MigLabelerError, NvmlQueryFailed, NvmlUnavailable
from mig_labeler.health import HealthState
from mig_labeler.kube import KubeClient, NodeState
from mig_labeler.metrics import Metrics
from mig_labeler.plan import LabelPlan, plan_update
from mig_labeler.retry import api_retry_policy

log = logging.getLogger("mig_labeler")

EVENT_MIN_INTERVAL = 60.0  # at most one Event per reason per minute
FAILURES_BEFORE_EVENT = 3


@dataclass(frozen=True, slots=True)
class PassResult:
    ok: bool
    plan: LabelPlan | None = None
    wrote: bool = False
    error: str = ""
    kind: str = "success"  # success | nvml_error | api_error


@dataclass
class Signals:
    """Set by signal handlers (which do nothing else) and by tests; wakes the loop at once."""

    wake: threading.Event = field(default_factory=threading.Event)
    stop: bool = False
    reload: bool = False

    def request_stop(self) -> None:
        self.stop = True
        self.wake.set()

    def request_reload(self) -> None:
        self.reload = True
        self.wake.set()


class EventLimiter:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.last: dict[str, float] = {}

    def allow(self, reason: str) -> bool:
        now = self.clock()
        if now - self.last.get(reason, -EVENT_MIN_INTERVAL) < EVENT_MIN_INTERVAL:
            return False
        self.last[reason] = now
        return True


class Daemon:
    def __init__(self, config: Config, source: TopologySource, kube: KubeClient, metrics: Metrics, *,
                 health: HealthState | None = None, clock: Callable[[], float] = time.time,
                 retry_sleep: Callable[[float], None] = time.sleep, started_at: int | None = None) -> None:
        self.config = config
        self.source = source
        self.kube = kube
        self.metrics = metrics
        self.health = health or HealthState()
        self.clock = clock
        self.retry = api_retry_policy(sleep=retry_sleep)
        self.started_at = int(clock()) if started_at is None else started_at
        self.events = EventLimiter(clock)
        self.failures = 0
        self.node: NodeState | None = None

    # -- one pass -------------------------------------------------------------------------------
    def run_pass(self) -> PassResult:
        started = time.perf_counter()
        self.health.begin_pass()
        result = self._pass()
        self.metrics.pass_duration.observe(time.perf_counter() - started)
        self.metrics.passes.labels(result=result.kind).inc()
        self.health.end_pass(result.ok, result.error)
        self.metrics.ready.set(1 if result.ok else 0)
        self._after(result)
        return result

    def _pass(self) -> PassResult:
        try:
            topology = self.source.read()
        except (NvmlUnavailable, NvmlQueryFailed) as e:
            self.metrics.nvml_errors.labels(call=getattr(e, "call", "nvmlInit")).inc()
            return PassResult(ok=False, error=f"NVML: {e}; keeping the labels on the Node", kind="nvml_error")
        self.metrics.observe_topology(topology)
        desired = labels_for_topology(topology, self.config, self.started_at)
        for rejected in desired.rejected:
            self.metrics.labels_rejected.labels(key=rejected.key).inc()
        self.metrics.labels_current.set(len(desired.labels))
        try:
            plan, wrote = self.retry(self._publish, desired.labels)
        except ApiError as e:  # NodeNotFound is not an ApiError: it ends the command
            return PassResult(ok=False, error=str(e), kind="api_error")
        self.metrics.last_success.set(self.clock())
        return PassResult(ok=True, plan=plan, wrote=wrote)

    def _publish(self, desired: dict[str, str]) -> tuple[LabelPlan, bool]:
        try:
            node = self.kube.read_node(self._node_name())
            plan = plan_update(node.labels, node.owned, desired)
            if not plan.empty:
                node = self.kube.apply_labels(node.name, desired)
            self.node = node
            return plan, not plan.empty
        except ApiError as e:  # every failed attempt counts, retried or not
            self.metrics.api_errors.labels(code=str(e.status or 0)).inc()
            raise

    def _node_name(self) -> str:
        assert self.config.node_name, "the CLI checks --node-name before building a Daemon"
        return self.config.node_name

    def _after(self, result: PassResult) -> None:
        if result.ok:
            self.failures = 0
            if result.wrote and result.plan is not None:
                self.metrics.labels_written.inc(len(result.plan.add) + len(result.plan.change))
                self.metrics.labels_removed.inc(len(result.plan.remove))
                log.info("labels updated on node %s: %s", self.config.node_name, result.plan.summary())
                self._event("GPULabelsChanged", f"mig-labeler: {result.plan.summary()}", "Normal")
            return
        self.failures += 1
        log.warning("pass failed (%d in a row): %s", self.failures, result.error)
        if self.failures >= FAILURES_BEFORE_EVENT:
            self._event("GPULabelingFailed", f"mig-labeler: {self.failures} passes failed: {result.error}",
                        "Warning")

    def _event(self, reason: str, message: str, event_type: str) -> None:
        if self.node is None or not self.events.allow(reason):
            return
        try:
            self.kube.post_event(self.node, reason, message, event_type, self.clock())
        except ApiError as e:  # an Event is best effort: count it, never fail the pass for it
            self.metrics.api_errors.labels(code=str(e.status or 0)).inc()
            log.debug("could not post event %s: %s", reason, e)

    # -- the loop -------------------------------------------------------------------------------
    def run_forever(self, signals: Signals, reload_config: Callable[[], Config] | None = None) -> None:
        """Pass, then wait for the interval or a signal. SIGTERM ends the loop after the current
        pass; SIGHUP re-reads the config and rescans at once."""
        while not signals.stop:
            self.run_pass()
            timeout = None if self.config.sleep_interval == float("inf") else self.config.sleep_interval
            signals.wake.wait(timeout)
            signals.wake.clear()
            if signals.reload and not signals.stop:
                signals.reload = False
                self._reload(reload_config)

    def _reload(self, reload_config: Callable[[], Config] | None) -> None:
        if reload_config is None:
            return
        try:
            self.config = reload_config()
            log.info("configuration reloaded: %s", self.config.summary())
        except MigLabelerError as e:
            log.error("configuration reload failed, keeping the previous one: %s", e)
