"""Finding pod templates in Kubernetes objects (``List`` objects unpacked). Pure."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mig_labeler.check.model import Workload

POD_SPEC_PATHS = {"Pod": ("spec",), "PodTemplate": ("template", "spec"),
                  "CronJob": ("spec", "jobTemplate", "spec", "template", "spec")}


def workloads(doc: Any, source: str) -> tuple[list[Workload], list[str]]:
    """Every pod template in one parsed document (``List`` objects unpacked), and the objects that
    hold none (reported as skipped)."""
    found: list[Workload] = []
    skipped: list[str] = []
    for obj in objects(doc):
        kind = str(obj.get("kind") or "?")
        name = str((obj.get("metadata") or {}).get("name") or "?")
        path = POD_SPEC_PATHS.get(kind, ("spec", "template", "spec"))
        spec = dig(obj, path)
        if isinstance(spec, Mapping) and isinstance(spec.get("containers"), list):
            found.append(Workload(kind, name, source, ".".join(path), spec))
        else:
            skipped.append(f"{kind}/{name}")
    return found, skipped


def objects(doc: Any) -> Iterator[Mapping[str, Any]]:
    if not isinstance(doc, Mapping):
        return
    if str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
        for item in doc["items"]:
            yield from objects(item)
    else:
        yield doc


def dig(obj: Any, path: Sequence[str]) -> Any:
    """``obj[path[0]][path[1]]...``, or None where a step is not a mapping."""
    for part in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(part)
    return obj
