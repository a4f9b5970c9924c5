"""The composition root: builds every part of the daemon in order, runs it, and builds again on a reload.

Owns: ``build_daemon`` (the one place parts are made, each given what it uses through its
constructor), ``Daemon`` (the built house: run the loop, or one pass), ``run_daemon`` (what
``mig-labeler run`` does: start-up checks, the health server, the loop or ``--oneshot``). A reload
is the loop returning here (as GFD's ``run()`` returns "restart"): the settings owner takes the
change and the config-bound parts (the pass, the loop) are built again from it. What must outlive
a reload is built once: the stop token, metrics and health, the API client and our Node's watch,
the sinks (output modes change only on a restart), and the reporters (their windows and
since-when). Imported lazily by the CLI, so ``labels`` and ``--help`` never load it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from tenacity import Retrying

from mig_labeler.config import Config
from mig_labeler.daemon.events import EventReporter
from mig_labeler.daemon.gpu_health import GpuHealthReporter
from mig_labeler.daemon.health import HealthServer, HealthState
from mig_labeler.daemon.live_settings import ConfigSource, LiveSettings, StaticConfig
from mig_labeler.daemon.metrics import Metrics, new_registry
from mig_labeler.daemon.node_events import NodeEvents, NoEvents
from mig_labeler.daemon.one_pass import OnePass, PassResult, Reports
from mig_labeler.daemon.our_node import OurNode
from mig_labeler.daemon.outputs import Outputs, feeds_nfd
from mig_labeler.daemon.reporting import MigConfigReporter, PassReporter, PauseGauge, Warnings
from mig_labeler.daemon.resource_api import ResourceApi
from mig_labeler.daemon.run_loop import STOP, Progress, RunLoop
from mig_labeler.daemon.wake import Wake
from mig_labeler.errors import ApiError, MigLabelerError, Stopped
from mig_labeler.kube.client import KubeClient
from mig_labeler.kube.connection import connect
from mig_labeler.kube.retry import api_retry_policy
from mig_labeler.sources import TopologySource, open_source
from mig_labeler.stop import Stop

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

log = logging.getLogger("mig_labeler")


class PublishFailed(MigLabelerError):
    """``run --oneshot`` could not publish (exit 1)."""


class Daemon:
    """The built house. Its parts are built by ``build_daemon``; it builds only the config-bound
    ones (``OnePass``, ``RunLoop``), from what the settings owner says now."""

    def __init__(self, *, settings: LiveSettings, source: TopologySource, kube: KubeClient | None,
                 node: OurNode | None, outputs: Outputs, reports: Reports, metrics: Metrics, health: HealthState,
                 stop: Stop, wake: Wake, retry: Retrying, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.source = source
        self.kube = kube
        self.node = node
        self.outputs = outputs
        self.reports = reports
        self.metrics = metrics
        self.health = health
        self.stop = stop
        self.wake = wake
        self.retry = retry
        self.clock = clock
        self.progress = Progress()
        self.one_pass = self._build_pass()

    @property
    def config(self) -> Config:
        return self.settings.config

    def _build_pass(self) -> OnePass:
        return OnePass(self.settings.config, self.settings.started_at, self.source, self.node, self.outputs,
                       self.reports, self.metrics, self.health, self.wake, self.retry, self.clock,
                       blocked=self.settings.blocked)

    def start_up(self, check_node: bool = False) -> None:
        """Before the first pass, a wrong setup is one line: an unwritable features.d, NFD's CRD
        not installed, a missing mig-parted ConfigMap; ``check_node``: a wrong --node-name fails
        fast instead of looping (a transient API error is left to the loop's retries)."""
        self.outputs.check()
        self.settings.start_up()
        self.one_pass = self._build_pass()  # with the ConfigMap's config
        if check_node and self.node is not None and self.node.latest() is None:  # unless the settings read it
            try:
                self.node.read()
            except ApiError as e:
                log.warning("could not read the Node at start-up (%s); the loop will retry", e)

    def run_pass(self) -> PassResult:
        """One pass with the settings in force (a change pending is taken first, as the loop does)."""
        if self.settings.pending:
            self.reload()
        return self.one_pass.run()

    def reload(self) -> None:
        """Take the settings' pending changes and build the config-bound parts again."""
        self.settings.apply_pending()
        self.one_pass = self._build_pass()

    def run_forever(self) -> None:
        """Watch, then loop until a stop; each reload returns here and the loop is built again."""
        if self.node is not None:
            self.node.start_watching()
        self.settings.start_watching()
        try:
            while True:
                loop = RunLoop(self.one_pass, self.settings, stop=self.stop, wake=self.wake,
                               events=self.reports.events, progress=self.progress, health=self.health,
                               metrics=self.metrics)
                if loop.run() == STOP:
                    return
                self.reload()
        except Stopped:
            return  # a stop abandoned an Event a reload was posting (the stop token logged it)
        finally:
            self.stop.request()  # the watches end with the loop, however it ended

    @property
    def passes_done(self) -> int:
        return self.progress.done

    def wait_for_passes(self, count: int, timeout: float | None = None) -> bool:
        return self.progress.wait_for(count, timeout)

    def close(self) -> None:
        if self.kube is not None:
            self.kube.close()


def build_daemon(config: Config, source: ConfigSource | None = None, *, host: str | None = None,
                 registry: CollectorRegistry | None = None, health: HealthState | None = None,
                 clock: Callable[[], float] = time.time, retry_sleep: Callable[[float], None] | None = None,
                 watch: bool = False, watch_backoff: float = 0.5, stop: Stop | None = None, wake: Wake | None = None,
                 within: float | None = None, started_at: int | None = None, since: float | None = None) -> Daemon:
    """Every part, in order. ``source``: how the settings are read again on a reload (the command
    line's; none: they never change); ``host``: the API server's URL without credentials (tests);
    ``within``: seconds every request and retry must fit in (``--oneshot-timeout``), counted from
    ``since`` (``time.monotonic()``; default now)."""
    stop = stop or Stop()  # first: every wait below gets it
    wake = wake or Wake()
    metrics = Metrics(registry or new_registry())
    health = health or HealthState()
    kube = (connect(config.kubeconfig, host=host, stop=stop, within=within, since=since, qps=config.kube_api_qps,
                    burst=config.kube_api_burst, context=config.kube_context) if config.needs_kubernetes else None)
    retry = api_retry_policy(stop=stop, sleep=retry_sleep, deadline=within)
    warnings = Warnings()
    pause_gauge = PauseGauge(metrics)
    node = (OurNode(kube, config.node_name or "", stop=stop, wake=wake, metrics=metrics, health=health,
                    pause_gauge=pause_gauge, clock=clock, feeds_nfd=feeds_nfd(config), watch=watch,
                    watch_backoff=watch_backoff, config_label=config.node_configs.label if config.node_configs
                    else None) if kube is not None else None)
    events = EventReporter(NodeEvents(kube, node, metrics, warnings, clock) if kube and node else NoEvents(), clock)
    passes = PassReporter(metrics, events, config.node_name)
    reports = Reports(events, passes, MigConfigReporter(metrics, events, clock, config.mig_config_stuck_after),
                      pause_gauge, warnings, GpuHealthReporter(metrics, events),
                      ResourceApi(config.resource_api, kube, config.node_name or "", metrics, events, warnings, clock))
    settings = LiveSettings(source or StaticConfig(config), config, kube=kube, node=node, wake=wake, stop=stop,
                            retry=retry,
                            reporting=passes, metrics=metrics, clock=clock, started_at=started_at)
    outputs = Outputs(config, kube, node, warnings, metrics)
    topology = open_source(config.fixture, config.machine_type_file, config.driver_root)
    return Daemon(settings=settings, source=topology, kube=kube, node=node, outputs=outputs, reports=reports,
                  metrics=metrics, health=health, stop=stop, wake=wake, retry=retry, clock=clock)


def run_daemon(config: Config, source: ConfigSource, *, stop: Stop, wake: Wake, host: str | None = None,
               started: float | None = None) -> None:
    """``mig-labeler run``. ``stop`` and ``wake``: what the CLI's signal handlers, installed before
    start-up began, set; ``started``: when the process started, which --oneshot-timeout counts from."""
    if config.oneshot:
        _oneshot(config, source, host, stop, started)
        return
    registry = new_registry()
    health = HealthState()
    daemon = build_daemon(config, source, host=host, registry=registry, health=health, watch=True, stop=stop,
                          wake=wake)
    try:
        if stop.requested:
            return
        daemon.start_up(check_node=True)
    except Stopped:
        return  # a stop during start-up: nothing was published yet, nothing to undo (exit 0)
    server = _health_server(config.metrics_port, health, registry)
    try:
        daemon.run_forever()
    finally:
        if server is not None:
            server.stop()
        daemon.close()


def _oneshot(config: Config, source: ConfigSource, host: str | None, stop: Stop, started: float | None) -> None:
    """One pass, bounded by --oneshot-timeout from the process's start (start-up, each request's
    timeouts and the retries). A stop signal before the pass means no pass; during it, the request
    in flight is abandoned and the oneshot fails (exit 1): the labels were not published."""
    daemon = build_daemon(config, source, host=host, stop=stop, within=config.oneshot_timeout, since=started)
    try:
        if stop.requested:
            return
        daemon.start_up()
        result = daemon.run_pass()
    except Stopped as e:
        raise PublishFailed(f"labels were not published: {e}") from None
    finally:
        daemon.close()
    if not result.ok:
        raise PublishFailed(f"labels were not published: {result.error}")


def _health_server(port: int, health: HealthState, registry: CollectorRegistry) -> HealthServer | None:
    if not port:
        return None
    try:
        return HealthServer(port, health, registry).start()
    except OSError as e:
        raise MigLabelerError(f"cannot serve /healthz and /metrics on port {port}: {e.strerror} "
                              "(choose another --metrics-port, or 0 to disable)") from e
