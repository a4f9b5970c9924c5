"""The one owner of every setting that can change while the daemon runs.

Owns: the ``Config`` in force and ``started_at`` (``gfd.timestamp``: process start or the last
reload, as GFD), and every way they change: SIGHUP or a changed config file or mig-parted file
(read everything again through the ``ConfigSource`` the command line gave), a changed mig-parted
ConfigMap (read through the API, watched). A bad new setting keeps the running one (one line, a
counter, an Event). Everyone else reads the ``Config`` they were built with; after a change the
composition root builds them again. Output modes are not run-time settings: the sinks stay as
started (their RBAC, mounts and checks came with them).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from tenacity import Retrying

from mig_labeler.config import Config
from mig_labeler.daemon.metrics import Metrics
from mig_labeler.daemon.operator_config import AUTO, Resolved, candidates, read_configmap, resolve
from mig_labeler.daemon.our_node import OurNode
from mig_labeler.daemon.reporting import PassReporter
from mig_labeler.daemon.wake import Wake
from mig_labeler.daemon.watch import ConfigFileWatcher, ConfigMapWatcher
from mig_labeler.errors import ApiError, ConfigError, MigLabelerError
from mig_labeler.kube.client import KubeClient
from mig_labeler.mig_parted import MigPartedConfig, mig_parted_from_configmap
from mig_labeler.node_configs import choose_config
from mig_labeler.stop import Stop
from mig_labeler.text_files import config_names

log = logging.getLogger("mig_labeler")


class ConfigSource(Protocol):
    def read(self) -> Config:
        """The configuration as the command line's flags, the environment and the config file
        give it now (raises ``ConfigError`` on a bad one)."""
        ...

    def read_with(self, config_file: str | None) -> Config:
        """The same with a node's config file (None: the empty config) in place of --config-file."""
        ...


