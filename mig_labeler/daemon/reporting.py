"""What an operator sees of each pass: log lines, counters and Kubernetes Events, and their text.

Owns: ``Warnings`` (said once), ``PauseGauge`` (the pause gauge and its log lines),
``PassReporter`` (turns a pass's result into the log line, the label counters and the Event that
say what changed: ``MIG layout 4×3g.20gb → 7×1g.5gb; removed mig-3g.20gb.*; added mig-1g.5gb.*;
gpu.product → …``) and ``MigConfigReporter`` (the Node's MIG config request: does the layout match
it, how long has mig-manager been at it, is it stuck, did it fail). The text is built from pure
pieces owned by the data (``NodeTopology.layout``, ``LabelPlan.describe``). The pass hands
results over; Events go through ``events.EventReporter`` (its window, its retries).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from mig_labeler.daemon.events import EventReporter
from mig_labeler.daemon.metrics import Metrics
from mig_labeler.gpu_operator import REQUESTED, STATE, UNANSWERED, MigRequest, Pause
from mig_labeler.labels.mig_config import Verification
from mig_labeler.sinks.plan import LabelPlan

if TYPE_CHECKING:
    from mig_labeler.sinks import SinkResult

log = logging.getLogger("mig_labeler")

FAILURES_BEFORE_EVENT = 3


class Warnings:
    """Warnings that would repeat every pass, logged once: ``once`` for a fixed message (no Event
    rights, a sink that cannot be emptied), ``latest`` for the set a pass computed (logged when it
    first appears, again after it went away)."""

    def __init__(self) -> None:
        self.said: set[str] = set()
        self.last: tuple[str, ...] = ()

    def once(self, message: str) -> None:
        if message not in self.said:
            self.said.add(message)
            log.warning("%s", message)

    def latest(self, warnings: tuple[str, ...]) -> None:
        for warning in warnings:
            if warning not in self.last:
                log.warning("%s", warning)
        self.last = warnings


class PauseGauge:
    """The ``mig_labeler_paused{reason}`` gauge, and one log line when a pause begins or ends. Set
    from the pass and from the Node watch."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.lock = threading.Lock()
        self.current: Pause | None = None

    def set(self, paused: Pause | None) -> None:
        with self.lock:
            if paused == self.current:
                return
            previous, self.current = self.current, paused
            self.metrics.set_paused(paused.reason if paused is not None else None)
        if paused is not None:
            log.info("paused: %s; no NVML calls and no label changes until it ends", paused.message)
        elif previous is not None:
            log.info("pause over (%s); scanning now", previous.reason)


def describe(changed: Sequence[tuple[str, LabelPlan]], previous: str | None, layout: str | None) -> str:
    """``MIG layout A → B`` when the layout changed since the last pass (``layout B`` on the
    first), then what each sink's labels did."""
    parts = []
    if layout is not None and previous is not None and layout != previous:
        parts.append(f"MIG layout {previous} → {layout}")
    elif layout is not None and previous is None:
        parts.append(f"layout {layout}")
    if len(changed) == 1:
        parts.append(changed[0][1].describe())
    else:
        parts.extend(f"{sink}: {outcome.describe()}" for sink, outcome in changed)
    return "; ".join(parts)


