"""The label keys and values of a node set, and its nodes grouped by identical GPU labels and
resources, built once for many workloads. Pure.

Real fleets are node pools whose nodes carry the same GPU labels: checking each workload against
each group instead of each node makes the cost follow the input (10,000 workloads against 5,000
nodes in a few pools: make bench), not workloads × nodes.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from mig_labeler.check.model import Node


@dataclass(frozen=True, slots=True)
class NodeGroup:
    node: Node  # the first node of the group: its labels and resources stand for all
    names: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.names)


class NodeIndex:
    """``keys``: the label keys the workloads select on (``selection.selected_keys``); nodes that
    agree on those and on their GPU resources are one group, whatever their other labels (a
    hostname, a zone). None: every label counts."""

    def __init__(self, nodes: Sequence[Node], keys: Collection[str] | None = None) -> None:
        self.nodes = nodes
        self.values: dict[str, set[str]] = {}
        members: dict[tuple[frozenset, frozenset], list[Node]] = {}
        for node in nodes:
            for key, value in node.labels.items():
                self.values.setdefault(key, set()).add(value)
            labels = node.labels.items() if keys is None else ((k, v) for k, v in node.labels.items() if k in keys)
            members.setdefault((frozenset(labels), frozenset(node.resources.items())), []).append(node)
        self.groups = [NodeGroup(group[0], tuple(n.name for n in group)) for group in members.values()]
