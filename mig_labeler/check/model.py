"""The data ``check`` works on and answers with: nodes, workloads, problems, results. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ERROR, WARNING = "error", "warning"


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    labels: Mapping[str, str]
    resources: Mapping[str, int]  # GPU extended resources advertised (allocatable)


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
    nodes_matching: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return bool(self.nodes_matching) and not any(p.severity == ERROR for p in self.problems)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.workload.name, "kind": self.workload.kind, "source": self.workload.source,
                "fits": self.fits, "nodes_matching": self.nodes_matching,
                "problems": [p.as_json() for p in self.problems]}
