"""The loop around the daemon's passes: pass, then wait for the interval or a wake-up.

Owns: ``RunLoop.run_forever`` (the Node watch, SIGHUP or a config-file change, SIGTERM/SIGINT),
the wait between passes (the interval, shorter while a MIG mode change settles, and the Events
held back by the rate window in between), a pass that fails never ending the process, and
reloading the configuration (kept as it was when the new one is bad; the sinks stay as started).
The pass itself is ``loop.Daemon``'s; this room only decides when one runs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from mig_labeler.config import Config
from mig_labeler.errors import ConfigError, MigLabelerError, NodeNotFound, Stopped
from mig_labeler.mig_parted import mig_parted_from_configmap
from mig_labeler.watch import ConfigFileWatcher, ConfigMapWatcher

if TYPE_CHECKING:
    from mig_labeler.health import HealthState
    from mig_labeler.kube import KubeClient
    from mig_labeler.metrics import Metrics
    from mig_labeler.reporting import EventReporter, PassReporter
    from mig_labeler.signals import Signals
    from mig_labeler.watch import NodeWatcher

log = logging.getLogger("mig_labeler")

SETTLE_INTERVAL = 5.0  # rescan this often while a GPU's pending MIG mode differs from its current one


class RunLoop:
    """Mixed into ``loop.Daemon``, whose state it reads (declared here for the type checker)."""

    config: Config
    signals: Signals
    stopping: threading.Event
    watcher: NodeWatcher | None
    health: HealthState
    metrics: Metrics
    events: EventReporter
    reporting: PassReporter
    settling: bool
    node_missing: bool
    woken_at: float | None
    passes_done: int
    progress: threading.Condition
    clock: Callable[[], float]
    started_at: int
    kube: KubeClient | None
    run_pass: Callable[[], object]
    mig_parted_version = ""  # resourceVersion of the mig-parted ConfigMap read at start-up
    mig_parted_update: dict[str, Any] | None = None  # a changed ConfigMap the watch handed over, not yet parsed

    def run_forever(self, reload_config: Callable[[], Config] | None = None) -> None:
        """Pass, then wait for the interval or a wake-up: the Node watch, SIGHUP or a config-file
        change (re-read the config, rescan now), SIGTERM/SIGINT (finish the pass, return). The
        interval stays as a safety net."""
        signals = self.signals
        if self.watcher is not None:
            self.watcher.start()
        for path in (self.config.config_file, self.config.mig_parted_file):  # a ConfigMap mount is swapped
            if path:
                ConfigFileWatcher(path, signals.request_reload, self.stopping).start()
        if self.config.mig_parted_configmap and self.kube is not None:
            namespace, name, _ = self.config.mig_parted_configmap
            ConfigMapWatcher(self.kube, namespace, name, self.mig_parted_version, self.on_mig_parted_configmap,
                             self.on_mig_parted_configmap_deleted, self.stopping).start()
        try:
            while not signals.stop:
                if signals.reload:
                    signals.reload = False
                    self.woken_at = self.woken_at or time.perf_counter()
                    self._reload(reload_config)
                if self.mig_parted_update is not None:
                    self._reload_mig_parted()
                self._guarded_pass()
                self._wait()
                # Cleared only after the wait: a wake-up that comes during a pass or a reload
                # (a SIGHUP while the file is read) ends the wait at once instead of being lost.
                signals.wake.clear()
        except Stopped:
            return  # a stop abandoned an Event a reload or the wait was posting (signals logged it)
        finally:
            self.stopping.set()

    def _guarded_pass(self) -> None:
        """The daemon outlives any one pass: even a node that vanished or a bug in a pass is
        logged, counted and retried at the next wake-up, never the end of the process."""
        try:
            self._contained_pass()
        finally:
            with self.progress:
                self.passes_done += 1
                self.progress.notify_all()

    def _contained_pass(self) -> None:
        try:
            self.run_pass()
        except Stopped:
            return  # a stop abandoned the pass (signals logged it); the loop ends
        except MigLabelerError as e:
            self.health.end_pass(False, str(e))
            self.metrics.passes.labels(result="error").inc()
            if isinstance(e, NodeNotFound) and self.node_missing:
                log.debug("pass failed: %s", e)  # said once already; the watch wakes us when it is back
            else:
                log.error("pass failed: %s", e)
            self.node_missing = isinstance(e, NodeNotFound)
            return
        except Exception:  # noqa: BLE001 - last line of defence for the daemon, logged with traceback
            self.health.end_pass(False, "internal error")
            self.metrics.passes.labels(result="error").inc()
            log.exception("pass failed with an internal error")
            return
        self.node_missing = False

    def _wait(self) -> None:
        """Until the next pass is due or something wakes the loop; Events held back by the rate
        window are posted when their window ends, in between."""
        wait = self._next_wait()
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            due = self.events.due_in()
            timeout = left if due is None else (due if left is None else min(left, due))
            if self.signals.wake.wait(timeout) or self.signals.stop:
                return
            self.events.flush()
            if deadline is not None and time.monotonic() >= deadline:
                return

    def _next_wait(self) -> float | None:
        interval = self.config.sleep_interval
        if self.settling:
            return min(interval, SETTLE_INTERVAL)
        # threading refuses timeouts above TIMEOUT_MAX (OverflowError); the config caps durations
        # below it already, and this keeps any other path from killing the loop.
        return None if interval >= threading.TIMEOUT_MAX else interval

    def _reload(self, reload_config: Callable[[], Config] | None) -> None:
        if reload_config is None:
            return
        try:
            config = reload_config()
        except MigLabelerError as e:
            self.reporting.reload_failed(str(e))
            return
        except Exception as e:  # noqa: BLE001 - nothing a file holds may stop the daemon
            log.exception("configuration reload failed with an internal error, keeping the previous one")
            self.reporting.reload_failed(f"internal error: {type(e).__name__}")
            return
        self.reporting.reloaded()
        config = self._keep_sinks(config)
        if config.mig_parted_configmap:  # read through the API, not from the files a reload reads
            config = replace(config, mig_parted=self.config.mig_parted)
        self.config = config
        self.started_at = int(self.clock())  # gfd.timestamp: process start or the last reload, as GFD
        log.info("configuration reloaded", extra={"fields": {"settings": config.summary()}})
        for warning in config.warnings:
            log.warning("%s", warning)

    def _keep_sinks(self, config: Config) -> Config:
        """The sinks were built at start-up, with their RBAC, mounts and start-up checks: a reload
        cannot switch output modes. Say so, and keep the running ones."""
        def selection(c: Config) -> str:
            return ",".join(c.sinks) + (f" (file {c.output_file})" if "file" in c.sinks else "")

        if selection(config) != selection(self.config):
            log.warning("the reloaded configuration selects the sinks %s; output modes change only on a restart, "
                        "so the running sinks stay: %s", selection(config), selection(self.config))
        return replace(config, sinks=self.config.sinks, output_file=self.config.output_file,
                       namespace=self.config.namespace, pod_name=self.config.pod_name)

    # -- the mig-parted config from a ConfigMap ----------------------------------------------
    def on_mig_parted_configmap(self, obj: dict[str, Any]) -> None:
        """Watch callback (watch thread): hand the changed ConfigMap to the loop, which parses it
        before the pass it wakes (a bad one is reported from the loop thread, like a bad file)."""
        self.mig_parted_update = obj
        self.woken_at = self.woken_at or time.perf_counter()
        self.signals.wake.set()

    def on_mig_parted_configmap_deleted(self, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        log.warning("ConfigMap %s/%s was deleted; layouts are verified against the config last read from it until "
                    "it is back", meta.get("namespace"), meta.get("name"))

    def _reload_mig_parted(self) -> None:
        obj, self.mig_parted_update = self.mig_parted_update, None
        assert self.config.mig_parted_configmap is not None, "only a ConfigMap watch hands updates over"
        namespace, name, key = self.config.mig_parted_configmap
        try:
            parsed = mig_parted_from_configmap(obj, namespace, name, key)
        except ConfigError as e:
            self.reporting.reload_failed(str(e))
            return
        self.reporting.reloaded()
        self.config = replace(self.config, mig_parted=parsed)
        log.info("mig-parted config reloaded from ConfigMap %s/%s (%d configs)", namespace, name, len(parsed.configs))
