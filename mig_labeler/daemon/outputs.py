"""The sinks a daemon publishes to, built once at start-up.

Owns: building the selected sinks in ``--sink`` order, the unselected ones this daemon can reach
(to be emptied once of what an earlier mode left there: ``retiring``), and their start-up checks
(an unwritable features.d, NFD's CRD not installed: one line before the first pass). Output modes
change only on a restart: the sinks carry RBAC, mounts and start-up checks with them.
"""

from __future__ import annotations

from typing import Any

from mig_labeler.config import Config
from mig_labeler.daemon.metrics import Metrics
from mig_labeler.daemon.our_node import OurNode
from mig_labeler.daemon.reporting import Warnings
from mig_labeler.kube.client import KubeClient
from mig_labeler.sinks import Retirable, Sink
from mig_labeler.sinks.file import FileSink
from mig_labeler.sinks.node import NodeSink
from mig_labeler.sinks.nodefeature import NodeFeatureSink

NFD_SINKS = frozenset({"nodefeature", "file"})  # nfd-master turns what they hold into Node labels


def feeds_nfd(config: Config) -> bool:
    """A selected sink hands labels to nfd-master (``sinks.handoff_labels``)."""
    return bool(NFD_SINKS & set(config.sinks))


class Outputs:
    def __init__(self, config: Config, kube: KubeClient | None, node: OurNode | None, warnings: Warnings,
                 metrics: Metrics) -> None:
        """The node sink's labels are handed over to nfd-master when an NFD mode is selected
        instead of being retired: the NFD modes have no Node patch rights."""
        built: dict[str, Any] = {"file": FileSink(config.output_file)}
        if kube is not None and node is not None:
            built["node"] = NodeSink(kube, node, warnings, metrics)
            built["nodefeature"] = NodeFeatureSink(kube, config.node_name or "", config.namespace, config.pod_name)
        self.selected: list[Sink] = [built[name] for name in config.sinks]
        # Only where an earlier mode could have written: a NodeFeature in our known namespace (the
        # pod's, or --namespace), never a guess at "default" with RBAC this mode does not ship.
        retirable = ["file", "nodefeature"] if config.namespace_known else ["file"]
        self.retiring: list[Retirable] = [built[n] for n in retirable if n in built and n not in config.sinks]
        metrics.initialise_sinks([s.name for s in self.selected])

    @property
    def writes_node(self) -> bool:
        return any(not s.feeds_nfd for s in self.selected)

    def check(self) -> None:
        for sink in self.selected:
            check = getattr(sink, "check", None)
            if check is not None:
                check()

    def retired(self, sink: Retirable) -> None:
        """``sink`` is empty of our labels: not retried."""
        self.retiring.remove(sink)
