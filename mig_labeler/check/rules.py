"""``check``: one workload against a node set, every problem with its true cause. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from mig_labeler.check.index import NodeIndex
from mig_labeler.check.model import ERROR, WARNING, Node, Problem, Result, Workload
from mig_labeler.check.resources import GPU_TAINT, demand, resource_problems, tolerates_gpu_taint
from mig_labeler.check.selection import (
    affinity_problems,
    required_terms,
    selector_matches,
    selector_problems,
    terms_match,
)


def check(workload: Workload, nodes: Sequence[Node] | NodeIndex) -> Result:
    index = nodes if isinstance(nodes, NodeIndex) else NodeIndex(nodes)
    nodes = index.nodes
    result = Result(workload)
    spec, at = workload.pod_spec, workload.spec_path
    selector = spec.get("nodeSelector") or {}
    terms = required_terms(spec)
    result.problems += selector_problems(selector, f"{at}.nodeSelector", index)
    required = f"{at}.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
    result.problems += affinity_problems(terms, required, index)
    demand, resource_problems = demand(spec, at)
    result.problems += resource_problems
    placed = [n for n in nodes if selector_matches(selector, n.labels) and terms_match(terms, n.labels)]
    if not placed and not any(p.severity == ERROR for p in result.problems):
        result.problems.append(Problem("selector-excludes-all-nodes", ERROR, f"{at}.nodeSelector",
                                       f"each part of the node selection matches some of the {len(nodes)} nodes, "
                                       "but together they rule out every one",
                                       "drop or relax one of the requirements"))
    result.problems += resource_problems(demand, placed, at)
    if demand and not tolerates_gpu_taint(spec):
        result.problems.append(Problem("missing-gpu-toleration", WARNING, f"{at}.tolerations",
                                       f"no toleration for the {GPU_TAINT} taint: GPU nodes tainted with it "
                                       "(as the GPU Operator and most clouds do) will not take this pod",
                                       f"add tolerations: [{{key: {GPU_TAINT}, operator: Exists, "
                                       "effect: NoSchedule}]"))
    result.nodes_matching = [n.name for n in placed if all(n.resources.get(r, 0) >= q for r, q in demand.items())]
    return result
