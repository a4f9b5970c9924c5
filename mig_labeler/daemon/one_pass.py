"""One pass: gate → read → compute → validate → publish to each sink → report. No threads, no locks.

Owns: ``OnePass.run`` (returns a ``PassResult`` that the loop, tests and metrics read), keeping the
last good labels when NVML fails (labels.md #4: a failed pass never writes), the GPU Operator's
pause (nothing read, nothing published), each sink publishing on its own (one failing never stops
the others) and emptying the sinks a previous mode left labels in. Built by the composition root
for one ``Config`` and ``started_at``: a reload builds a new one. With no Node (the file sink alone)
there is no pause, no MIG config request and no Event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tenacity import Retrying

from mig_labeler.config import Config
from mig_labeler.daemon.events import EventReporter
from mig_labeler.daemon.gpu_health import GpuHealthReporter
from mig_labeler.daemon.health import HealthState
from mig_labeler.daemon.metrics import Metrics
from mig_labeler.daemon.our_node import OurNode
from mig_labeler.daemon.outputs import Outputs
from mig_labeler.daemon.reporting import MigConfigReporter, PassReporter, PauseGauge, Warnings
from mig_labeler.daemon.resource_api import ResourceApi
from mig_labeler.daemon.wake import Wake
from mig_labeler.errors import (
    AllGpusLost,
    ApiError,
    ConfigError,
    FixtureError,
    MigLabelerError,
    NvmlQueryFailed,
    NvmlUnavailable,
    SinkError,
)
from mig_labeler.gpu_operator import MigRequest, mig_request, pause
from mig_labeler.kube.node_state import NodeState
from mig_labeler.labels.desired import labels_for_topology
from mig_labeler.sinks import SinkResult, handoff_labels
from mig_labeler.sinks.plan import LabelPlan
from mig_labeler.sources import TopologySource

log = logging.getLogger("mig_labeler")


@dataclass(frozen=True, slots=True)
class PassResult:
    ok: bool
    results: tuple[SinkResult, ...] = ()  # one per sink that published, in --sink order
    error: str = ""
    kind: str = "success"  # success | paused | nvml_error | api_error | sink_error (a sink failed)
    held: str = ""  # why nothing was published although the pass worked (the GPU Operator's pause)
    settling: bool = False  # a GPU's pending MIG mode differs from its current one: rescan soon

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


@dataclass(frozen=True, slots=True)
class Reports:
    """Where a pass's results go (process-lived: their state outlives a reload)."""

    events: EventReporter
    passes: PassReporter
    mig_config: MigConfigReporter
    pause: PauseGauge
    warnings: Warnings
    gpus: GpuHealthReporter
    resource_api: ResourceApi  # device plugin or DRA, decided each pass; gpu.clique yielded