class StaticConfig:
    """A configuration that never changes (``--oneshot``, ``diff``, a caller with its own)."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def read(self) -> Config:
        return self.config

    def read_with(self, config_file: str | None) -> Config:
        raise ConfigError("a node's device-plugin config is applied through the command line's options")


class LiveSettings:
    def __init__(self, source: ConfigSource, config: Config, *, kube: KubeClient | None, node: OurNode | None,
                 wake: Wake, stop: Stop, retry: Retrying, reporting: PassReporter, metrics: Metrics,
                 clock: Callable[[], float], started_at: int | None = None) -> None:
        """``config``: the one the command line built at start-up from ``source``."""
        self.source = source
        self.kube = kube
        self.node = node if config.node_configs is not None else None  # read for its device-plugin.config
        self.wake = wake
        self.stop = stop
        self.retry = retry
        self.reporting = reporting
        self.metrics = metrics
        self.clock = clock
        self._config = config
        self._started_at = int(clock()) if started_at is None else started_at
        self._lock = threading.Lock()
        self._configmap_update: dict[str, Any] | None = None  # a changed ConfigMap, not yet parsed
        self._configmap_version = ""  # resourceVersion of the ConfigMap read at start-up
        self._configmap_text: str | None = None  # the config text last taken from it
        self._resolved: Resolved | None = None  # NAMESPACE/auto: the ConfigMap mig-manager uses, as last resolved
        self._resolve_again = False  # NAMESPACE/auto: one of the candidate ConfigMaps changed
        self._node_label: str | None = None  # the device-plugin.config value last acted on (None: none yet)
        self._node_config: str | None = None  # the config it picked ("": the empty config; None: none yet)
        self._blocked: str | None = None  # why no config could be picked yet: passes fail, nothing is published

    @property
    def config(self) -> Config:
        return self._config

    @property
    def started_at(self) -> int:
        return self._started_at

    @property
    def blocked(self) -> str | None:
        """Why no device-plugin config could be picked for this node yet (a pass must not publish)."""
        return self._blocked

    @property
    def pending(self) -> bool:
        """A reload was asked for, the ConfigMap changed, or the node's device-plugin.config label
        has another value than the one acted on: the root rebuilds before the next pass."""
        return (self.wake.reload_asked or self._configmap_update is not None or self._resolve_again
                or self._node_label_changed())

    def _node_labels(self) -> dict[str, str] | None:
        latest = self.node.latest() if self.node is not None else None
        return latest.labels if latest is not None else None

    def _node_label_changed(self) -> bool:
        labels, configs = self._node_labels(), self._config.node_configs
        return labels is not None and configs is not None and labels.get(configs.label, "") != self._node_label

    # -- start-up --------------------------------------------------------------------------------
    def start_up(self) -> None:
        """Before the first pass: the mig-parted ConfigMap, and with --config-file-srcdir the Node
        (its device-plugin.config label picks the config; ``pending`` says so, the root applies it).
        A Node that cannot be read yet is left to the first pass."""
        self.read_configmap()
        if self.node is not None:
            try:
                self.node.read()
            except ApiError as e:
                log.warning("could not read the Node for its device-plugin config at start-up (%s); the first pass "
                            "will", e)
            if self._node_labels() is None:
                self._blocked = "waiting for the Node: its nvidia.com/device-plugin.config label picks the config"

    def read_configmap(self) -> None:
        """``--mig-parted-configmap``: the config, read once before the first pass (a pass without
        it would drop ``mig.config.applied``). The watch (``start_watching``) takes it from here."""
        ref = self._config.mig_parted_configmap
        if ref is None or self.kube is None:
            return
        obj, parsed, resolved = fetch_mig_parted_configmap(self.kube, self.retry, ref, self._config.node_name)
        self._configmap_version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        self._take_configmap(ref, obj, parsed, resolved)

    def _take_configmap(self, ref: tuple[str, str, str], obj: dict[str, Any], parsed: MigPartedConfig,
                        resolved: Resolved | None) -> None:
        """The config read from ``obj`` is in force from the next pass; the source gauge says which."""
        self._resolved, self._configmap_text = resolved, configmap_text(obj, ref[2])
        self._config = replace(self._config, mig_parted=parsed)
        self.metrics.mig_parted_source.clear()
        name, source = (resolved.name, resolved.source) if resolved is not None else (ref[1], "named")
        self.metrics.mig_parted_source.labels(configmap=f"{ref[0]}/{name}", source=source).set(1)

    def start_watching(self) -> None:
        """Watch what can change: the config file, or with --config-file-srcdir the directory of
        configs (the node's choice is made later, and any of them may become it), and the
        mig-parted file (a ConfigMap mount is swapped through a symlink, so their fingerprints are
        polled), the mig-parted ConfigMap."""
        configs = self._config.node_configs
        config = configs.directory if configs is not None else self._config.config_file
        for path in (config, self._config.mig_parted_file):
            if path:
                ConfigFileWatcher(path, self, self.stop).start()
        ref = self._config.mig_parted_configmap
        if ref is not None and self.kube is not None:
            namespace, name, _ = ref
            if self._resolved is None:
                ConfigMapWatcher(self.kube, namespace, name, self._configmap_version, self, self.stop,
                                 self.metrics).start()
                return
            for candidate in candidates(self._config.node_name, self._resolved):  # a change of any resolves again
                version = self._configmap_version if candidate == self._resolved.name else ""
                ConfigMapWatcher(self.kube, namespace, candidate, version, self, self.stop, self.metrics).start()

    # -- what the watchers report (their threads) ------------------------------------------------
    def file_changed(self, path: str) -> None:
        log.info("config file %s changed; reloading", path)
        self.wake.request_reload()

    def configmap_changed(self, obj: dict[str, Any]) -> None:
        """Parsed by the loop's thread before the next pass (a bad one is reported from there,
        like a bad file). The same text again (a relist after a 410, an edit of another key) is no
        change: nothing is reloaded, counted or evented."""
        if self._resolved is not None:  # NAMESPACE/auto: which ConfigMap mig-manager uses may have changed too
            with self._lock:
                self._resolve_again = True
            self.wake.now()
            return
        key = self._config.mig_parted_configmap[2] if self._config.mig_parted_configmap else ""
        text = configmap_text(obj, key)
        with self._lock:
            if text is not None and text == self._configmap_text:
                log.debug("ConfigMap event with the config text already in use; nothing to reload")
                return
            self._configmap_text = text
            self._configmap_update = obj
        self.wake.now()

    def configmap_deleted(self, obj: dict[str, Any]) -> None:
        if self._resolved is not None:
            self.configmap_changed(obj)
            return
        meta = obj.get("metadata") or {}
        log.warning("ConfigMap %s/%s was deleted; layouts are verified against the config last read from it until "
                    "it is back", meta.get("namespace"), meta.get("name"))

    # -- between two loops: the root asks, then builds again ---------------------------------------
    def apply_pending(self) -> None:
        """Take every change asked for since the last call. A reload reads the files again; a
        ConfigMap change parses the ConfigMap. Either one that fails keeps what runs."""
        if self.wake.take_reload():
            self._reread()
        with self._lock:
            update, self._configmap_update = self._configmap_update, None
        if update is not None:
            self._apply_configmap(update)
        with self._lock:
            again, self._resolve_again = self._resolve_again, False
        if again:
            self._resolve()
        if self._node_label_changed():
            self._pick_node_config()

    def _pick_node_config(self, again: bool = False) -> None:
        """The config the node's label picks, as config-manager picks it (``node_configs``). A label
        naming no config keeps the one in use (as the device plugin does: config-manager fails and
        its symlink stays): one line, the valid gauge at 0, one Warning Event."""
        labels, configs = self._node_labels(), self._config.node_configs
        if labels is None or configs is None:
            return
        value = labels.get(configs.label, "")
        if value == self._node_label and not again:
            return
        self._node_label = value
        try:
            name = choose_config(value, config_names(configs.directory), configs.default, configs.fallbacks)
            config = self.source.read_with(os.path.join(configs.directory, name) if name else None)
        except MigLabelerError as e:
            self.reporting.node_config_failed(str(e))
            if self._node_config is None:
                self._blocked = f"no device-plugin config: {e}"
            return
        previous, self._node_config, self._blocked = self._node_config, name, None
        self.reporting.node_config_chosen(name, value, previous)
        if previous is not None and name == previous and not again:
            return
        self._adopt(config, restarted=previous is not None)

    def _reread(self) -> None:
        if self._config.node_configs is not None and self._node_config is not None:
            self._pick_node_config(again=True)  # the directory's files may have changed: pick and read again
            return
        try:
            config = self.source.read()
        except MigLabelerError as e:
            self.reporting.reload_failed(str(e))
            return
        except Exception as e:  # noqa: BLE001 - nothing a file holds may stop the daemon
            log.exception("configuration reload failed with an internal error, keeping the previous one")
            self.reporting.reload_failed(f"internal error: {type(e).__name__}")
            return
        self.reporting.reloaded()
        self._adopt(config, restarted=True)

    def _adopt(self, config: Config, restarted: bool) -> None:
        """``config`` is in force from the next pass; ``restarted``: gfd.timestamp moves, as GFD's
        restart after a reload or a new config (config-manager signals it) moves it."""
        config = self._keep_sinks(config)
        if config.mig_parted_configmap:  # read through the API, not from the files a reload reads
            config = replace(config, mig_parted=self._config.mig_parted)
        self._config = config
        if not restarted:
            return
        self._started_at = int(self.clock())
        log.info("configuration reloaded", extra={"fields": {"settings": config.summary()}})
        for warning in config.warnings:
            log.warning("%s", warning)

    def _keep_sinks(self, config: Config) -> Config:
        """A reload cannot switch output modes: say so, and keep the running ones."""
        def selection(c: Config) -> str:
            return ",".join(c.sinks) + (f" (file {c.output_file})" if "file" in c.sinks else "")

        if selection(config) != selection(self._config):
            log.warning("the reloaded configuration selects the sinks %s; output modes change only on a restart, "
                        "so the running sinks stay: %s", selection(config), selection(self._config))
        return replace(config, sinks=self._config.sinks, output_file=self._config.output_file,
                       namespace=self._config.namespace, pod_name=self._config.pod_name)

    def _resolve(self) -> None:
        """NAMESPACE/auto: resolve again as mig-manager would, and take the config if it differs."""
        ref = self._config.mig_parted_configmap
        assert ref is not None and self.kube is not None
        try:
            obj, parsed, resolved = fetch_mig_parted_configmap(self.kube, self.retry, ref, self._config.node_name)
        except MigLabelerError as e:
            self.reporting.reload_failed(str(e))
            return
        if resolved == self._resolved and configmap_text(obj, ref[2]) == self._configmap_text:
            return
        self.reporting.reloaded()
        self._take_configmap(ref, obj, parsed, resolved)

    def _apply_configmap(self, obj: dict[str, Any]) -> None:
        assert self._config.mig_parted_configmap is not None, "only a ConfigMap watch hands updates over"
        namespace, name, key = self._config.mig_parted_configmap
        try:
            parsed = mig_parted_from_configmap(obj, namespace, name, key)
        except ConfigError as e:
            self.reporting.reload_failed(str(e))
            return
        self.reporting.reloaded()
        self._config = replace(self._config, mig_parted=parsed)
        log.info("mig-parted config reloaded from ConfigMap %s/%s (%d configs)", namespace, name, len(parsed.configs))
        for warning in parsed.warnings:
            log.warning("%s", warning)


def configmap_text(obj: dict[str, Any], key: str) -> str | None:
    data = obj.get("data")
    text = data.get(key) if isinstance(data, dict) else None
    return text if isinstance(text, str) else None


def fetch_mig_parted_configmap(kube: KubeClient, retry: Retrying, ref: tuple[str, str, str], node: str | None = None
                               ) -> tuple[dict[str, Any], MigPartedConfig, Resolved | None]:
    """The ConfigMap, the config parsed from it, and with NAMESPACE/auto which one mig-manager uses
    for ``node`` (``operator_config``). A missing or forbidden ConfigMap, a missing key or a bad
    config is a wrong setup: one line, exit 2 (ConfigError)."""
    namespace, name, key = ref
    resolved: Resolved | None = None
    if name == AUTO:
        resolved, obj = resolve(kube, retry, namespace, node)
        name, where = resolved.name, resolved.describe(namespace)
    else:
        obj, where = _named_configmap(kube, retry, namespace, name), f"ConfigMap {namespace}/{name}"
    parsed = replace(mig_parted_from_configmap(obj, namespace, name, key), source=where)
    log.info("mig-parted config read from %s, key %s (%d configs)", where, key, len(parsed.configs))
    for warning in parsed.warnings:
        log.warning("%s", warning)
    return obj, parsed, resolved


def _named_configmap(kube: KubeClient, retry: Retrying, namespace: str, name: str) -> dict[str, Any]:
    obj = read_configmap(kube, retry, namespace, name, "--mig-parted-configmap",
                         f"Grant get and watch on it alone: a Role in {namespace} with resourceNames: [{name}] and a "
                         "RoleBinding to mig-labeler's service account (manifests/overlays/mig-parted-api)")
    if obj is None:
        raise ConfigError(f"ConfigMap {namespace}/{name} (--mig-parted-configmap) does not exist")
    return obj
