"""HorizontalPodAutoscalers that scale on GPU metrics: what the API server refuses and what
nothing provides. Pure.

Three ways the usual recipe breaks: ``autoscaling/v2beta2`` (and ``v2beta1``) were removed in
Kubernetes 1.26 (1.25); a target such as ``averageValue: 80%`` is not a quantity; and no
component exports a per-pod ``gpu_utilization`` by itself: an adapter (prometheus-adapter) has to
map a GPU exporter's series (dcgm-exporter's ``DCGM_FI_DEV_GPU_UTIL``) to pods. mig-labeler's own
``mig_labeler_gpu_utilization_ratio`` is per GPU, not per pod, so it cannot drive an HPA.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mig_labeler.check.model import ERROR, WARNING, Problem

REMOVED = {"autoscaling/v2beta2": "1.26", "autoscaling/v2beta1": "1.25"}
GPU_METRIC = re.compile(r"gpu|dcgm", re.I)
QUANTITY = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


@dataclass
class AutoscalerResult:
    kind: str
    name: str
    source: str
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(p.severity == ERROR for p in self.problems)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "source": self.source, "ok": self.ok,
                "problems": [p.as_json() for p in self.problems]}


def is_autoscaler(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "HorizontalPodAutoscaler"


def check_autoscaler(obj: Mapping[str, Any], source: str) -> AutoscalerResult | None:
    """Problems of an HPA that names a GPU metric; None for one that does not (not ours to judge)."""
    metrics = (obj.get("spec") or {}).get("metrics") or []
    gpu = [(i, m) for i, m in enumerate(metrics) if isinstance(m, Mapping) and GPU_METRIC.search(_metric_name(m))]
    if not gpu:
        return None
    result = AutoscalerResult("HorizontalPodAutoscaler", str((obj.get("metadata") or {}).get("name") or "?"), source)
    version = str(obj.get("apiVersion") or "")
    if version in REMOVED:
        result.problems.append(Problem("removed-api-version", ERROR, "apiVersion",
                                       f"{version} was removed in Kubernetes {REMOVED[version]}; the API server "
                                       "refuses it", "use apiVersion: autoscaling/v2 (same fields)"))
    for i, metric in gpu:
        kind = str(metric.get("type") or "")
        block = metric.get(kind[:1].lower() + kind[1:]) if kind else None
        target = (block or {}).get("target") or {} if isinstance(block, Mapping) else {}
        at = f"spec.metrics[{i}].{kind[:1].lower() + kind[1:]}.target"
        for field_name in ("averageValue", "value"):
            raw = target.get(field_name)
            if raw is not None and not QUANTITY.match(str(raw).strip()):
                number = str(raw).strip().rstrip("%")
                result.problems.append(Problem("invalid-quantity", ERROR, f"{at}.{field_name}",
                                               f"{raw!r} is not a quantity; the API server refuses it",
                                               f"{field_name}: \"{number}\" (the metric's own unit: for a "
                                               "utilization in percent, the number of percent)"))
        name = _metric_name(metric)
        result.problems.append(Problem("gpu-metric-needs-an-adapter", WARNING, f"spec.metrics[{i}]",
                                       f"nothing exports the {kind or 'custom'} metric {name!r} by itself",
                                       "run dcgm-exporter and map its DCGM_FI_DEV_GPU_UTIL per pod through "
                                       f"prometheus-adapter under the name {name}; mig-labeler's "
                                       "mig_labeler_gpu_utilization_ratio is per GPU, not per pod"))
    return result


def _metric_name(metric: Mapping[str, Any]) -> str:
    kind = str(metric.get("type") or "")
    block = metric.get(kind[:1].lower() + kind[1:]) if kind else None
    if not isinstance(block, Mapping):
        return ""
    inner = block.get("metric")
    return str(inner.get("name") or "") if isinstance(inner, Mapping) else str(block.get("name") or "")
