"""A fake Kubernetes API server for Nodes and Events, on 127.0.0.1, for the real ``kubernetes`` client.

What it enforces, as a real kube-apiserver does for these resources:
- GET/PUT/PATCH ``/api/v1/nodes/{name}``; 404 with a ``Status`` body for unknown nodes.
- PATCH content types: merge-patch (RFC 7386), strategic-merge (same as merge for the label map),
  JSON patch (add/remove/replace/test) and apply-patch (server-side apply). Anything else: 415.
- Field ownership per (manager, operation), as structured-merge-diff does it for label keys, and
  as checked against a real kube-apiserver (see the README, "Migrating from GFD"):
  * apply of a value another manager set to the same value **shares** the key (both own it);
  * a key a manager applied before and now leaves out loses that manager's claim, and is removed
    from the Node only when no other manager still owns it;
  * apply of a different value over another manager's key is a 409 conflict, unless
    ``force=true``, which takes that key over (the other managers lose it);
  * an Update-style write (merge, strategic-merge or JSON patch, PUT) owns the keys it adds or
    changes, taking them from everyone else; writing a key's current value changes nothing;
  * a JSON patch may remove label claims from ``metadata.managedFields`` (path
    ``/metadata/managedFields/N/fieldsV1/f:metadata/f:labels/f:KEY``), as the real server lets a
    client edit managedFields. ``fieldManager`` is required for apply (400).
- ``resourceVersion`` bumps on every change of labels or ownership, never on a no-op; a stale
  ``metadata.resourceVersion`` in a PUT/patch body (or set by a JSON patch ``replace``) is a 409.
- Label keys and values are validated with the Kubernetes rules: 422 naming the bad field.
- ``GET /api/v1/nodes?watch=true&fieldSelector=metadata.name=X`` streams ADDED/MODIFIED events
  until ``timeoutSeconds``; ``resourceVersion`` too old gives a 410 ERROR event.
- ``POST /api/v1/namespaces/{ns}/events`` stores Events.
- Fault injection (next N requests fail with a status, optionally Retry-After, or the connection
  is dropped) and a request log tests assert on.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import yaml

from mig_labeler.label_names import key_error, value_error

NAMESPACED = ("events", "nodefeatures", "pods", "configmaps")


@dataclass
class Fault:
    status: int  # 0 = drop the connection
    retry_after: float | None = None
    method: str | None = None
    hang: str = ""  # "silent": never answer; "partial": headers and half the body, then nothing


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


class FakeKubeApi:
    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.nodes: dict[str, StoredNode] = {}
        self.events: list[dict[str, Any]] = []
        self.log: list[LoggedRequest] = []
        self.faults: list[Fault] = []
        self.forbidden: set[tuple[str, str]] = set()  # (verb, resource) answered with 403
        self.revision = 100
        self.clock = time.time  # managedFields times; a test may set it to its own clock
        self.watch_generation = 0  # bumped by break_watches(): open watch streams drop mid-stream
        self.open_watches = 0
        self.hung = 0  # requests held without an answer (hang_next)
        self.list_pages = 0  # LIST nodes requests answered
        self.stopping = False
        self.oldest_watchable = 0
        self.history: list[tuple[int, str, dict[str, Any]]] = []
        self.nfd_installed = True  # NFD's NodeFeature CRD; False: its paths are not served (404 page not found)
        # The OwnerReferencesPermissionEnforcement admission plugin (on in OpenShift; off by default
        # upstream): an update that changes metadata.ownerReferences also needs delete on the object.
        # On, because a fake kinder than the strictest real server hides bugs.
        self.owner_reference_enforcement = True
        self.nodefeatures: dict[tuple[str, str], StoredObject] = {}
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.configmaps: dict[tuple[str, str], dict[str, Any]] = {}
        self.configmap_history: list[tuple[int, str, dict[str, Any]]] = []
        # A Role's resourceNames per resource: a request for another name, or a list or watch
        # without a metadata.name field selector naming a granted one, is a 403 (RBAC's rule).
        self.granted_names: dict[str, set[str]] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeKubeApi:
        self.thread.start()
        return self

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            self.lock.notify_all()
        self.server.shutdown()
        self.server.server_close()

    # -- test helpers -------------------------------------------------------------------------
    def add_node(self, name: str, labels: dict[str, str] | None = None, manager: str = "kubelet") -> None:
        with self.lock:
            node = StoredNode(name, dict(labels or {}), f"uid-{name}", self._next_revision())
            node.owners[(manager, "Update")] = set(node.labels)
            node.times[(manager, "Update")] = self.clock()
            self.nodes[name] = node
            self._record("ADDED", node)

    def delete_node(self, name: str) -> None:
        """What ``kubectl delete node`` does: watchers see DELETED with the last state."""
        with self.lock:
            node = self.nodes.pop(name)
            node.resource_version = self._next_revision()
            self._record("DELETED", node)

    def labels(self, name: str) -> dict[str, str]:
        with self.lock:
            return dict(self.nodes[name].labels)

    def resource_version(self, name: str) -> int:
        with self.lock:
            return self.nodes[name].resource_version

    def edit_labels(self, name: str, changes: dict[str, str | None], manager: str = "kubectl-label") -> None:
        """What ``kubectl label`` or another controller does: an update-style merge patch."""
        with self.lock:
            self._merge_labels(self.nodes[name], changes, manager)

    def fail_next(self, count: int, status: int, retry_after: float | None = None, method: str | None = None) -> None:
        with self.lock:
            self.faults.extend(Fault(status, retry_after, method) for _ in range(count))

    def drop_next(self, count: int = 1) -> None:
        self.fail_next(count, 0)

    def hang_next(self, count: int = 1, method: str | None = None, partial: bool = False) -> None:
        """The next requests get no answer (or half of one) until the server stops: an overloaded
        or partitioned control plane, a kube-apiserver frozen with SIGSTOP. ``hung`` counts them."""
        with self.lock:
            self.faults.extend(Fault(0, None, method, "partial" if partial else "silent") for _ in range(count))

    def wait_hung(self, count: int = 1, timeout: float = 30.0) -> bool:
        """Until ``count`` requests are hanging (a request is in flight and unanswered)."""
        with self.lock:
            return self.lock.wait_for(lambda: self.hung >= count, timeout)

    def writes(self) -> list[LoggedRequest]:
        return [r for r in self.log if r.method in ("PATCH", "PUT", "POST") and r.resource == "nodes"]

    def break_watches(self) -> None:
        """Drop every open watch stream without a terminating chunk, as a dying proxy would."""
        with self.lock:
            self.watch_generation += 1
            self.lock.notify_all()

    def watches(self) -> list[LoggedRequest]:
        return [r for r in self.log if r.verb == "watch"]

    def compact(self) -> None:
        """Forget watch history, so resuming from an old resourceVersion gives 410 Gone."""
        with self.lock:
            self.oldest_watchable = self.revision

    # -- semantics ----------------------------------------------------------------------------
    def _next_revision(self) -> int:
        self.revision += 1
        return self.revision

    def _record(self, kind: str, node: StoredNode) -> None:
        self.history.append((node.resource_version, kind, node.to_json()))
        self.lock.notify_all()

    def _commit(self, node: StoredNode, labels: dict[str, str], before: dict[tuple[str, str], set[str]],
                applier: tuple[str, str] | None = None) -> None:
        """Validate, store, and bump resourceVersion (with a watch event) if labels or ownership
        changed; ``before`` is the ownership as it was when the request came in."""
        bad = [(k, key_error(k) or value_error(v)) for k, v in labels.items() if key_error(k) or value_error(v)]
        if bad:
            node.owners = before
            detail = "; ".join(f"metadata.labels: Invalid value: {k!r}: {why}" for k, why in bad)
            raise ApiFailure(422, "Invalid", f'Node "{node.name}" is invalid: {detail}')
        for keys in node.owners.values():
            keys.intersection_update(labels)
        if labels == node.labels and _nonempty(node.owners) == _nonempty(before):
            return
        # managedFields time, as kube-apiserver's managedFieldsUpdater sets it (checked in its
        # source): an Update entry's time moves only when the set of fields it owns changes (not
        # when it changes the value of a field it already owns); an Apply entry's whenever the
        # object or the ownership changed.
        for who, keys in node.owners.items():
            if keys and (keys != before.get(who, set()) or who == applier):
                node.times[who] = self.clock()
        node.labels = labels
        node.resource_version = self._next_revision()
        self._record("MODIFIED", node)

    def _update_labels(self, node: StoredNode, labels: dict[str, str], manager: str) -> None:
        """An Update-style write: the writer owns every key it adds or changes, and nobody else
        does any more; a key written with its current value keeps its owners."""
        before = _copy(node.owners)
        written = {k for k, v in labels.items() if node.labels.get(k) != v}
        self._take(node, written, manager)
        self._commit(node, labels, before)

    @staticmethod
    def _take(node: StoredNode, written: set[str], manager: str) -> None:
        """An Update owns what it wrote, and nobody else does any more."""
        for keys in node.owners.values():
            keys.difference_update(written)
        if written:
            node.owners.setdefault((manager, "Update"), set()).update(written)

    def _merge_labels(self, node: StoredNode, changes: dict[str, Any], manager: str) -> None:
        labels = dict(node.labels)
        for key, value in changes.items():
            if value is None:
                labels.pop(key, None)
            else:
                labels[key] = str(value)
        self._update_labels(node, labels, manager)

    def apply(self, node: StoredNode, body: dict[str, Any], manager: str, force: bool) -> None:
        who = (manager, "Apply")
        applied = {k: str(v) for k, v in ((body.get("metadata") or {}).get("labels") or {}).items()}
        others = node.others(who)
        conflicts = sorted(k for k, v in applied.items() if k in others and node.labels.get(k, v) != v)
        if conflicts and not force:
            holders = {m for (m, _), keys in node.owners.items() if set(conflicts) & keys and (m, _) != who}
            raise ApiFailure(409, "Conflict", f"Apply failed with {len(conflicts)} conflicts: "
                             + ", ".join(f'conflict with "{m}": .metadata.labels.{k}' for m in sorted(holders)
                                         for k in conflicts))
        before = _copy(node.owners)
        labels = dict(node.labels)
        for key in node.owners.get(who, set()) - set(applied) - others:
            labels.pop(key, None)  # dropped, and nobody else owns it
        labels.update(applied)
        for w, keys in node.owners.items():
            if w != who:
                keys -= set(conflicts)  # force takes over only the keys whose value differs
        node.owners[who] = set(applied)  # same-value keys stay shared with their other owners
        self._commit(node, labels, before, applier=who)

    def patch(self, name: str, content_type: str, raw: bytes, query: dict[str, list[str]]) -> dict[str, Any]:
        node = self._node(name)
        manager = query.get("fieldManager", [""])[0]
        if content_type == "application/apply-patch+yaml":
            if not manager:
                raise ApiFailure(400, "BadRequest", "PATCH with apply-patch requires fieldManager")
            body = yaml.safe_load(raw) or {}
            self._check_version(node, body)
            self.apply(node, body, manager, query.get("force", ["false"])[0] == "true")
        elif content_type in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            if "force" in query:
                raise ApiFailure(400, "BadRequest", "force is only allowed for apply requests")
            body = json.loads(raw)
            self._check_version(node, body)
            self._merge_labels(node, (body.get("metadata") or {}).get("labels") or {}, manager or "unknown")
        elif content_type == "application/json-patch+json":
            self._json_patch(node, json.loads(raw), manager or "unknown")
        else:
            raise ApiFailure(415, "UnsupportedMediaType", "the body of the request was in an unknown format: "
                             "accepted media types include: application/json-patch+json, "
                             "application/merge-patch+json, application/apply-patch+yaml")
        return node.to_json()

    def _json_patch(self, node: StoredNode, ops: list[dict[str, Any]], manager: str) -> None:
        labels = dict(node.labels)
        before = _copy(node.owners)
        entries = node.managed_entries()
        released: list[tuple[tuple[str, str], str]] = []
        for op in ops:
            path = op.get("path", "")
            if path == "/metadata/resourceVersion" and op["op"] in ("replace", "test"):
                self._json_patch_precondition(node, op)
            elif path.startswith("/metadata/managedFields/"):
                released.append(self._json_patch_claim(entries, op))
            else:
                self._json_patch_label(labels, op)
        for who, key in released:  # a client may edit managedFields; the server keeps what it is given
            node.owners[who].discard(key)
        self._take(node, {k for k, v in labels.items() if node.labels.get(k) != v}, manager)
        self._commit(node, labels, before)

    @staticmethod
    def _json_patch_precondition(node: StoredNode, op: dict[str, Any]) -> None:
        if str(op.get("value")) == str(node.resource_version):
            return
        if op["op"] == "test":
            raise ApiFailure(422, "Invalid", "the server rejected our request due to an error in our request")
        raise ApiFailure(409, "Conflict", f'Operation cannot be fulfilled on nodes "{node.name}": the object has '
                         "been modified; please apply your changes to the latest version and try again")

    @staticmethod
    def _json_patch_claim(entries: list[tuple[tuple[str, str], set[str]]], op: dict[str, Any]) -> tuple[Any, str]:
        path = op.get("path", "")
        claim = re.fullmatch(r"/metadata/managedFields/(\d+)/fieldsV1/f:metadata/f:labels/f:(.+)", path)
        if not claim or op["op"] != "remove":
            raise ApiFailure(422, "Invalid", f"unsupported JSON patch on managedFields: {op}")
        index, key = int(claim.group(1)), _unescape(claim.group(2))
        if index >= len(entries) or key not in entries[index][1]:
            raise ApiFailure(422, "Invalid", f"remove operation does not apply: {path} is missing")
        return entries[index][0], key

    @staticmethod
    def _json_patch_label(labels: dict[str, str], op: dict[str, Any]) -> None:
        match = re.fullmatch(r"/metadata/labels/(.+)", op.get("path", ""))
        if not match:
            raise ApiFailure(422, "Invalid", f"unsupported JSON patch path {op.get('path')!r}")
        key = _unescape(match.group(1))
        if op["op"] in ("add", "replace"):
            if op["op"] == "replace" and key not in labels:
                raise ApiFailure(422, "Invalid", f"replace operation does not apply: {key} is missing")
            labels[key] = str(op["value"])
        elif op["op"] == "remove":
            if key not in labels:
                raise ApiFailure(422, "Invalid", f"remove operation does not apply: {key} is missing")
            labels.pop(key)
        elif op["op"] == "test" and labels.get(key) != op.get("value"):
            raise ApiFailure(422, "Invalid", f"test operation failed for {key}")

    def put(self, name: str, body: dict[str, Any], query: dict[str, list[str]]) -> dict[str, Any]:
        node = self._node(name)
        if not (body.get("metadata") or {}).get("resourceVersion"):
            raise ApiFailure(422, "Invalid", "metadata.resourceVersion: Invalid value: must be specified for an update")
        self._check_version(node, body)
        labels = {k: str(v) for k, v in ((body.get("metadata") or {}).get("labels") or {}).items()}
        self._update_labels(node, labels, (query.get("fieldManager") or ["unknown"])[0])
        return node.to_json()

    def _check_version(self, node: StoredNode, body: dict[str, Any]) -> None:
        wanted = (body.get("metadata") or {}).get("resourceVersion")
        if wanted and str(wanted) != str(node.resource_version):
            raise ApiFailure(409, "Conflict", f'Operation cannot be fulfilled on nodes "{node.name}": '
                             "the object has been modified; please apply your changes to the latest version")

    def _node(self, name: str) -> StoredNode:
        if name not in self.nodes:
            raise ApiFailure(404, "NotFound", f'nodes "{name}" not found', name=name, kind="nodes")
        return self.nodes[name]

    # -- ConfigMaps ----------------------------------------------------------------------------
    def put_configmap(self, namespace: str, name: str, data: dict[str, str]) -> dict[str, Any]:
        """Create or replace a ConfigMap's data, as ``kubectl apply`` would; watchers see it."""
        with self.lock:
            kind = "MODIFIED" if (namespace, name) in self.configmaps else "ADDED"
            obj = {"apiVersion": "v1", "kind": "ConfigMap", "data": dict(data),
                   "metadata": {"name": name, "namespace": namespace, "uid": f"uid-cm-{name}",
                                "resourceVersion": str(self._next_revision())}}
            self.configmaps[(namespace, name)] = obj
            self.configmap_history.append((self.revision, kind, copy.deepcopy(obj)))
            self.lock.notify_all()
            return obj

    def delete_configmap(self, namespace: str, name: str) -> None:
        with self.lock:
            obj = self.configmaps.pop((namespace, name))
            obj["metadata"]["resourceVersion"] = str(self._next_revision())
            self.configmap_history.append((self.revision, "DELETED", copy.deepcopy(obj)))
            self.lock.notify_all()

    def authorize_names(self, entry: LoggedRequest) -> None:
        granted = self.granted_names.get(entry.resource)
        if granted is None:
            return
        if entry.verb in ("list", "watch"):
            selector = entry.query.get("fieldSelector", [""])[0]
            name = selector.removeprefix("metadata.name=") if selector.startswith("metadata.name=") else ""
        else:
            name = unquote(entry.path.rsplit("/", 1)[-1])
        if name in granted:
            return
        namespace = entry.path.split("/namespaces/", 1)[1].split("/", 1)[0] if "/namespaces/" in entry.path else ""
        subject = f'{entry.resource} "{name}"' if entry.verb not in ("list", "watch") else entry.resource
        raise ApiFailure(403, "Forbidden", f'{subject} is forbidden: User "system:serviceaccount:mig-labeler:'
                         f'mig-labeler" cannot {entry.verb} resource "{entry.resource}" in API group "" in the '
                         f'namespace "{namespace}"', name=name or None, kind=entry.resource)

    # -- NodeFeature objects and pods ----------------------------------------------------------
    def add_pod(self, namespace: str, name: str, daemonset: str | None = "mig-labeler") -> dict[str, Any]:
        owners = [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": daemonset, "uid": f"uid-ds-{daemonset}",
                   "controller": True, "blockOwnerDeletion": True}] if daemonset else []
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace,
                                                               "uid": f"uid-pod-{name}", "ownerReferences": owners}}
        self.pods[(namespace, name)] = pod
        return pod

    def nodefeature(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            stored = self.nodefeatures.get((namespace, name))
            return None if stored is None else stored.to_json()

    def apply_object(self, namespace: str, name: str, body: dict[str, Any], manager: str,
                     force: bool) -> StoredObject:
        meta = body.get("metadata") or {}
        if body.get("apiVersion") != NFD_GROUP_VERSION or body.get("kind") != "NodeFeature":
            raise ApiFailure(400, "BadRequest", "apiVersion/kind do not match the URL")
        if meta.get("name") not in (None, name) or meta.get("namespace") not in (None, namespace):
            raise ApiFailure(400, "BadRequest", "the name or namespace of the object does not match the URL")
        if len(name) > 253 or not DNS_SUBDOMAIN.fullmatch(name):
            raise ApiFailure(422, "Invalid", f'NodeFeature "{name}" is invalid: metadata.name: must be a DNS subdomain')
        applied = _applied_fields(body)
        bad = [(k, key_error(k.split(".", 2)[2]) or value_error(v)) for k, v in applied.items()
               if k.startswith("metadata.labels.") and (key_error(k.split(".", 2)[2]) or value_error(v))]
        if bad:
            raise ApiFailure(422, "Invalid", f'NodeFeature "{name}" is invalid: '
                             + "; ".join(f"metadata.labels: Invalid value: {k!r}: {why}" for k, why in bad))
        stored = self.nodefeatures.get((namespace, name))
        if stored is None:
            stored = StoredObject(namespace, name, f"uid-nf-{name}", self._next_revision())
            self.nodefeatures[(namespace, name)] = stored
        who = (manager, "Apply")
        others = set().union(*(keys for w, keys in stored.owners.items() if w != who))
        conflicts = sorted(f for f, v in applied.items() if f in others and stored.fields.get(f, v) != v)
        if conflicts and not force:
            raise ApiFailure(409, "Conflict", f"Apply failed with {len(conflicts)} conflicts: {', '.join(conflicts)}")
        before = (dict(stored.fields), _nonempty(_copy(stored.owners)))
        for f in stored.owners.get(who, set()) - set(applied) - others:
            stored.fields.pop(f, None)
        stored.fields.update(applied)
        for w, keys in stored.owners.items():
            if w != who:
                keys -= set(conflicts)
        stored.owners[who] = set(applied)
        if (stored.fields, _nonempty(stored.owners)) != before:
            stored.resource_version = self._next_revision()
        return stored

    def take_fault(self, method: str) -> Fault | None:
        with self.lock:
            for i, fault in enumerate(self.faults):
                if fault.method in (None, method):
                    return self.faults.pop(i)
        return None


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


def _handler_for(api: FakeKubeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in separate writes

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass

        def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _handle(self, method: str) -> None:
            url = urlparse(self.path)
            query = parse_qs(url.query)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            entry = LoggedRequest(method, url.path, query, content_type, 0,
                                  user_agent=self.headers.get("User-Agent") or "")
            api.log.append(entry)
            fault = api.take_fault(method)
            if fault is not None and fault.hang:
                self._hang(fault.hang == "partial")
                return
            if fault is not None:
                entry.status = fault.status
                if fault.status == 0:
                    self.close_connection = True
                    self.connection.close()
                    return
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                self._send(fault.status, status_body(fault.status, "Injected", "injected fault"), headers)
                return
            try:
                if (entry.verb, entry.resource) in api.forbidden:
                    raise ApiFailure(403, "Forbidden", f'{entry.resource} is forbidden: '
                                     'User "system:serviceaccount:x:y" '
                                     f'cannot {entry.verb} resource "{entry.resource}"')
                api.authorize_names(entry)
                status, body = self._route(method, url.path, query, content_type, raw, entry)
            except ApiFailure as failure:
                status, body = failure.status, status_body(failure.status, failure.reason, failure.message,
                                                           failure.details)
            except (ValueError, yaml.YAMLError) as e:
                status, body = 400, status_body(400, "BadRequest", f"cannot decode body: {e}")
            entry.status = status
            if body is not None:
                self._send(status, body)

        def _list_nodes(self, query: dict[str, list[str]]) -> dict[str, Any]:
            """A LIST as kube-apiserver answers it: items in name order; with ``limit``, a page and
            an opaque ``continue`` token (here base64 of the offset) while more remain."""
            selector = query.get("labelSelector", [""])[0]
            with api.lock:
                items = [n.to_json() for _, n in sorted(api.nodes.items()) if _selected(selector, n.labels)]
                revision = api.revision
                api.list_pages += 1
            start = 0
            token = query.get("continue", [""])[0]
            if token:
                try:
                    start = int(base64.b64decode(token.encode(), validate=True).decode())
                except ValueError:
                    raise ApiFailure(400, "BadRequest", "continue key is not valid: illegal base64 data") from None
            limit = int(query.get("limit", ["0"])[0] or 0)
            page = items[start:start + limit] if limit > 0 else items[start:]
            meta: dict[str, Any] = {"resourceVersion": str(revision)}
            if limit > 0 and start + limit < len(items):
                meta["continue"] = base64.b64encode(str(start + limit).encode()).decode()
                meta["remainingItemCount"] = len(items) - start - limit
            return {"kind": "NodeList", "apiVersion": "v1", "metadata": meta, "items": page}

        def _hang(self, partial: bool) -> None:
            if partial:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "4096")
                self.end_headers()
                self.wfile.write(b'{"kind": "Node", "apiVersion": "v1", "metadata": {')
                self.wfile.flush()
            with api.lock:
                api.hung += 1
                api.lock.notify_all()
                while api.thread.is_alive() and not api.stopping:
                    api.lock.wait(1.0)
            self.close_connection = True

        def _route(self, method: str, path: str, query: dict[str, list[str]], content_type: str, raw: bytes,
                   entry: LoggedRequest) -> tuple[int, dict[str, Any] | None]:
            node = re.fullmatch(r"/api/v1/nodes/([^/]+)", path)
            if node and method in ("GET", "PATCH", "PUT"):
                name = unquote(node.group(1))
                with api.lock:
                    if method == "GET":
                        return 200, api._node(name).to_json()
                    if method == "PUT":
                        return 200, api.put(name, json.loads(raw), query)
                    return 200, api.patch(name, content_type, raw, query)
            if path == "/api/v1/nodes" and method == "GET" and query.get("watch") == ["true"]:
                self._watch_nodes(query, entry)
                return 200, None
            if path == "/api/v1/nodes" and method == "GET":
                return 200, self._list_nodes(query)
            if path == f"/apis/{NFD_GROUP_VERSION}" and method == "GET":
                if not api.nfd_installed:
                    return self._not_served()
                return 200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": NFD_GROUP_VERSION,
                             "resources": [{"name": "nodefeatures", "namespaced": True, "kind": "NodeFeature",
                                            "verbs": ["delete", "get", "list", "patch", "create", "update", "watch"]},
                                           {"name": "nodefeaturerules", "namespaced": False,
                                            "kind": "NodeFeatureRule", "verbs": ["get", "list"]}]}
            feature = re.fullmatch(rf"/apis/{re.escape(NFD_GROUP_VERSION)}/namespaces/([^/]+)/nodefeatures/([^/]+)",
                                   path)
            if feature:
                if not api.nfd_installed:
                    return self._not_served()
                return self._nodefeature(method, unquote(feature.group(1)), unquote(feature.group(2)), content_type,
                                         raw, query, entry)
            namespaced = self._namespaced(method, path, query, raw, entry)
            if namespaced is not None:
                return namespaced
            raise ApiFailure(404, "NotFound", f"the server could not find the requested resource {path}")

        def _namespaced(self, method: str, path: str, query: dict[str, list[str]], raw: bytes,
                        entry: LoggedRequest) -> tuple[int, dict[str, Any] | None] | None:
            """Pods, ConfigMaps and Events: None when the path is none of them."""
            pod = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)", path)
            if pod and method == "GET":
                with api.lock:
                    found = api.pods.get((unquote(pod.group(1)), unquote(pod.group(2))))
                if found is None:
                    raise ApiFailure(404, "NotFound", f'pods "{pod.group(2)}" not found', name=pod.group(2),
                                     kind="pods")
                return 200, found
            configmap = re.fullmatch(r"/api/v1/namespaces/([^/]+)/configmaps(?:/([^/]+))?", path)
            if configmap and method == "GET":
                return self._configmap(unquote(configmap.group(1)), configmap.group(2), query, entry)
            events = re.fullmatch(r"/api/v1/namespaces/([^/]+)/events", path)
            if events and method == "POST":
                body = json.loads(raw)
                with api.lock:
                    api.events.append(body)
                return 201, body
            return None

        def _configmap(self, namespace: str, name: str | None, query: dict[str, list[str]],
                       entry: LoggedRequest) -> tuple[int, dict[str, Any] | None]:
            if name is None and query.get("watch") == ["true"]:
                def current(wanted: str | None) -> list[dict[str, Any]]:
                    return [copy.deepcopy(o) for (ns, n), o in api.configmaps.items()
                            if ns == namespace and wanted in (None, n)]

                self._watch(query, entry, current, api.configmap_history,
                            lambda o: o["metadata"]["namespace"] == namespace)
                return 200, None
            if name is None:
                raise ApiFailure(405, "MethodNotAllowed", "this fake lists no ConfigMaps")
            with api.lock:
                found = api.configmaps.get((namespace, unquote(name)))
            if found is None:
                raise ApiFailure(404, "NotFound", f'configmaps "{unquote(name)}" not found', name=unquote(name),
                                 kind="configmaps")
            return 200, copy.deepcopy(found)

        def _not_served(self) -> tuple[int, None]:
            """What kube-apiserver answers for a group nobody serves: plain text, no Status."""
            data = b"404 page not found\n"
            self.send_response(404)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return 404, None

        def _nodefeature(self, method: str, namespace: str, name: str, content_type: str, raw: bytes,
                         query: dict[str, list[str]], entry: LoggedRequest) -> tuple[int, dict[str, Any] | None]:
            with api.lock:
                stored = api.nodefeatures.get((namespace, name))
                if method == "GET":
                    if stored is None:
                        raise ApiFailure(404, "NotFound", f'nodefeatures.nfd.k8s-sigs.io "{name}" not found',
                                         name=name, kind="nodefeatures")
                    return 200, stored.to_json()
                if method == "PATCH":
                    if content_type != "application/apply-patch+yaml":
                        raise ApiFailure(415, "UnsupportedMediaType", "this fake serves apply patches only")
                    manager = query.get("fieldManager", [""])[0]
                    if not manager:
                        raise ApiFailure(400, "BadRequest", "PATCH with apply-patch requires fieldManager")
                    created = stored is None
                    if created:  # kube-apiserver authorizes an apply that creates as create
                        entry.creates = True
                        if ("create", "nodefeatures") in api.forbidden:  # the body a real v1.24 server gives:
                            raise ApiFailure(403, "Forbidden",  # no reason after "forbidden: " on this path
                                             f'nodefeatures.nfd.k8s-sigs.io "{name}" is forbidden: ',
                                             name=name, kind="nodefeatures", group="nfd.k8s-sigs.io")
                    refs_before = None if created else copy.deepcopy(stored.fields.get("metadata.ownerReferences"))
                    snapshot = None if created else copy.deepcopy(stored)
                    stored = api.apply_object(namespace, name, yaml.safe_load(raw) or {}, manager,
                                              query.get("force", ["false"])[0] == "true")
                    changed = (stored.fields.get("metadata.ownerReferences") or []) != (refs_before or [])
                    if snapshot is not None and changed and api.owner_reference_enforcement:
                        # plugin/pkg/admission/gc (isChangingOwnerReference: any difference, in order):
                        # creating may set owners; changing them needs delete on the object
                        entry.changes_owners = True
                        if ("delete", "nodefeatures") in api.forbidden:
                            api.nodefeatures[(namespace, name)] = snapshot  # admission rejects: nothing stored
                            raise ApiFailure(403, "Forbidden", f'nodefeatures.nfd.k8s-sigs.io "{name}" is forbidden: '
                                             "cannot set an ownerRef on a resource you can't delete: , <nil>",
                                             name=name, kind="nodefeatures", group="nfd.k8s-sigs.io")
                    return (201 if created else 200), stored.to_json()
                if method == "DELETE":
                    if stored is None:
                        raise ApiFailure(404, "NotFound", f'nodefeatures.nfd.k8s-sigs.io "{name}" not found',
                                         name=name, kind="nodefeatures")
                    wanted = ((json.loads(raw or b"{}").get("preconditions") or {}).get("uid"))
                    if wanted and wanted != stored.uid:
                        raise ApiFailure(409, "Conflict", f"Precondition failed: UID in precondition: {wanted}, "
                                         f"UID in object meta: {stored.uid}")
                    del api.nodefeatures[(namespace, name)]
                    return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success",
                                 "details": {"name": name, "group": "nfd.k8s-sigs.io", "kind": "nodefeatures",
                                             "uid": stored.uid}}
            raise ApiFailure(405, "MethodNotAllowed", f"{method} is not supported here")

        def _watch_nodes(self, query: dict[str, list[str]], entry: LoggedRequest) -> None:
            def current(wanted: str | None) -> list[dict[str, Any]]:
                return [n.to_json() for n in api.nodes.values() if wanted in (None, n.name)]

            self._watch(query, entry, current, api.history, lambda o: True)

        def _watch(self, query: dict[str, list[str]], entry: LoggedRequest,
                   current_objects: Callable[[str | None], list[dict[str, Any]]],
                   history: list[tuple[int, str, dict[str, Any]]], matches: Callable[[dict[str, Any]], bool]) -> None:
            selector = query.get("fieldSelector", [""])[0]
            wanted = selector.removeprefix("metadata.name=") if selector.startswith("metadata.name=") else None
            since = int(query.get("resourceVersion", ["0"])[0] or 0)
            deadline = time.monotonic() + float(query.get("timeoutSeconds", ["5"])[0])
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            entry.status = 200
            if since and since < api.oldest_watchable:
                gone = {"type": "ERROR", "object": status_body(410, "Expired", "too old resource version")}
                self._chunk(gone)
                self._chunk(None)
                return
            if not since:  # no resourceVersion: ADDED for the current state, like a list+watch
                with api.lock:
                    current = current_objects(wanted)
                    since = api.revision
                for obj in current:
                    self._chunk({"type": "ADDED", "object": obj})
            with api.lock:
                generation = api.watch_generation
                api.open_watches += 1
            try:
                while time.monotonic() < deadline:
                    if api.watch_generation != generation:
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    with api.lock:
                        fresh = [(rv, k, o) for rv, k, o in history
                                 if rv > since and wanted in (None, o["metadata"]["name"]) and matches(o)]
                        if not fresh:
                            api.lock.wait(timeout=min(0.05, max(0.0, deadline - time.monotonic())))
                            continue
                    for rv, kind, obj in fresh:
                        self._chunk({"type": kind, "object": obj})
                        since = rv
                self._chunk(None)
            except OSError:  # the client went away
                return
            finally:
                with api.lock:
                    api.open_watches -= 1

        def _chunk(self, event: dict[str, Any] | None) -> None:
            data = b"" if event is None else (json.dumps(event) + "\n").encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def do_GET(self) -> None:  # noqa: N802 - stdlib naming
            self._handle("GET")

        def do_PATCH(self) -> None:  # noqa: N802
            self._handle("PATCH")

        def do_PUT(self) -> None:  # noqa: N802
            self._handle("PUT")

        def do_POST(self) -> None:  # noqa: N802
            self._handle("POST")

        def do_DELETE(self) -> None:  # noqa: N802
            self._handle("DELETE")

    return Handler


