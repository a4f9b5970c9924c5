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

import copy
import json
import re
import ssl
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml

from mig_labeler.label_names import key_error, value_error

from .kube_http import _handler_for
from .kube_objects import (
    DNS_SUBDOMAIN,
    NFD_FEATURE_LABELS,
    NFD_GROUP_VERSION,
    NFD_NODE_NAME,
    ApiFailure,
    Fault,
    LoggedRequest,
    StoredNode,
    StoredObject,
    _applied_fields,
    _copy,
    _nonempty,
    _unescape,
    status_body,
)

__all__ = ["NFD_FEATURE_LABELS", "NFD_NODE_NAME", "ApiFailure", "FakeKubeApi", "LoggedRequest", "status_body"]


# A self-signed certificate for 127.0.0.1 and localhost (valid to 2126), made with
# openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 36500
# -subj /CN=fake-kube-apiserver -addext subjectAltName=IP:127.0.0.1,DNS:localhost. Test data only.
TLS_CERTIFICATE = Path(__file__).with_name("tls") / "server.crt"

class FakeKubeApi:
    def __init__(self, tls: bool = False) -> None:
        """``tls``: serve HTTPS with the certificate in ``tests/fakes/tls`` (for 127.0.0.1, its own CA),
        as a pod's in-cluster credentials require."""
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
        self.gpu_operator_installed = False  # the ClusterPolicy CRD (nvidia.com/v1); False: its paths are a 404
        self.cluster_policies: dict[str, dict[str, Any]] = {}
        # resource.k8s.io/v1 (Kubernetes 1.34+): served unless False; the ResourceSlices it holds.
        self.dra_served = True
        self.resource_slices: list[dict[str, Any]] = []
        self.configmap_history: list[tuple[int, str, dict[str, Any]]] = []
        # A Role's resourceNames per resource: a request for another name, or a list or watch
        # without a metadata.name field selector naming a granted one, is a 403 (RBAC's rule).
        self.granted_names: dict[str, set[str]] = {}
        # A token the requests must carry (Authorization: Bearer ...), else 401; None: no check.
        self.bearer_token: str | None = None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self.tls = tls
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(TLS_CERTIFICATE, TLS_CERTIFICATE.with_name("server.key"))
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True,
                                                     do_handshake_on_connect=False)  # in the handler's thread
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.server.server_address[1]}"

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

    def garble_next(self, count: int, body: bytes = b"<html><body>Sign in to continue</body></html>",
                    content_type: str = "text/html; charset=utf-8", method: str | None = None) -> None:
        """The next requests are answered 200 with ``body``: a corporate proxy's login page, a
        truncated or foreign JSON document. Watches included."""
        with self.lock:
            self.faults.extend(Fault(200, None, method, answer=(body, content_type)) for _ in range(count))

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
