"""Wiring for the publishing commands: builds the real client, the sinks, metrics, health server
and ``Daemon`` from a ``Config``. Imported lazily by the CLI so that ``labels`` and ``--help``
never load the loop, the sinks or prometheus_client (``kubernetes`` itself is loaded by
``kube.api_client`` only when a client is built).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from prometheus_client import CollectorRegistry

from mig_labeler.api_errors import ObjectNotFound
from mig_labeler.config import Config
from mig_labeler.errors import ApiError, ConfigError, MigLabelerError, Stopped
from mig_labeler.health import HealthServer, HealthState
from mig_labeler.kube import KubeClient, api_client
from mig_labeler.labels.desired import labels_for_topology
from mig_labeler.labels.mig_config import mig_request
from mig_labeler.loop import Daemon
from mig_labeler.metrics import Metrics
from mig_labeler.mig_parted import MigPartedConfig, mig_parted_from_configmap
from mig_labeler.rate_limit import client_go_limiter
from mig_labeler.retry import api_retry_policy
from mig_labeler.signals import Signals
from mig_labeler.sinks import Retirable, Sink
from mig_labeler.sinks.file import FileSink
from mig_labeler.sinks.node import NodeSink
from mig_labeler.sinks.nodefeature import NodeFeatureSink
from mig_labeler.sinks.plan import plan_update
from mig_labeler.sources import open_source

log = logging.getLogger("mig_labeler")


class PublishFailed(MigLabelerError):
    """``run --oneshot`` could not publish (exit 1)."""


def build_daemon(config: Config, host: str | None = None, registry: CollectorRegistry | None = None,
                 **kwargs: Any) -> Daemon:
    kube = kube_client(config, host) if config.needs_kubernetes else None
    source = open_source(config.fixture, config.machine_type_file, config.driver_root)
    daemon = Daemon(config, source, kube, Metrics(registry or CollectorRegistry()), **kwargs)
    return daemon.use(*build_sinks(config, kube, daemon))


def read_mig_parted_configmap(daemon: Daemon) -> None:
    """``--mig-parted-configmap``: the config, read once before the first pass (a pass without it
    would drop ``mig.config.applied``). The watch started by the loop takes it from here."""
    if daemon.config.mig_parted_configmap is None or daemon.kube is None:
        return
    parsed, version = fetch_mig_parted_configmap(daemon.kube, daemon.retry, daemon.config.mig_parted_configmap)
    daemon.config = replace(daemon.config, mig_parted=parsed)
    daemon.mig_parted_version = version


def fetch_mig_parted_configmap(kube: KubeClient, retry: Callable[..., Any],
                               ref: tuple[str, str, str]) -> tuple[MigPartedConfig, str]:
    """The parsed config and the ConfigMap's resourceVersion. A missing or forbidden ConfigMap, a
    missing key or a bad config is a wrong setup: one line, exit 2 (ConfigError)."""
    namespace, name, key = ref
    try:
        obj = retry(kube.read_configmap, namespace, name)
    except ObjectNotFound:
        raise ConfigError(f"ConfigMap {namespace}/{name} (--mig-parted-configmap) does not exist") from None
    except ApiError as e:
        if e.status != 403:
            raise
        raise ConfigError(f"cannot read ConfigMap {namespace}/{name} (--mig-parted-configmap): {e}. Grant get and "
                          f"watch on it alone: a Role in {namespace} with resourceNames: [{name}] and a RoleBinding "
                          "to mig-labeler's service account (manifests/overlays/mig-parted-api)") from None
    parsed = mig_parted_from_configmap(obj, namespace, name, key)
    log.info("mig-parted config read from ConfigMap %s/%s key %s (%d configs)", namespace, name, key,
             len(parsed.configs))
    return parsed, str((obj.get("metadata") or {}).get("resourceVersion") or "")


def kube_client(config: Config, host: str | None = None) -> KubeClient:
    """The client with --kube-api-qps/--kube-api-burst applied, as client-go applies them."""
    kube = KubeClient(api_client(config.kubeconfig, host=host))
    kube.rate_limit = client_go_limiter(config.kube_api_qps, config.kube_api_burst)
    return kube


def build_sinks(config: Config, kube: KubeClient | None, daemon: Daemon) -> tuple[list[Sink], list[Retirable]]:
    """The selected sinks in order, and the unselected ones this daemon can reach, to be emptied
    of what an earlier mode left there (the node sink's labels are handed over to nfd-master
    instead: the NFD modes have no Node patch rights)."""
    file = FileSink(config.output_file)
    built: dict[str, Any] = {"file": file}
    if kube is not None:
        node = config.node_name or ""
        built["node"] = NodeSink(kube, daemon.node_for_publish, daemon.remember, daemon.warn_once,
                                 daemon.count_api_error)
        built["nodefeature"] = NodeFeatureSink(kube, node, config.namespace, config.pod_name)
    sinks = [built[name] for name in config.sinks]
    # Only where an earlier mode could have written: a NodeFeature in our known namespace (the
    # pod's, or --namespace), never a guess at "default" with RBAC this mode does not ship.
    retirable = ["file", "nodefeature"] if config.namespace_known else ["file"]
    retiring = [built[name] for name in retirable if name in built and name not in config.sinks]
    return sinks, retiring


def check_sinks(daemon: Daemon) -> None:
    """Start-up checks that turn a wrong setup into one line before the first pass: an unwritable
    features.d, NFD's CRD not installed."""
    for sink in daemon.sinks:
        check = getattr(sink, "check", None)
        if check is not None:
            check()


