"""What a Node object says, as plain values: its labels, which label keys each field manager
owns (``metadata.managedFields``), and the labels nfd-master manages.

Owns: ``node_state`` (a Node as the API serves it in, a frozen ``NodeState`` out). Pure: it never
talks to the API server (that is ``kube``'s job) and knows nothing about GPUs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FIELD_MANAGER = "mig-labeler"


@dataclass(frozen=True, slots=True)
class LabelClaim:
    """Another field manager's claim on label keys: one ``metadata.managedFields`` entry."""

    index: int  # position in metadata.managedFields, as the JSON patch addresses it
    manager: str
    operation: str
    keys: frozenset[str]


@dataclass(frozen=True, slots=True)
class NodeState:
    name: str
    uid: str
    resource_version: str
    labels: dict[str, str]
    owned: frozenset[str]  # label keys our field manager applied
    claims: tuple[LabelClaim, ...] = ()  # every other manager's label keys
    nfd_labels: frozenset[str] = frozenset()  # labels nfd-master set (its feature-labels annotation)

    @property
    def shared(self) -> frozenset[str]:
        """Keys we own that another manager owns too: dropping them would not remove them."""
        return frozenset().union(*(c.keys for c in self.claims)) & self.owned

    def owners(self, key: str) -> list[str]:
        """The other managers that own ``key``."""
        return sorted({c.manager for c in self.claims if key in c.keys})


NFD_FEATURE_LABELS = "nfd.node.kubernetes.io/feature-labels"  # nfd-master: the labels it manages, comma-separated


def _nfd_label_name(name: str) -> str:
    """nfd-master drops the prefix of labels in its default namespace from the annotation."""
    return name if "/" in name else f"feature.node.kubernetes.io/{name}"


def node_state(obj: Mapping[str, Any], field_manager: str = FIELD_MANAGER) -> NodeState:
    meta = obj.get("metadata") or {}
    owned: set[str] = set()
    claims: list[LabelClaim] = []
    for index, entry in enumerate(meta.get("managedFields") or []):
        labels = ((entry.get("fieldsV1") or {}).get("f:metadata") or {}).get("f:labels") or {}
        keys = frozenset(k.removeprefix("f:") for k in labels if k.startswith("f:"))
        if entry.get("manager") == field_manager and entry.get("operation") == "Apply":
            owned |= keys
        elif keys:
            claims.append(LabelClaim(index, str(entry.get("manager")), str(entry.get("operation")), keys))
    nfd = str((meta.get("annotations") or {}).get(NFD_FEATURE_LABELS) or "")
    return NodeState(meta.get("name", ""), meta.get("uid", ""), str(meta.get("resourceVersion", "")),
                     dict(meta.get("labels") or {}), frozenset(owned), tuple(claims),
                     frozenset(_nfd_label_name(n) for n in nfd.split(",") if n))

