"""The daemon: one pass (gate → read → compute → validate → publish to each sink); the loop around it
is ``daemon_loop.RunLoop``'s.

Owns: ``Daemon.run_pass`` (returns a ``PassResult`` that tests and metrics read), keeping the last
good labels when NVML fails (labels.md #4: a failed pass never writes), the Node cache fed by the
watch (for the GPU Operator's pause and for the node sink), readiness, Events and their rate limit.
It knows sinks only through ``sinks.Sink``: each publishes on its own, and one failing never stops
the others. With no Kubernetes client (the file sink alone) there is no Node, no pause, no watch,
no Events. Time (``clock``, ``sleep``) is injected so loop tests run in milliseconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mig_labeler.config import Config
from mig_labeler.daemon_loop import RunLoop
from mig_labeler.errors import (
    ApiError,
    FixtureError,
    MigLabelerError,
    NvmlQueryFailed,
    NvmlUnavailable,
    SinkError,
)
from mig_labeler.gate import Pause, handoff_trigger, pause, watch_trigger
from mig_labeler.health import HealthState
from mig_labeler.kube import KubeClient
from mig_labeler.labels.desired import labels_for_topology
from mig_labeler.labels.mig_config import REQUESTED, STATE, MigRequest, mig_request
from mig_labeler.metrics import Metrics
from mig_labeler.node_cache import NodeCache
from mig_labeler.node_state import NodeState
from mig_labeler.reporting import EventReporter, MigConfigReporter, PassReporter
from mig_labeler.retry import api_retry_policy
from mig_labeler.signals import Signals
from mig_labeler.sinks import Retirable, Sink, SinkResult, handoff_labels
from mig_labeler.sinks.plan import LabelPlan
from mig_labeler.sources import TopologySource
from mig_labeler.watch import NodeWatcher

log = logging.getLogger("mig_labeler")

@dataclass(frozen=True, slots=True)
class PassResult:
    ok: bool
    results: tuple[SinkResult, ...] = ()  # one per sink that published, in --sink order
    error: str = ""
    kind: str = "success"  # success | paused | nvml_error | api_error | sink_error (a sink failed)
    held: str = ""  # why nothing was published although the pass worked (the GPU Operator's pause)

    @property
    def plan(self) -> LabelPlan | None:
        """What the first sink set out to do."""
        return self.results[0].plan if self.results else None

    @property
    def outcome(self) -> LabelPlan | None:
        """What the first sink's answer shows it did; None: it wrote nothing."""
        return self.results[0].outcome if self.results else None

    @property
    def wrote(self) -> bool:
        """A sink wrote (it differed, or ownership had to be taken)."""
        return any(r.wrote for r in self.results)


