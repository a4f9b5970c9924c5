"""The data ``check`` works on and answers with: nodes, workloads, problems, results. Pure."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

ERROR, WARNING = "error", "warning"


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    labels: Mapping[str, str]
    resources: Mapping[str, int]  # GPU extended resources advertised (allocatable)
    dra: bool = False  # GPUs allocated through DRA: no device plugin advertises any (docs/dra.md)


@dataclass(frozen=True, slots=True)
class Problem:
    code: str
    severity: str
    path: str
    message: str
    suggestion: str = ""

    def as_json(self) -> dict[str, str]:
        return {"code": self.code, "severity": self.severity, "path": self.path, "message": self.message,
                "suggestion": self.suggestion}


@dataclass(frozen=True, slots=True)
class Workload:
    kind: str
    name: str
    source: str  # file and document index, for messages
    spec_path: str  # where the pod spec is inside the object, e.g. spec.template.spec
    pod_spec: Mapping[str, Any]


@dataclass
class Result:
    workload: Workload
    matching: list[Any] = field(default_factory=list)  # index.NodeGroup: placed, with the GPUs it needs
    problems: list[Problem] = field(default_factory=list)
    excluded: list[tuple[Any, str]] = field(default_factory=list)  # (index.NodeGroup, why the selection leaves it)

    @property
    def nodes_matching(self) -> list[str]:
        return [name for group in self.matching for name in group.names]

    @property
    def matching_count(self) -> int:
        return sum(group.size for group in self.matching)

    @property
    def fits(self) -> bool:
        return bool(self.matching) and not any(p.severity == ERROR for p in self.problems)

    def as_json(self, group_id: Callable[[Any], int], list_nodes: bool) -> dict[str, Any]:
        """Output that grows with the input, not with workloads × nodes: groups of identical nodes
        by id (``node_groups`` at the top level); node names too when asked (``--list-nodes``)."""
        doc: dict[str, Any] = {"name": self.workload.name, "kind": self.workload.kind, "source": self.workload.source,
                               "fits": self.fits}
        if list_nodes:
            doc["nodes_matching"] = self.nodes_matching
        doc |= {"nodes_matching_count": self.matching_count,
                "groups_matching": [group_id(g) for g in self.matching],
                "problems": [p.as_json() for p in self.problems],
                "excluded": [{"group": group_id(g), "reason": why} for g, why in self.excluded]}
        return doc
