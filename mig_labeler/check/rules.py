"""``check``: one workload against a node set, every problem with its true cause in one run. Pure.

The selection (nodeSelector, required node affinity) is evaluated per group of identical nodes
(``index``). When it places the pod nowhere, the GPU request is still checked, against every
node, so that a wrong resource shows in the same run as a wrong label instead of after it is
fixed; nodes the selection leaves out are named with the requirement that failed.
"""

from __future__ import annotations

from collections.abc import Sequence

from mig_labeler.check.index import NodeGroup, NodeIndex
from mig_labeler.check.model import ERROR, WARNING, Node, Problem, Result, Workload
from mig_labeler.check.resources import GPU_TAINT, gpu_demand, gpu_resource_problems, tolerates_gpu_taint
from mig_labeler.check.selection import (
    affinity_problems,
    exclusion_reason,
    required_terms,
    selector_matches,
    selector_problems,
    terms_match,
)


def check(workload: Workload, nodes: Sequence[Node] | NodeIndex) -> Result:
    index = nodes if isinstance(nodes, NodeIndex) else NodeIndex(nodes)
    result = Result(workload)
    spec, at = workload.pod_spec, workload.spec_path
    selector = spec.get("nodeSelector") or {}
    terms = required_terms(spec)
    result.problems += selector_problems(selector, f"{at}.nodeSelector", index)
    required = f"{at}.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
    result.problems += affinity_problems(terms, required, index)
    wanted, found = gpu_demand(spec, at)
    result.problems += found
    placed: list[NodeGroup] = []
    left_out: list[NodeGroup] = []
    for group in index.groups:  # one pass: membership tests on groups would compare their node lists
        chosen = selector_matches(selector, group.node.labels) and terms_match(terms, group.node.labels)
        (placed if chosen else left_out).append(group)
    if not placed and index.nodes and not any(p.severity == ERROR for p in result.problems):
        result.problems.append(Problem("selector-excludes-all-nodes", ERROR, f"{at}.nodeSelector",
                                       f"each part of the node selection matches some of the {len(index.nodes)} "
                                       "nodes, but together they rule out every one",
                                       "drop or relax one of the requirements (see why each node is excluded)"))
    considered = placed or index.groups  # nothing placed: the resources against every node, in the same run
    result.problems += gpu_resource_problems(wanted, [g.node for g in considered], at,
                                             sum(g.size for g in considered), selected=bool(placed))
    if wanted and not tolerates_gpu_taint(spec):
        result.problems.append(Problem("missing-gpu-toleration", WARNING, f"{at}.tolerations",
                                       f"no toleration for the {GPU_TAINT} taint: GPU nodes tainted with it "
                                       "(as the GPU Operator and most clouds do) will not take this pod",
                                       f"add tolerations: [{{key: {GPU_TAINT}, operator: Exists, "
                                       "effect: NoSchedule}]"))
    result.excluded = [(g, exclusion_reason(selector, terms, g.node.labels)) for g in left_out]
    result.matching = [g for g in placed if all(g.node.resources.get(r, 0) >= q for r, q in wanted.items())]
    return result