class PassReporter:
    """The log line, counters and Event of each pass."""

    def __init__(self, metrics: Metrics, events: EventReporter, node_name: str | None) -> None:
        self.metrics = metrics
        self.events = events
        self.node_name = node_name
        self.failures = 0
        self.layout: str | None = None  # the layout the last reported change was made for

    def succeeded(self, results: Sequence[SinkResult], layout: str | None, woken_at: float | None) -> None:
        self.failures = 0
        self.events.resolve("GPULabelingFailed")  # a held failure is no news once a pass works
        previous, self.layout = self.layout, layout or self.layout
        changed = [(r.sink, r.outcome) for r in results if r.outcome is not None and not r.outcome.empty]
        if not changed:
            return
        what = describe(changed, previous, layout)
        for sink, outcome in changed:
            self.metrics.labels_written.inc(len(outcome.add) + len(outcome.change))
            self.metrics.labels_removed.inc(len(outcome.remove))
            where = f"on node {self.node_name}" if sink == "node" else f"in the {sink} sink"
            log.info("labels updated %s: %s (%s)", where, what if len(changed) == 1 else outcome.describe(),
                     outcome.summary())
        if woken_at is not None:
            self.metrics.reaction.observe(time.perf_counter() - woken_at)
        if not all(outcome.only_timestamp for _, outcome in changed):  # a restart's new timestamp: no Event
            span = (previous, layout) if previous is not None and layout is not None else None
            self.events.report("GPULabelsChanged", f"mig-labeler: {what}", "Normal", span=span)

    def failed(self, error: str) -> None:
        self.failures += 1
        log.warning("pass failed (%d in a row): %s", self.failures, error)
        if self.failures >= FAILURES_BEFORE_EVENT:
            self.events.report("GPULabelingFailed", f"mig-labeler: {self.failures} passes failed: {error}", "Warning")

    def reload_failed(self, error: str) -> None:
        self.metrics.config_reloads.labels(result="failure").inc()
        self.metrics.config_stale.set(1)
        log.error("configuration reload failed, keeping the previous one: %s", error)
        self.events.report("ConfigReloadFailed", f"mig-labeler keeps its running configuration: {error}; a restart "
                           "would fail on it too", "Warning")

    def node_config_chosen(self, name: str, value: str, previous: str | None) -> None:
        """The node's device-plugin config (``name``; "" is the empty config), picked for the label
        ``value`` ("" when unset). One line and one Normal Event when it changes."""
        self.metrics.node_config.clear()
        self.metrics.node_config.labels(config=name).set(1)
        self.metrics.node_config_valid.set(1)
        self.events.resolve("DevicePluginConfigMissing")
        if name == previous:
            return
        spelled = name or "the empty config"
        why = f"label {value!r}" if value else "no label: the default or a fallback"
        if previous is None:
            log.info("node %s uses device-plugin config %s (%s)", self.node_name, spelled, why)
            return
        change = f"device-plugin config {previous or 'the empty config'} → {spelled} ({why})"
        log.info("node %s: %s", self.node_name, change)
        self.events.report("DevicePluginConfigChanged", f"mig-labeler: {change}", "Normal")

    def node_config_failed(self, error: str) -> None:
        """The label names no config that exists: the last good config stays; a gauge and an Event."""
        self.metrics.node_config_valid.set(0)
        log.error("device-plugin config not changed: %s", error)
        self.events.report("DevicePluginConfigMissing", f"mig-labeler keeps the device-plugin config it uses: {error}",
                           "Warning")

    def reloaded(self) -> None:
        self.events.resolve("ConfigReloadFailed")  # fixed inside the window: "a restart would fail" is untrue now
        self.metrics.config_reloads.labels(result="success").inc()
        self.metrics.config_stale.set(0)


IN_PROGRESS = ("pending", "rebooting", UNANSWERED)  # mig-manager is (or should be) at work on the request


