"""``check``'s output: text lines for a person, JSON with stable field names for tools. Pure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from mig_labeler.check.autoscalers import AutoscalerResult
from mig_labeler.check.model import Node, Result


def render(results: Sequence[Result], skipped: Sequence[str], nodes: Sequence[Node], output: str,
           autoscalers: Sequence[AutoscalerResult] = (), list_nodes: bool = False) -> str:
    """``list_nodes``: JSON names the matching nodes of each workload too (``--list-nodes``)."""
    if output == "json":
        return _json(results, skipped, nodes, autoscalers, list_nodes)
    lines = []
    for r in results:
        w = r.workload
        head = f"{w.kind}/{w.name} ({w.source})"
        if r.fits:
            names = r.nodes_matching
            more = f" and {len(names) - SHOWN} more (-o json --list-nodes lists them)" if len(names) > SHOWN else ""
            lines.append(f"{head}: fits {len(names)} of {len(nodes)} nodes: {', '.join(names[:SHOWN])}{more}")
        else:
            lines.append(f"{head}: fits none of {len(nodes)} nodes")
        for p in r.problems:
            lines.append(f"  {p.severity} {p.code} at {p.path}: {p.message}")
            if p.suggestion:
                lines.append(f"    fix: {p.suggestion}")
        # Nodes left out, each with its reason, unless a selector error already says it for all.
        explained = any(p.severity == "error" and p.code in SELECTION_ERRORS for p in r.problems)
        for group, why in ([] if explained else r.excluded[:10]):
            names = group.names
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            lines.append(f"  excluded {shown}: {why}")
        if len(r.excluded) > 10 and not explained:
            lines.append(f"  excluded {len(r.excluded) - 10} more groups of nodes (-o json lists them)")
    for a in autoscalers:
        lines.append(f"{a.kind}/{a.name} ({a.source}): {'ok' if a.ok else 'the API server would refuse it'}")
        for p in a.problems:
            lines.append(f"  {p.severity} {p.code} at {p.path}: {p.message}")
            if p.suggestion:
                lines.append(f"    fix: {p.suggestion}")
    for s in skipped:
        lines.append(f"skipped {s}: no pod template")
    return "\n".join(lines) + "\n"


SHOWN = 20  # node names per line of text
SELECTION_ERRORS = ("invalid-label-key", "invalid-label-value", "no-such-label-key", "no-such-label-value")


def _json(results: Sequence[Result], skipped: Sequence[str], nodes: Sequence[Node],
          autoscalers: Sequence[AutoscalerResult], list_nodes: bool) -> str:
    """Compact, and growing with the input rather than with workloads × nodes: each workload names
    the groups of alike nodes it matches (``node_groups`` carry the names), and its own list of
    node names only when asked. 50,000 workloads × 1,000 nodes: ``make bench`` section 11."""
    ids: dict[int, int] = {}
    groups: list[Any] = []

    def group_id(group: Any) -> int:
        if id(group) not in ids:
            ids[id(group)] = len(groups)
            groups.append(group)
        return ids[id(group)]

    workloads = [r.as_json(group_id, list_nodes) for r in results]
    doc = {"nodes": [n.name for n in nodes],
           "node_groups": [{"id": i, "size": g.size, "nodes": list(g.names)} for i, g in enumerate(groups)],
           "workloads": workloads, "skipped": list(skipped), "autoscalers": [a.as_json() for a in autoscalers]}
    return json.dumps(doc, separators=(",", ":")) + "\n"
