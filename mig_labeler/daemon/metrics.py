"""Prometheus metrics, registered on an injected ``CollectorRegistry``.

Owns: the metric names and what each means (docs/deployment.md, "Health and metrics"), and the
label values each labelled series starts with: every series the dashboard and the alerts query
exists from the first scrape (at 0), so panels never say "No data" and ``rate()``/``increase()``
see a series' first increment. Tests build a fresh registry per daemon; production uses one for
the process.
"""

from __future__ import annotations

from collections import Counter as Tally
from typing import TYPE_CHECKING

from mig_labeler.deferred_imports import load
from mig_labeler.errors import ApiError
from mig_labeler.topology import NodeTopology

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

PASS_RESULTS = ("success", "paused", "nvml_error", "api_error", "sink_error", "error")
PUBLISH_RESULTS = ("written", "unchanged", "held", "error")
API_CODES = ("0", "403", "404", "409", "422", "429", "500", "502", "503", "504")  # 0: no HTTP answer
RELOAD_RESULTS = ("success", "failure")


def new_registry() -> CollectorRegistry:
    """A registry of the daemon's own metrics only (none of the client's default collectors)."""
    registry: CollectorRegistry = load("prometheus_client.registry").CollectorRegistry()
    return registry


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        client = load("prometheus_client.metrics")  # without the package's __init__ (deferred_imports)
        Counter, Gauge, Histogram = client.Counter, client.Gauge, client.Histogram  # noqa: N806 - the classes
        self.registry = registry
        self.passes = Counter("mig_labeler_passes", "Labelling passes by result.", ["result"], registry=registry)
        self.publish = Counter("mig_labeler_publish", "Publish attempts per sink (node, nodefeature, file) by result: "
                               "written, unchanged, held (the GPU Operator's pause) or error.", ["sink", "result"],
                               registry=registry)
        self.pass_duration = Histogram(
            "mig_labeler_pass_duration_seconds", "Wall time of one read-compute-publish pass.", registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.nvml_errors = Counter("mig_labeler_nvml_errors", "NVML failures by call.", ["call"], registry=registry)
        self.api_errors = Counter("mig_labeler_api_errors", "Kubernetes API failures by HTTP status "
                                  "(0 = connection error).", ["code"], registry=registry)
        self.labels_written = Counter("mig_labeler_labels_written", "Label keys added or changed on the Node.",
                                      registry=registry)
        self.labels_removed = Counter("mig_labeler_labels_removed", "Owned label keys removed from the Node.",
                                      registry=registry)
        self.labels_current = Gauge("mig_labeler_labels", "Labels mig-labeler currently wants on the Node.",
                                    registry=registry)
        self.labels_rejected = Counter("mig_labeler_labels_rejected", "Computed labels not published because "
                                       "they are invalid for Kubernetes.", ["key"], registry=registry)
        self.last_success = Gauge("mig_labeler_last_success_timestamp_seconds",
                                  "Unix time of the last pass that published successfully.", registry=registry)
        self.mig_devices = Gauge("mig_labeler_mig_devices", "MIG devices on the node per profile.", ["profile"],
                                 registry=registry)
        self.gpu_utilization = Gauge("mig_labeler_gpu_utilization_ratio", "Utilization of each full GPU, 0 to 1 "
                                     "(NVML; not available for MIG-enabled GPUs: use DCGM for per-MIG data).",
                                     ["gpu", "uuid"], registry=registry)
        self.reaction = Histogram("mig_labeler_reaction_seconds", "From a wake-up (a Node change on the watch, "
                                  "SIGHUP, a config-file change) to the labels it caused being published.",
                                  registry=registry, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.paused = Gauge("mig_labeler_paused", "1 while the GPU Operator pauses NVML clients (gpu.deploy.client, "
                            "GFD's deploy label, mig.config.state); reason names the label and value.", ["reason"],
                            registry=registry)
        self.nvml_inits = Counter("mig_labeler_nvml_inits", "NVML sessions opened (nvmlInit calls); it stands still "
                                  "during a pause.", registry=registry)
        self.watch_up = Gauge("mig_labeler_watch_up", "1 while a watch (node: our Node; configmap: the mig-parted "
                              "ConfigMap) is connected, 0 while its reconnects fail: the daemon is blind to changes "
                              "until it is back (passes still read the Node at each interval).", ["watch"],
                              registry=registry)
        self.watch_failures = Counter("mig_labeler_watch_failures", "Failed watch connections and streams, by "
                                      "watch.", ["watch"], registry=registry)
        self.node_config = Gauge("mig_labeler_device_plugin_config", "1 for the device-plugin config this node uses "
                                 "(--config-file-srcdir: picked by its nvidia.com/device-plugin.config label; "
                                 "config=\"\" is the empty config).", ["config"], registry=registry)
        self.node_config_valid = Gauge("mig_labeler_device_plugin_config_valid", "0 while the node's "
                                       "nvidia.com/device-plugin.config label names a config that does not exist "
                                       "(the last good config stays in use), else 1.", registry=registry)
        self.gpus = Gauge("mig_labeler_gpus", "GPUs by state: healthy (answering NVML), lost (listed by NVML, "
                          "not answering: GPU_IS_LOST), missing (on the PCI bus, not listed by NVML).", ["state"],
                          registry=registry)
        self.mig_parted_source = Gauge("mig_labeler_mig_parted_source", "1 for the mig-parted ConfigMap in use "
                                       "and its source: custom, generated or default (--mig-parted-configmap "
                                       "NAMESPACE/auto, as mig-manager resolves it), or named.",
                                       ["configmap", "source"], registry=registry)
        self.mig_config_content = Gauge("mig_labeler_mig_config_content", "1 for the content (a hash) of the MIG "
                                        "config the layout was last verified against.", ["config", "digest"],
                                        registry=registry)
        self.ready = Gauge("mig_labeler_ready", "1 when the last pass published successfully.", registry=registry)
        self.config_reloads = Counter("mig_labeler_config_reloads", "Configuration reloads (SIGHUP or a changed "
                                      "file) by result: success, or failure (the previous configuration is kept).",
                                      ["result"], registry=registry)
        self.config_stale = Gauge("mig_labeler_config_stale", "1 while the configuration file differs from the one "
                                  "running because its last reload failed: the next restart will fail on it.",
                                  registry=registry)
        self.mig_config_match = Gauge("mig_labeler_mig_config_match", "1 while the GPUs' MIG layout is the one the "
                                      "config the Node's nvidia.com/mig.config names asks for (mig-manager reported "
                                      "success), 0 while it differs; absent when nothing was compared (no "
                                      "--mig-parted-config, no mig.config, or mig-manager not done).", ["config"],
                                      registry=registry)
        self.mig_config_state_seconds = Gauge("mig_labeler_mig_config_state_seconds", "How long mig-manager has "
                                              "been at the Node's MIG config request: state is pending, rebooting or "
                                              "unanswered (mig.config changed, mig.config.state not yet); absent "
                                              "otherwise.", ["state"], registry=registry)
        self.mig_config_stuck = Gauge("mig_labeler_mig_config_stuck", "1 while mig_labeler_mig_config_state_seconds "
                                      "is past --mig-config-stuck-after.", registry=registry)
        self.resource_api = Gauge("mig_labeler_resource_api", "1 for how pods get this node's GPUs (mode: "
                                  "device-plugin | dra) and why (reason: flag | label | resourceslices | default).",
                                  ["mode", "reason"], registry=registry)
        self.dra_devices = Gauge("mig_labeler_dra_devices", "Devices on this node by source (nvml, or dra: the DRA "
                                 "driver's ResourceSlices) and type (gpu, mig).", ["source", "type"], registry=registry)
        self.dra_disagreements = Gauge("mig_labeler_dra_disagreements", "Ways the DRA driver's ResourceSlices and "
                                       "NVML disagree about this node's GPUs (0: they agree).", registry=registry)
        self._initialise()

    def _initialise(self) -> None:
        """The known label values, at 0 (Prometheus' guidance: initialise the series you know)."""
        for result in PASS_RESULTS:
            self.passes.labels(result=result)
        self.nvml_errors.labels(call="nvmlInit")
        for code in API_CODES:
            self.api_errors.labels(code=code)
        self.labels_rejected.labels(key="")  # an empty label value: Prometheus reads it as no label
        self.paused.labels(reason="").set(0)
        for result in RELOAD_RESULTS:
            self.config_reloads.labels(result=result)
        self.mig_config_stuck.set(0)
        self.node_config_valid.set(1)  # 0 only while a node's label names a config that does not exist
        self.dra_disagreements.set(0)

    def initialise_sinks(self, sinks: list[str]) -> None:
        for sink in sinks:
            for result in PUBLISH_RESULTS:
                self.publish.labels(sink=sink, result=result)

    def count_api_error(self, error: ApiError) -> None:
        """Every failed API request counts, retried or not, by its HTTP status (0: no answer)."""
        self.api_errors.labels(code=str(error.status or 0)).inc()

    def set_paused(self, reason: str | None) -> None:
        """One series: ``{reason=""} 0`` when not paused, ``{reason="<label>=<value>"} 1`` while paused."""
        self.paused.clear()
        self.paused.labels(reason=reason or "").set(1 if reason else 0)

    def observe_topology(self, topology: NodeTopology) -> None:
        counts = Tally(m.profile for m in topology.mig_devices)
        self.mig_devices.clear()
        for profile, count in counts.items():
            self.mig_devices.labels(profile=profile).set(count)
        self.gpu_utilization.clear()
        for gpu in topology.gpus:
            if gpu.utilization_percent is not None:
                self.gpu_utilization.labels(gpu=str(gpu.index), uuid=gpu.uuid).set(gpu.utilization_percent / 100)