class Daemon(RunLoop):
    def __init__(self, config: Config, source: TopologySource, kube: KubeClient | None, metrics: Metrics, *,
                 health: HealthState | None = None, clock: Callable[[], float] = time.time,
                 retry_sleep: Callable[[float], None] | None = None, started_at: int | None = None,
                 watch: bool = False, watch_backoff: float = 0.5, signals: Signals | None = None,
                 deadline: float | None = None) -> None:
        self.config = config
        self.source = source
        self.kube = kube
        self.metrics = metrics
        self.health = health or HealthState()
        self.clock = clock
        self.signals = signals or Signals()
        # The backoff ends at once on a stop (Signals.sleep); tests pass a fake clock's sleep.
        self.retry = api_retry_policy(sleep=retry_sleep or self.signals.sleep, deadline=deadline)
        if kube is not None and kube.signals is None:
            kube.signals = self.signals  # a stop abandons the request in flight
        if deadline is not None and kube is not None:  # the same bound for each request (--oneshot-timeout)
            kube.deadline = time.monotonic() + deadline
        self.started_at = int(clock()) if started_at is None else started_at
        self.events = EventReporter(self._post_event, clock)
        self.reporting = PassReporter(metrics, self.events, config.node_name)
        self.mig_config = MigConfigReporter(metrics, self.events, clock, config.mig_config_stuck_after)
        self.layout: str | None = None  # the GPU layout the last pass read
        # the freshest Node we know (from the watch, a GET or our apply), and since when its MIG
        # config request and mig-manager's answer have held
        self.cache = NodeCache(tracked=(REQUESTED, STATE), clock=clock)
        self.stopping = threading.Event()
        self.watcher = (NodeWatcher(kube, config.node_name or "", self.on_node_state, self.stopping,
                                    base_backoff=watch_backoff, on_deleted=self.on_node_deleted)
                        if watch and kube is not None else None)
        self.sinks: list[Sink] = []
        self.retiring: list[Retirable] = []  # sinks not selected, emptied of our leftovers once
        self.desired: dict[str, str] | None = None
        self.settling = False
        self.held = ""
        self.warnings: tuple[str, ...] = ()
        self.once: set[str] = set()  # warnings already logged
        self.node_missing = False
        self.woken_at: float | None = None  # perf_counter() of the wake-up the next pass answers
        self._fresh: NodeState | None = None  # the Node read at the start of this pass
        self.paused: Pause | None = None
        self.pause_lock = threading.Lock()
        self.passes_done = 0  # passes the loop finished, whatever their result
        self.progress = threading.Condition()

    def use(self, sinks: Sequence[Sink], retiring: Sequence[Retirable] = ()) -> Daemon:
        """The sinks each pass publishes to, and the unselected ones to retire (``runner`` builds them)."""
        self.sinks = list(sinks)
        self.retiring = list(retiring)
        self.metrics.initialise_sinks([s.name for s in self.sinks])
        return self

    def wait_for_passes(self, count: int, timeout: float | None = None) -> bool:
        """Block until the loop has finished ``count`` passes: what a caller (a test, the bench)
        means by "the daemon is done with that", instead of sleeping and hoping."""
        with self.progress:
            return self.progress.wait_for(lambda: self.passes_done >= count, timeout)

    # -- one pass -------------------------------------------------------------------------------
    def run_pass(self) -> PassResult:
        started = time.perf_counter()
        self.events.flush()  # Events held back by the rate window whose time has come
        self.health.begin_pass()
        result = self._pass()
        self.metrics.pass_duration.observe(time.perf_counter() - started)
        self.metrics.passes.labels(result=result.kind).inc()
        self.health.end_pass(result.ok, result.error)
        self.metrics.ready.set(1 if result.ok else 0)
        self._after(result)
        return result

    def _pass(self) -> PassResult:
        request: MigRequest | None = None  # the MIG config the Node asks mig-manager for
        if self.kube is not None:
            try:  # the Node first: while the GPU Operator changes GPUs, not even nvmlInit
                self._fresh = self.retry(self._current_node)
            except ApiError as e:  # NodeNotFound is not an ApiError: it ends the command
                return PassResult(ok=False, error=str(e), kind="api_error")
            request = mig_request(self._fresh.labels, self.cache.held())
            self.mig_config.progress(request)  # the Node alone says it: paused or not
            paused = pause(self._fresh.labels)
            self._set_paused(paused)
            if paused is not None:
                return PassResult(ok=True, held=paused.message, kind="paused")
        self._retire()
        self.metrics.nvml_inits.inc()
        try:
            topology = self.source.read()
        except (NvmlUnavailable, NvmlQueryFailed, FixtureError) as e:
            self.metrics.nvml_errors.labels(call=getattr(e, "call", "nvmlInit")).inc()
            return PassResult(ok=False, error=f"NVML: {e}; keeping the published labels", kind="nvml_error")
        except MigLabelerError as e:  # the vGPU scan found a malformed record: GFD fails the pass too
            return PassResult(ok=False, error=f"{e}; keeping the published labels", kind="nvml_error")
        self.metrics.observe_topology(topology)
        self.layout = topology.layout()
        desired = labels_for_topology(topology, self.config, self.started_at, source_warnings=self.source.warnings,
                                      mig_request=request)
        self.mig_config.verified(desired.verification)
        for rejected in desired.rejected:
            self.metrics.labels_rejected.labels(key=rejected.key).inc()
        for warning in desired.warnings:  # rejected labels, MIG-INVALID reason, several models: once each
            if warning not in self.warnings:
                log.warning("%s", warning)
        self.warnings = desired.warnings
        self.metrics.labels_current.set(len(desired.labels))
        self.settling = any(g.mig_mode is not None and g.mig_mode.change_pending for g in topology.gpus)
        # Node changes to our labels wake a pass only when a sink writes the Node itself.
        self.desired = desired.labels if any(not s.feeds_nfd for s in self.sinks) else None
        results, errors = self._publish_all(desired.labels)
        held = next((r.held for r in results if r.held), "")
        if held:
            latest = self.cache.latest()
            self._set_paused(pause(latest.labels) if latest is not None else None)
        if errors:
            kind = "api_error" if any(isinstance(e, ApiError) for _, e in errors) else "sink_error"
            said = [str(e) if len(self.sinks) == 1 else f"{name} sink: {e}" for name, e in errors]
            return PassResult(ok=False, results=tuple(results), error="; ".join(said), kind=kind, held=held)
        self.metrics.last_success.set(self.clock())
        return PassResult(ok=True, results=tuple(results), held=held)

    def _publish_all(self, desired: dict[str, str]) -> tuple[list[SinkResult], list[tuple[str, MigLabelerError]]]:
        """Each sink on its own, with the retry policy: a failing sink never blocks the others,
        and a failure writes nothing (the labels each sink holds stay as they are)."""
        results: list[SinkResult] = []
        errors: list[tuple[str, MigLabelerError]] = []  # (sink, what failed)
        for sink in self.sinks:
            labels = self._handoff(desired) if sink.feeds_nfd else desired
            try:
                result = self.retry(self._counted, sink.publish, labels)
            except (ApiError, SinkError) as e:  # NodeNotFound is neither: it ends the pass
                self.metrics.publish.labels(sink=sink.name, result="error").inc()
                errors.append((sink.name, e))
                continue
            outcome = "written" if result.wrote else ("held" if result.held else "unchanged")
            self.metrics.publish.labels(sink=sink.name, result=outcome).inc()
            results.append(result)
        return results, errors

    def _handoff(self, desired: dict[str, str]) -> dict[str, str]:
        """For a sink that feeds nfd-master: our leftover Node labels ride along until nfd-master
        owns them (``sinks.handoff_labels``)."""
        node = self.cache.latest()
        if node is None:
            return desired
        labels = handoff_labels(desired, node.labels, node.owned, node.nfd_labels)
        if len(labels) > len(desired):
            self.warn_once(f"handing {len(labels) - len(desired)} labels that mig-labeler set on node {node.name} "
                            "directly over to nfd-master; they are removed once nfd-master has taken them over")
        return labels

    def _counted(self, publish: Callable[[dict[str, str]], SinkResult], labels: dict[str, str]) -> SinkResult:
        try:
            return publish(labels)
        except ApiError as e:  # every failed attempt counts, retried or not
            self.count_api_error(e)
            raise

    def _retire(self) -> None:
        """Empty the sinks a previous mode left labels in (a mode switch); retried next pass on failure."""
        for sink in list(self.retiring):
            try:
                result = self.retry(sink.retire)
            except (ApiError, SinkError) as e:
                self.warn_once(f"could not remove what mig-labeler left in the {sink.name} sink: {e}")
                continue
            self.retiring.remove(sink)
            if result is not None and result.outcome is not None:
                log.info("removed %d labels mig-labeler had left in the %s sink (it is not selected any more)",
                         len(result.outcome.remove), sink.name)

    def count_api_error(self, e: ApiError) -> None:
        self.metrics.api_errors.labels(code=str(e.status or 0)).inc()

    def _current_node(self) -> NodeState:
        """The watched Node, else one GET (polling); the node sink's first attempt reuses it."""
        try:
            node = self._watched_node() or self._kube().read_node(self._node_name())
        except ApiError as e:
            self.count_api_error(e)
            raise
        self.remember(node)
        return node

    def node_for_publish(self) -> NodeState:
        """For the node sink: the watched Node, else the one this pass read, else a fresh GET (a retry)."""
        node = self._watched_node() or self._fresh or self._kube().read_node(self._node_name())
        self._fresh = None
        self.remember(node)
        return node

    def _kube(self) -> KubeClient:
        assert self.kube is not None, "only sinks and passes that need the API call this"
        return self.kube

    def warn_once(self, message: str) -> None:
        if message not in self.once:
            self.once.add(message)
            log.warning("%s", message)

    # -- the Node cache fed by the watch -------------------------------------------------------
    def _watched_node(self) -> NodeState | None:
        """The watched Node stands in for a GET while the watch is connected."""
        if self.watcher is None or not self.watcher.available or not self.watcher.connected.is_set():
            return None
        return self.cache.latest()

    def remember(self, node: NodeState) -> NodeState | None:
        """For the node sink and the pass: the Node cache keeps the newer state (``NodeCache``)."""
        return self.cache.remember(node)

    @property
    def node(self) -> NodeState | None:
        return self.cache.latest()

    def _set_paused(self, paused: Pause | None) -> None:
        """The mig_labeler_paused{reason} gauge, and one log line when a pause begins or ends."""
        with self.pause_lock:
            if paused == self.paused:
                return
            previous, self.paused = self.paused, paused
            self.metrics.set_paused(paused.reason if paused is not None else None)
        if paused is not None:
            log.info("paused: %s; no NVML calls and no label changes until it ends", paused.message)
        elif previous is not None:
            log.info("pause over (%s); scanning now", previous.reason)

    def on_node_deleted(self, node: NodeState) -> None:
        """Watch callback: our Node is gone. Forget it, say so once, and let the next pass find
        out (a GET: NodeNotFound, not ready) instead of counting passes against a stale cache.
        The watch keeps running; the Node's return (ADDED) wakes a pass that labels it again."""
        self.cache.forget(node)
        self.health.end_pass(False, f"node {node.name} was deleted")
        self.metrics.ready.set(0)
        log.warning("node %s was deleted; labels are written again when it comes back", node.name)
        self.signals.wake.set()

    def on_node_state(self, node: NodeState) -> None:
        """Watch callback (watch thread): cache the Node, and wake the loop when the change
        needs a pass: mig-manager finished or changed the config, or someone touched our labels."""
        previous = self.remember(node)
        latest = self.cache.latest()
        if latest is not None:  # cached first, then the gauge: a pass that sees the gauge sees the pause
            self._set_paused(pause(latest.labels))
        if previous is None:
            if self.cache.back():  # it is back: label it now, not at the next interval
                self.signals.wake.set()
            return
        reason = watch_trigger(previous.labels, node.labels, node.owned, self.desired)
        if reason is None and any(sink.feeds_nfd for sink in self.sinks):
            reason = handoff_trigger(previous.nfd_labels, node.nfd_labels, node.owned)
        if reason:
            log.debug("node %s changed (%s): rescanning now", node.name, reason)
            self.woken_at = self.woken_at or time.perf_counter()
            self.signals.wake.set()

    def _node_name(self) -> str:
        assert self.config.node_name, "the CLI checks --node-name before building a Daemon"
        return self.config.node_name

    def _after(self, result: PassResult) -> None:
        self.held = result.held
        self._report(result)
        self.woken_at = None  # the pass that answered the wake-up is over

    def _report(self, result: PassResult) -> None:
        if result.ok:
            self.reporting.succeeded(result.results, self.layout, self.woken_at)
        else:
            self.reporting.failed(result.error)

    def _post_event(self, reason: str, message: str, event_type: str) -> bool:
        """For the EventReporter: False while no Node is known yet (the Event waits for one)."""
        if self.kube is None:
            return True  # no cluster, no Events
        node = self.cache.latest()
        if node is None:
            return False
        try:
            self.kube.post_event(node, reason, message, event_type, self.clock())
        except ApiError as e:  # an Event is best effort: count it, never fail the pass for it
            self.count_api_error(e)
            if e.status == 403:
                self.warn_once(f"cannot post Events, labels are still published: {e}")
            else:
                log.debug("could not post event %s: %s", reason, e)
        return True
