"""Kubernetes Events on our Node, for the ``EventReporter``.

Owns: posting one Event about the Node we know (none while no Node is known yet: the reporter
keeps it), and what a failure to post means: counted, never a failed pass; kept for another
attempt (``EventNotPosted``), except without the right to create Events: one warning.
``NoEvents`` is the sender when there is no cluster (the file sink alone).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mig_labeler.daemon.events import EventNotPosted
from mig_labeler.daemon.metrics import Metrics
from mig_labeler.daemon.our_node import OurNode
from mig_labeler.daemon.reporting import Warnings
from mig_labeler.errors import ApiError
from mig_labeler.kube.client import KubeClient

log = logging.getLogger("mig_labeler")


class NodeEvents:
    def __init__(self, kube: KubeClient, node: OurNode, metrics: Metrics, warnings: Warnings,
                 clock: Callable[[], float]) -> None:
        self.kube = kube
        self.node = node
        self.metrics = metrics
        self.warnings = warnings
        self.clock = clock

    def post(self, reason: str, message: str, event_type: str) -> bool:
        node = self.node.latest()
        if node is None:
            return False
        try:
            self.kube.post_event(node, reason, message, event_type, self.clock())
        except ApiError as e:  # never fails the pass: counted, and kept for another attempt
            self.metrics.count_api_error(e)
            if e.status != 403:
                raise EventNotPosted(str(e)) from None
            self.warnings.once(f"cannot post Events, labels are still published: {e}")
        return True


class NoEvents:
    """No cluster, no Events: each counts as posted."""

    def post(self, reason: str, message: str, event_type: str) -> bool:
        return True