class MigConfigReporter:
    """What an operator sees of the Node's MIG config request. The layout check (each pass that
    reads NVML): the ``mig_config_match{config}`` gauge and one Warning Event per new mismatch.
    The request's progress (every pass, paused or not: it needs only the Node): how long it has
    been pending, rebooting or unanswered, and one Warning Event when that passes ``stuck_after``
    (0: never), with the ``mig_config_stuck`` gauge the alert reads."""

    def __init__(self, metrics: Metrics, events: EventReporter, clock: Callable[[], float],
                 stuck_after: float) -> None:
        self.metrics = metrics
        self.events = events
        self.clock = clock
        self.stuck_after = stuck_after
        self.mismatch: str | None = None  # the difference last reported
        self.stuck: MigRequest | None = None  # the request reported stuck
        self.failed: MigRequest | None = None  # the request reported failed
        self.content: tuple[str, str] | None = None  # (config, digest) last verified

    def verified(self, verification: Verification) -> None:
        self._drift(verification)
        self.metrics.mig_config_match.clear()
        if verification.config is not None:
            self.metrics.mig_config_match.labels(config=verification.config).set(0 if verification.mismatch else 1)
        mismatch = verification.mismatch
        if not mismatch:
            self.events.resolve("MIGLayoutMismatch")  # it matches again: a held mismatch is not current
        if mismatch and mismatch != self.mismatch:
            where = f" (compared with {verification.source})" if verification.source else ""
            log.warning("MIG layout mismatch: %s%s", mismatch, where)
            self.events.report("MIGLayoutMismatch", f"mig-labeler: {mismatch}{where}", "Warning")
        self.mismatch = mismatch

    def _drift(self, verification: Verification) -> None:
        """The content of the config the Node names changed after mig-manager applied it: mig-manager
        applies on a change of the name only (NVIDIA/mig-parted#108), so the GPUs keep the old layout."""
        if verification.config is None or verification.digest is None:
            return
        self.metrics.mig_config_content.clear()
        self.metrics.mig_config_content.labels(config=verification.config, digest=verification.digest).set(1)
        before, self.content = self.content, (verification.config, verification.digest)
        if before is None or before[0] != verification.config or before[1] == verification.digest:
            return
        where = f" in {verification.source}" if verification.source else ""
        message = (f"the content of MIG config {verification.config}{where} changed after mig-manager applied it "
                   f"(content {before[1]} → {verification.digest}): mig-manager does not apply a changed config "
                   "again; label the node with a new nvidia.com/mig.config name to apply it")
        log.warning("%s", message)
        self.events.report("MIGConfigContentChanged", f"mig-labeler: {message}", "Warning")

    def progress(self, request: MigRequest | None) -> None:
        self._failed(request)
        self.metrics.mig_config_state_seconds.clear()
        busy = request is not None and request.state in IN_PROGRESS
        took = max(0.0, self.clock() - request.since) if request is not None else 0.0
        if request is not None and busy:
            self.metrics.mig_config_state_seconds.labels(state=request.state).set(took)
        stuck = busy and 0 < self.stuck_after <= took
        self.metrics.mig_config_stuck.set(1 if stuck else 0)
        if stuck and request is not None and not same_request(request, self.stuck):
            message = stuck_message(request, took)
            log.warning("%s", message)
            self.events.report("MIGConfigStuck", f"mig-labeler: {message}", "Warning")
            self.stuck = request
        elif not stuck and self.stuck is not None:
            self.events.resolve("MIGConfigStuck")
            now = request.state if request is not None else "gone"
            log.info("the MIG config request %s is no longer stuck: %s is %s", self.stuck.config, STATE, now)
            self.stuck = None

    def _failed(self, request: MigRequest | None) -> None:
        """mig-manager gave up on the request: one Warning Event (it posts none of its own)."""
        failed = request is not None and request.state == "failed"
        if failed and request is not None and not same_request(request, self.failed):
            message = (f"{STATE} is failed ({REQUESTED}={request.config}): mig-manager could not apply it; the "
                       "labels describe what NVML shows, and its log says why")
            log.warning("%s", message)
            self.events.report("MIGConfigFailed", f"mig-labeler: {message}", "Warning")
        self.failed = request if failed else None


def same_request(a: MigRequest, b: MigRequest | None) -> bool:
    """The same request at the same stage: one Event for it, however many passes see it."""
    return b is not None and (a.config, a.state) == (b.config, b.state)


def spell_duration(seconds: float) -> str:
    """``45 s``, ``16 min``, ``2 h 5 min``: what a person reads in an Event."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"


def stuck_message(request: MigRequest, took: float) -> str:
    minutes = spell_duration(took)
    if request.state == UNANSWERED:
        return (f"{REQUESTED}={request.config} was set {minutes} ago and mig-manager has not answered ({STATE} "
                "is unchanged): is nvidia-mig-manager running on this node?")
    return (f"{STATE} has been {request.state} for {minutes} ({REQUESTED}={request.config}): mig-manager has not "
            "finished; its log says why (usually GPU clients it could not stop, or a reboot in the middle of the "
            "change)")
