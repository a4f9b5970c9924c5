"""What a Node object says, as plain values: its labels, which label keys each field manager
owns (``metadata.managedFields``), and the labels nfd-master manages.

Owns: ``node_state`` (a Node as the API serves it in, a frozen ``NodeState`` or ``NotANode`` out). Pure: it never
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


class NotANode(ValueError):
    """The object is not a Node as the API serves one (a proxy's answer, a truncated body)."""


def node_state(obj: Any, field_manager: str = FIELD_MANAGER) -> NodeState:
    """Raises ``NotANode`` naming what is wrong when ``obj`` does not have a Node's shape."""
    if not isinstance(obj, Mapping):
        raise NotANode(f"a JSON {type(obj).__name__}, not a Node object")
    if obj.get("kind", "Node") != "Node":
        raise NotANode(f"a {str(obj.get('kind'))[:40]!r} object, not a Node")
    meta = _mapping(obj.get("metadata"), "metadata")
    name, labels = meta.get("name"), _mapping(meta.get("labels"), "metadata.labels")
    if not isinstance(name, str) or not name:
        raise NotANode("a Node without metadata.name")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise NotANode("metadata.labels holds values that are not strings")
    entries = meta.get("managedFields") or []
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise NotANode("metadata.managedFields is not a list of entries")
    owned: set[str] = set()
    claims: list[LabelClaim] = []
    for index, entry in enumerate(entries):
        fields = _mapping(_mapping(entry.get("fieldsV1"), "fieldsV1").get("f:metadata"), "fieldsV1")
        keys = frozenset(k.removeprefix("f:") for k in _mapping(fields.get("f:labels"), "fieldsV1")
                         if isinstance(k, str) and k.startswith("f:"))
        if entry.get("manager") == field_manager and entry.get("operation") == "Apply":
            owned |= keys
        elif keys:
            claims.append(LabelClaim(index, str(entry.get("manager")), str(entry.get("operation")), keys))
    nfd = str(_mapping(meta.get("annotations"), "metadata.annotations").get(NFD_FEATURE_LABELS) or "")
    return NodeState(name, str(meta.get("uid") or ""), str(meta.get("resourceVersion") or ""), dict(labels),
                     frozenset(owned), tuple(claims), frozenset(_nfd_label_name(n) for n in nfd.split(",") if n))


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise NotANode(f"{where} is a JSON {type(value).__name__}, not an object")
    return value
