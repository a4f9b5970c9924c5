"""Prometheus metrics, registered on an injected ``CollectorRegistry``.

Owns: the metric names and what each means (README, "Metrics"). Tests build a fresh registry per
daemon; production uses one for the process.
"""

from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from mig_labeler.topology import NodeTopology


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
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
        self.ready = Gauge("mig_labeler_ready", "1 when the last pass published successfully.", registry=registry)

    def observe_topology(self, topology: NodeTopology) -> None:
        counts = Tally(m.profile for m in topology.mig_devices)
        self.mig_devices.clear()
        for profile, count in counts.items():
            self.mig_devices.labels(profile=profile).set(count)
        self.gpu_utilization.clear()
        for gpu in topology.gpus:
            if gpu.utilization_percent is not None:
                self.gpu_utilization.labels(gpu=str(gpu.index), uuid=gpu.uuid).set(gpu.utilization_percent / 100)
