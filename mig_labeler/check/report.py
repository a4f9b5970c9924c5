"""``check``'s output: text lines for a person, JSON with stable field names for tools. Pure."""

from __future__ import annotations

import json
from collections.abc import Sequence

from mig_labeler.check.model import Node, Result


def render(results: Sequence[Result], skipped: Sequence[str], nodes: Sequence[Node], output: str) -> str:
    if output == "json":
        doc = {"nodes": [n.name for n in nodes], "workloads": [r.as_json() for r in results], "skipped": list(skipped)}
        return json.dumps(doc, indent=2) + "\n"
    lines = []
    for r in results:
        w = r.workload
        head = f"{w.kind}/{w.name} ({w.source})"
        if r.fits:
            names = ", ".join(r.nodes_matching)
            lines.append(f"{head}: fits {len(r.nodes_matching)} of {len(nodes)} nodes: {names}")
        else:
            lines.append(f"{head}: fits none of {len(nodes)} nodes")
        for p in r.problems:
            lines.append(f"  {p.severity} {p.code} at {p.path}: {p.message}")
            if p.suggestion:
                lines.append(f"    fix: {p.suggestion}")
    for s in skipped:
        lines.append(f"skipped {s}: no pod template")
    return "\n".join(lines) + "\n"
