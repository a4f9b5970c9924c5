"""The fake API server's stored objects and their wire form: Nodes and NodeFeatures with field
ownership per manager, a request log entry, an injected fault, the ``Status`` body of a failure,
and the small helpers (label selectors, ownership copies) the server and its handler share."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

# Resources named by their path segment (namespaced ones, and the cluster-scoped custom ones).
NAMESPACED = ("events", "nodefeatures", "pods", "configmaps", "clusterpolicies", "resourceslices")


@dataclass
class Fault:
    status: int  # 0 = drop the connection
    retry_after: float | None = None
    method: str | None = None
    hang: str = ""  # "silent": never answer; "partial": headers and half the body, then nothing
    answer: tuple[bytes, str] | None = None  # 200 with this body and content type: a proxy, a login page


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str
    status: int
    body: Any = None
    user_agent: str = ""
    creates: bool = False  # an apply that created the object: authorized as create too (API concepts, apply)
    changes_owners: bool = False  # an update that changed ownerReferences: authorized as delete too

    @property
    def verbs(self) -> set[str]:
        """Every RBAC verb the request was authorized with."""
        return {self.verb} | ({"create"} if self.creates else set()) | ({"delete"} if self.changes_owners else set())

    @property
    def verb(self) -> str:
        """The Kubernetes RBAC verb this request needs."""
        if self.method == "GET":
            collection = self.path.rstrip("/").rsplit("/", 1)[-1] in ("nodes", *NAMESPACED)
            return "watch" if self.query.get("watch") == ["true"] else ("list" if collection else "get")
        return {"PATCH": "patch", "PUT": "update", "POST": "create", "DELETE": "delete"}[self.method]

    @property
    def resource(self) -> str:
        for resource in NAMESPACED:
            if f"/{resource}" in self.path:
                return resource
        return "discovery" if self.path.startswith("/apis/") else "nodes"


@dataclass
class StoredNode:
    name: str
    labels: dict[str, str]
    uid: str
    resource_version: int
    annotations: dict[str, str] = field(default_factory=dict)
    owners: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (manager, operation) → label keys
    allocatable: dict[str, str] = field(default_factory=dict)  # status.allocatable, as the kubelet reports it
    times: dict[tuple[str, str], float] = field(default_factory=dict)  # managedFields time per entry

    def managed_entries(self) -> list[tuple[tuple[str, str], set[str]]]:
        """managedFields in the order served: entries that own no label are left out."""
        return [(who, keys) for who, keys in sorted(self.owners.items()) if keys]

    def others(self, who: tuple[str, str]) -> set[str]:
        return set().union(*(keys for w, keys in self.owners.items() if w != who))

    def to_json(self) -> dict[str, Any]:
        managed = [
            {"manager": m, "operation": op, "apiVersion": "v1", "time": _rfc3339(self.times.get((m, op), 0.0)),
             "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {f"f:{k}": {} for k in sorted(keys)}}}}
            for (m, op), keys in self.managed_entries()
        ]
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.name, "uid": self.uid, "resourceVersion": str(self.resource_version),
                             "labels": dict(self.labels), "annotations": dict(self.annotations),
                             "managedFields": managed},
                "spec": {}, "status": {"allocatable": dict(self.allocatable)}}


NFD_GROUP_VERSION = "nfd.k8s-sigs.io/v1alpha1"
NFD_NODE_NAME = "nfd.node.kubernetes.io/node-name"
NFD_FEATURE_LABELS = "nfd.node.kubernetes.io/feature-labels"
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


@dataclass
class StoredObject:
    """A namespaced custom object (a NodeFeature) under server-side apply: each field a manager
    applied is owned by it; a field it applied before and now leaves out is removed unless another
    manager still owns it; a field owned by another manager with a different value conflicts
    unless forced. Fields are ``metadata.labels.K``, ``metadata.ownerReferences``, ``spec.labels.K``
    and ``spec.features``."""

    namespace: str
    name: str
    uid: str
    resource_version: int
    fields: dict[str, Any] = field(default_factory=dict)
    owners: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        labels = {f.split(".", 2)[2]: v for f, v in self.fields.items() if f.startswith("metadata.labels.")}
        spec_labels = {f.split(".", 2)[2]: v for f, v in self.fields.items() if f.startswith("spec.labels.")}
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace, "uid": self.uid,
                                    "resourceVersion": str(self.resource_version), "labels": labels,
                                    "managedFields": [{"manager": m, "operation": op, "apiVersion": NFD_GROUP_VERSION,
                                                       "fieldsType": "FieldsV1", "fieldsV1": _fields_v1(keys)}
                                                      for (m, op), keys in sorted(self.owners.items()) if keys]}
        if "metadata.ownerReferences" in self.fields:
            metadata["ownerReferences"] = self.fields["metadata.ownerReferences"]
        spec: dict[str, Any] = {"labels": spec_labels}
        if "spec.features" in self.fields:
            spec["features"] = self.fields["spec.features"]
        return {"apiVersion": NFD_GROUP_VERSION, "kind": "NodeFeature", "metadata": metadata, "spec": spec}


def _rfc3339(when: float) -> str:
    """metav1.Time as the API server serves it: whole seconds, UTC, ``Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def _fields_v1(keys: set[str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key in sorted(keys):
        parts = key.split(".", 2)
        node = tree.setdefault(f"f:{parts[0]}", {})
        node = node.setdefault(f"f:{parts[1]}", {})
        if len(parts) == 3:
            node[f"f:{parts[2]}"] = {}
    return tree


def _applied_fields(body: dict[str, Any]) -> dict[str, Any]:
    meta, spec = body.get("metadata") or {}, body.get("spec") or {}
    fields: dict[str, Any] = {f"metadata.labels.{k}": str(v) for k, v in (meta.get("labels") or {}).items()}
    fields |= {f"spec.labels.{k}": str(v) for k, v in (spec.get("labels") or {}).items()}
    if "ownerReferences" in meta:
        fields["metadata.ownerReferences"] = meta["ownerReferences"]
    if "features" in spec:
        fields["spec.features"] = spec["features"]
    return fields


class ApiFailure(Exception):
    def __init__(self, status: int, reason: str, message: str, name: str | None = None,
                 kind: str | None = None, group: str | None = None) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message
        self.details = {"name": name, **({"group": group} if group else {}), "kind": kind} if name else {}


def _selected(selector: str, labels: dict[str, str]) -> bool:
    """Equality-based label selectors (``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``), comma-ANDed."""
    for part in filter(None, (p.strip() for p in selector.split(","))):
        if "!=" in part:
            key, value = part.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in part:
            key, value = part.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif part.startswith("!"):
            if part[1:] in labels:
                return False
        elif part not in labels:
            return False
    return True


def _copy(owners: dict[tuple[str, str], set[str]]) -> dict[tuple[str, str], set[str]]:
    return {who: set(keys) for who, keys in owners.items()}


def _nonempty(owners: dict[tuple[str, str], set[str]]) -> dict[tuple[str, str], set[str]]:
    return {who: keys for who, keys in owners.items() if keys}


def _unescape(pointer: str) -> str:
    return pointer.replace("~1", "/").replace("~0", "~")


def status_body(status: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "details": details or {}, "code": status}
