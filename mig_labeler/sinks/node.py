"""The node sink: server-side apply of our label set to the Node (the default sink).

Owns: planning against the live Node (``plan_update``), taking other managers' claims off keys we
adopt or drop (``KubeClient.release_claims``) so that a drop really removes them, the apply
itself, what the API server's answer shows happened, and the warning for labels that stay
because another manager owns them too. Zero writes when the Node already holds our labels.
The Node it plans against comes from the daemon (the watch cache, the pass's GET, or a fresh GET
on a retry), so a pass costs no extra request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from mig_labeler.errors import ApiConflict, ApiError
from mig_labeler.gpu_operator import pause
from mig_labeler.kube.client import KubeClient
from mig_labeler.kube.node_state import NodeState
from mig_labeler.label_names import ownable
from mig_labeler.sinks import SinkResult
from mig_labeler.sinks.plan import LabelPlan, observed_changes, plan_update

log = logging.getLogger("mig_labeler")


class NodeView(Protocol):
    """The freshest Node the daemon knows (``daemon.our_node.OurNode``)."""

    def for_publish(self) -> NodeState:
        """The watched Node, else the one this pass read, else one GET."""
        ...

    def remember(self, node: NodeState) -> object:
        """Hand back a Node state the server answered with."""
        ...


class Warnings(Protocol):
    """Warnings said once (``daemon.reporting.Warnings``)."""

    def once(self, message: str) -> None: ...


class ErrorCounter(Protocol):
    """Every failed API request counts (``daemon.metrics.Metrics``)."""

    def count_api_error(self, error: ApiError) -> None: ...


class NodeSink:
    name = "node"
    feeds_nfd = False

    def __init__(self, kube: KubeClient, node: NodeView, warnings: Warnings, errors: ErrorCounter) -> None:
        self.kube = kube
        self.node = node
        self.warnings = warnings
        self.errors = errors

    def publish(self, labels: Mapping[str, str]) -> SinkResult:
        node = self.node.for_publish()
        plan = plan_update(node.labels, node.owned, labels, node.shared)
        paused = pause(node.labels)  # it may have begun while NVML was read: finish, publish nothing
        if paused is not None:
            return SinkResult(self.name, plan, held=paused.message)
        if plan.empty:
            return SinkResult(self.name, plan)
        self._take_sole_ownership(node, plan)
        after = self.kube.apply_labels(node.name, labels)
        self.node.remember(after)
        adopted = {k for k in plan.adopt if k in after.owned and not after.owners(k)}
        self._warn_stuck(plan, after)
        return SinkResult(self.name, plan, observed_changes(plan, node.labels, after.labels, adopted))

    def _take_sole_ownership(self, node: NodeState, plan: LabelPlan) -> None:
        """Before our apply: take other managers' claims off the keys we adopt or drop, so that
        a drop removes the key (see ``KubeClient.release_claims``). A conflict retries the pass;
        a refusal (an admission policy, say) is logged and the apply goes ahead anyway."""
        # Only keys mig-labeler may own at all (the set the admission policy allows): never
        # mig-manager's mig.config*, the operator's gpu.deploy.* or anything outside nvidia.com/.
        keys = frozenset(k for k in (*plan.adopt, *plan.remove) if ownable(k))
        try:
            released = self.kube.release_claims(node, keys)
        except ApiConflict:
            raise
        except ApiError as e:
            self.errors.count_api_error(e)
            self.warnings.once(f"could not take sole ownership of {len(keys)} labels on node {node.name} ({e}); "
                           "labels that other managers also own will stay when mig-labeler drops them")
            return
        if released is not None:
            self.node.remember(released)

    @staticmethod
    def _warn_stuck(plan: LabelPlan, after: NodeState) -> None:
        stuck = [k for k in plan.remove if k in after.labels]
        if stuck:
            named = ", ".join(f"{k} ({', '.join(after.owners(k)) or 'unknown'})" for k in stuck)
            log.warning("%d labels mig-labeler dropped are still on node %s, because other managers also own "
                        "them: %s", len(stuck), after.name, named)
