"""The node sink: server-side apply of our label set to the Node (the default sink).

Owns: planning against the live Node (``plan_update``), taking other managers' claims off keys we
adopt or drop (``KubeClient.release_claims``) so that a drop really removes them, the apply
itself, what the API server's answer shows happened, and the warning for labels that stay
because another manager owns them too. Zero writes when the Node already holds our labels.
The Node it plans against comes from the loop (the watch cache, the pass's GET, or a fresh GET
on a retry), so a pass costs no extra request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from mig_labeler.errors import ApiConflict, ApiError
from mig_labeler.gate import pause
from mig_labeler.kube import KubeClient
from mig_labeler.label_names import ownable
from mig_labeler.node_state import NodeState
from mig_labeler.sinks import SinkResult
from mig_labeler.sinks.plan import LabelPlan, observed_changes, plan_update

log = logging.getLogger("mig_labeler")


class NodeSink:
    name = "node"
    feeds_nfd = False

    def __init__(self, kube: KubeClient, current: Callable[[], NodeState], remember: Callable[[NodeState], object],
                 warn_once: Callable[[str], None], count_error: Callable[[ApiError], None]) -> None:
        """``current``: the freshest Node the loop knows, else one GET; ``remember``: hand back
        each Node state the server answers with."""
        self.kube = kube
        self.current = current
        self.remember = remember
        self.warn_once = warn_once
        self.count_error = count_error

    def publish(self, labels: Mapping[str, str]) -> SinkResult:
        node = self.current()
        plan = plan_update(node.labels, node.owned, labels, node.shared)
        paused = pause(node.labels)  # it may have begun while NVML was read: finish, publish nothing
        if paused is not None:
            return SinkResult(self.name, plan, held=paused.message)
        if plan.empty:
            return SinkResult(self.name, plan)
        self._take_sole_ownership(node, plan)
        after = self.kube.apply_labels(node.name, labels)
        self.remember(after)
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
            self.count_error(e)
            self.warn_once(f"could not take sole ownership of {len(keys)} labels on node {node.name} ({e}); "
                           "labels that other managers also own will stay when mig-labeler drops them")
            return
        if released is not None:
            self.remember(released)

    @staticmethod
    def _warn_stuck(plan: LabelPlan, after: NodeState) -> None:
        stuck = [k for k in plan.remove if k in after.labels]
        if stuck:
            named = ", ".join(f"{k} ({', '.join(after.owners(k)) or 'unknown'})" for k in stuck)
            log.warning("%d labels mig-labeler dropped are still on node %s, because other managers also own "
                        "them: %s", len(stuck), after.name, named)