def run_daemon(config: Config, reload_config: Callable[[], Config], host: str | None = None,
               signals: Signals | None = None) -> None:
    """``signals``: the flags the CLI's handlers set, installed before start-up began."""
    signals = signals or Signals()
    registry = CollectorRegistry()
    health = HealthState()
    if config.oneshot:
        _oneshot(config, host, registry, signals)
        return
    daemon = build_daemon(config, host=host, registry=registry, health=health, watch=True, signals=signals)
    try:
        if signals.stop:
            return
        check_sinks(daemon)
        read_mig_parted_configmap(daemon)
        if daemon.kube is not None:
            check_node_exists(daemon)
    except Stopped:
        return  # a stop during start-up: nothing was published yet, nothing to undo (exit 0)
    server = _health_server(config.metrics_port, health, registry)
    try:
        daemon.run_forever(reload_config)
    finally:
        if server is not None:
            server.stop()
        if daemon.kube is not None:
            daemon.kube.close()


def _oneshot(config: Config, host: str | None, registry: CollectorRegistry, signals: Signals) -> None:
    """One pass, bounded by --oneshot-timeout (each request's timeouts and the retries). A stop
    signal before the pass means no pass; during it, the request in flight is abandoned and the
    oneshot fails (exit 1): the labels were not published."""
    daemon = build_daemon(config, host=host, registry=registry, signals=signals, deadline=config.oneshot_timeout)
    try:
        if signals.stop:
            return
        check_sinks(daemon)
        read_mig_parted_configmap(daemon)
        result = daemon.run_pass()
    except Stopped as e:
        raise PublishFailed(f"labels were not published: {e}") from None
    finally:
        if daemon.kube is not None:
            daemon.kube.close()
    if not result.ok:
        raise PublishFailed(f"labels were not published: {result.error}")


def check_node_exists(daemon: Daemon) -> None:
    """Fail fast on a wrong --node-name instead of looping on it; a transient API error is left to
    the loop's retries."""
    assert daemon.kube is not None
    try:
        daemon.kube.read_node(daemon.config.node_name or "")
    except ApiError as e:
        log.warning("could not read the Node at start-up (%s); the loop will retry", e)


def _health_server(port: int, health: HealthState, registry: CollectorRegistry) -> HealthServer | None:
    if not port:
        return None
    try:
        return HealthServer(port, health, registry).start()
    except OSError as e:
        raise MigLabelerError(f"cannot serve /healthz and /metrics on port {port}: {e.strerror} "
                              "(choose another --metrics-port, or 0 to disable)") from e


def label_diff(config: Config, started_at: int, host: str | None = None,
               timeout: float = 30.0) -> tuple[list[str], list[str]]:
    """The plan ``run --oneshot`` would execute, as diff lines, plus warnings. Writes nothing.
    The Node (and the mig-parted ConfigMap, if named) is read within ``timeout`` seconds, retries
    included (each logged); the Node's MIG config request is verified as a pass would."""
    source = open_source(config.fixture, config.machine_type_file, config.driver_root)
    topology = source.read()
    kube = kube_client(config, host)
    kube.deadline = time.monotonic() + timeout
    retry = api_retry_policy(deadline=timeout)
    try:
        node = retry(kube.read_node, config.node_name or "")
        if config.mig_parted_configmap is not None:
            config = replace(config, mig_parted=fetch_mig_parted_configmap(kube, retry, config.mig_parted_configmap)[0])
    finally:
        kube.close()
    desired = labels_for_topology(topology, config, started_at, mig_request=mig_request(node.labels, {}))
    plan = plan_update(node.labels, node.owned, desired.labels, node.shared)
    unchanged = len(desired.labels) - len(plan.add) - len(plan.change) - len(plan.adopt)
    lines = plan.lines() or ["no changes"]
    lines.append(f"# {plan.summary()}, {unchanged} unchanged; labels owned by others are never touched")
    warnings = list(desired.warnings)
    if desired.verification.mismatch:
        warnings.append(f"MIG layout mismatch: {desired.verification.mismatch}")
    return lines, warnings