class OnePass:
    def __init__(self, config: Config, started_at: int, source: TopologySource, node: OurNode | None,
                 outputs: Outputs, reports: Reports, metrics: Metrics, health: HealthState, wake: Wake,
                 retry: Retrying, clock: Callable[[], float], blocked: str | None = None) -> None:
        """``blocked``: why this pass must not publish (no device-plugin config could be picked):
        it reads the Node (whose label may unblock it), then fails with that reason."""
        self.config = config
        self.started_at = started_at
        self.source = source
        self.node = node
        self.outputs = outputs
        self.reports = reports
        self.metrics = metrics
        self.health = health
        self.wake = wake
        self.retry = retry
        self.clock = clock
        self.blocked = blocked
        self.layout: str | None = None  # the GPU layout the pass read

    def run(self) -> PassResult:
        started = time.perf_counter()
        self.reports.events.flush(retry_now=True)  # held Events whose window has ended; failed posts again
        self.health.begin_pass()
        result = self._pass()
        self.metrics.pass_duration.observe(time.perf_counter() - started)
        self.metrics.passes.labels(result=result.kind).inc()
        self.health.end_pass(result.ok, result.error)
        self.metrics.ready.set(1 if result.ok else 0)
        woken_at = self.wake.take_woken_at()  # the wake-up this pass answered
        if result.ok:
            self.reports.passes.succeeded(result.results, self.layout, woken_at)
        else:
            self.reports.passes.failed(result.error)
        return result

    def _pass(self) -> PassResult:
        request: MigRequest | None = None  # the MIG config the Node asks mig-manager for
        fresh: NodeState | None = None
        if self.node is not None:
            try:  # the Node first: while the GPU Operator changes GPUs, not even nvmlInit
                fresh = self.retry(self.node.read)
            except ApiError as e:  # NodeNotFound is not an ApiError: it ends the pass
                return PassResult(ok=False, error=str(e), kind="api_error")
            if self.blocked:  # the Node was read: the loop acts on its label at once, not at the interval
                self.wake.set()
                raise ConfigError(self.blocked)
            request = mig_request(fresh.labels, self.node.held())
            self.reports.mig_config.progress(request)  # the Node alone says it: paused or not
            paused = pause(fresh.labels)
            self.reports.pause.set(paused)
            if paused is not None:
                return PassResult(ok=True, held=paused.message, kind="paused")
        dra = self.reports.resource_api.decide(fresh)
        self._retire()
        self.metrics.nvml_inits.inc()
        try:
            topology = self.source.read()
        except AllGpusLost as e:
            self.reports.gpus.all_lost(e.lost)
            self.metrics.nvml_errors.labels(call=e.call).inc()
            return PassResult(ok=False, error=f"NVML: {e}; keeping the published labels", kind="nvml_error")
        except (NvmlUnavailable, NvmlQueryFailed, FixtureError) as e:
            self.metrics.nvml_errors.labels(call=getattr(e, "call", "nvmlInit")).inc()
            return PassResult(ok=False, error=f"NVML: {e}; keeping the published labels", kind="nvml_error")
        except MigLabelerError as e:  # the vGPU scan found a malformed record: GFD fails the pass too
            return PassResult(ok=False, error=f"{e}; keeping the published labels", kind="nvml_error")
        self.metrics.observe_topology(topology)
        self.reports.gpus.observe(topology)
        self.layout = topology.layout()
        desired = labels_for_topology(topology, self.config, self.started_at, source_warnings=self.source.warnings,
                                      mig_request=request, dra=dra)
        self.reports.resource_api.check(topology, dra)
        self.reports.mig_config.verified(desired.verification)
        for rejected in desired.rejected:
            self.metrics.labels_rejected.labels(key=rejected.key).inc()
        self.reports.warnings.latest(desired.warnings)  # rejected labels, MIG-INVALID reason, several models
        labels = self.reports.resource_api.yielded(desired.labels, self.node.latest() if self.node else None)
        self.metrics.labels_current.set(len(labels))
        settling = any(g.mig_mode is not None and g.mig_mode.change_pending for g in topology.gpus)
        if self.node is not None:  # Node changes to our labels wake a pass only when a sink writes the Node
            self.node.expect(labels if self.outputs.writes_node else None)
        results, errors = self._publish_all(labels)
        held = next((r.held for r in results if r.held), "")
        if held and self.node is not None:
            latest = self.node.latest()
            self.reports.pause.set(pause(latest.labels) if latest is not None else None)
        if errors:
            kind = "api_error" if any(isinstance(e, ApiError) for _, e in errors) else "sink_error"
            single = len(self.outputs.selected) == 1
            said = [str(e) if single else f"{name} sink: {e}" for name, e in errors]
            return PassResult(ok=False, results=tuple(results), error="; ".join(said), kind=kind, held=held,
                              settling=settling)
        self.metrics.last_success.set(self.clock())
        return PassResult(ok=True, results=tuple(results), held=held, settling=settling)

    def _publish_all(self, desired: dict[str, str]) -> tuple[list[SinkResult], list[tuple[str, MigLabelerError]]]:
        """Each sink on its own, with the retry policy: a failing sink never blocks the others,
        and a failure writes nothing (the labels each sink holds stay as they are)."""
        results: list[SinkResult] = []
        errors: list[tuple[str, MigLabelerError]] = []  # (sink, what failed)
        for sink in self.outputs.selected:
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
        node = self.node.latest() if self.node is not None else None
        if node is None:
            return desired
        labels = handoff_labels(desired, node.labels, node.owned, node.nfd_labels)
        if len(labels) > len(desired):
            self.reports.warnings.once(f"handing {len(labels) - len(desired)} labels that mig-labeler set on node "
                                       f"{node.name} directly over to nfd-master; they are removed once nfd-master "
                                       "has taken them over")
        return labels

    def _counted(self, publish: Callable[[Mapping[str, str]], SinkResult], labels: dict[str, str]) -> SinkResult:
        try:
            return publish(labels)
        except ApiError as e:  # every failed attempt counts, retried or not
            self.metrics.count_api_error(e)
            raise

    def _retire(self) -> None:
        """Empty the sinks a previous mode left labels in (a mode switch); retried next pass on failure."""
        for sink in list(self.outputs.retiring):
            try:
                result = self.retry(sink.retire)
            except (ApiError, SinkError) as e:
                self.reports.warnings.once(f"could not remove what mig-labeler left in the {sink.name} sink: {e}")
                continue
            self.outputs.retired(sink)
            if isinstance(result, SinkResult) and result.outcome is not None:
                log.info("removed %d labels mig-labeler had left in the %s sink (it is not selected any more)",
                          len(result.outcome.remove), sink.name)
