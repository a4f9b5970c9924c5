"""The API calls: read the Node, apply labels, post Events, read and watch one object.

Requests go out through ``kube.transport`` (the ``kubernetes`` package's configuration and
urllib3 transport, loaded when a client is built): the loop and the sinks use ``NodeState`` and the
error types, and a file-only run, which never talks to a cluster, loads none of it.

Owns: server-side apply of our label set (``application/apply-patch+yaml``, field manager ``mig-labeler``,
``force=true``), reading which label keys our field manager owns, Events, and handing each failure to
``api_errors`` for translation into our error types. Knows nothing about GPUs.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

from mig_labeler.errors import ApiError, ApiTransient
from mig_labeler.kube.errors import (
    BadAnswer,
    ObjectNotFound,
    WatchExpired,
    bad_answer,
    connection_error,
    translate_api_exception,
)
from mig_labeler.kube.node_state import FIELD_MANAGER, NodeState, NotANode, node_state
from mig_labeler.kube.rate_limit import TokenBucket
from mig_labeler.kube.transport import Transport
from mig_labeler.stop import Stop

log = logging.getLogger("mig_labeler")

APPLY_PATCH = "application/apply-patch+yaml"
EVENT_NAMESPACE = "default"  # where Node events live, as the kubelet posts them
LIST_PAGE = 500  # nodes per LIST page (kubectl's --chunk-size default)
TIMEOUT = (5.0, 15.0)  # connect, read (seconds): a pass must never hang on the API

JSON_PATCH = "application/json-patch+json"
CONNECTED = "CONNECTED"  # not a watch event type: the first item of a watch, once the stream is open


class KubeClient:
    """Requests go through the ``kubernetes`` package's configuration and transport (auth, TLS,
    proxy, urllib3: ``kube.transport``), not through its generated API classes: importing
    ``CoreV1Api`` alone costs 22 MiB of RSS for calls we can spell out."""

    def __init__(self, transport: Transport, *, stop: Stop | None = None, within: float | None = None,
                 since: float | None = None,
                 rate_limit: TokenBucket | None = None, field_manager: str = FIELD_MANAGER) -> None:
        """``stop``: a stop abandons the request in flight at once (``Stop.abandonable``) and
        ends a rate-limit wait, instead of waiting out a read timeout: a hung API server must not
        delay SIGTERM. ``within``: seconds from ``since`` (``time.monotonic()``: the process's start,
        so start-up counts; default now) after which no request starts (--oneshot-timeout, diff's
        --timeout); each request's timeouts are cut to what is left. ``rate_limit``:
        --kube-api-qps/--kube-api-burst, as client-go applies them."""
        self.transport = transport
        self.field_manager = field_manager
        self.stop = stop or Stop()  # without one, only the deadline ends a wait
        self.within = within
        self.deadline = None if within is None else (time.monotonic() if since is None else since) + within
        self.rate_limit = rate_limit

    def _timeout(self) -> tuple[float, float]:
        """(connect, read) seconds: the usual ones, cut down to what the deadline leaves."""
        if self.deadline is None:
            return TIMEOUT
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ApiError(f"gave up: the time limit of {self.within:g} s ran out")
        return min(TIMEOUT[0], left), min(TIMEOUT[1], left)

    def close(self) -> None:
        self.transport.close()

    def node_objects(self, names: list[str], selector: str | None = None) -> list[dict[str, Any]]:
        """Whole Node objects, for ``check``: the named ones (get), else a list (with a label
        selector); the user's own credentials, nodes get/list only."""
        if names:
            return [self._node_object(self._call("GET", "nodes", n, f"/api/v1/nodes/{n}"), "GET", n) for n in names]
        items: list[dict[str, Any]] = []
        token, started = "", time.monotonic()
        while True:  # pages of LIST_PAGE, as kubectl does: a 5,000-node cluster in 10 requests
            query: list[tuple[str, Any]] = [("limit", LIST_PAGE)]
            query += [("labelSelector", selector)] if selector else []
            query += [("continue", token)] if token else []
            page = self._call("GET", "nodes", "", "/api/v1/nodes", query)
            found, meta = page.get("items") or [], page.get("metadata") or {}
            if not isinstance(found, list) or not isinstance(meta, dict):
                raise self._bad("GET", "nodes", "", "not a list of Nodes")
            items += [self._node_object(item, "GET", "") for item in found]
            token = str(meta.get("continue") or "")
            if not token:
                return items
            if time.monotonic() - started > 1.0:
                remaining = meta.get("remainingItemCount")
                log.info("listed %d nodes%s", len(items), f", {remaining} to go" if remaining else "")

    def read_node(self, name: str) -> NodeState:
        return self._node(self._call("GET", "nodes", name, f"/api/v1/nodes/{name}"), "GET", name)

    def _node(self, obj: Any, method: str, name: str) -> NodeState:
        """The answer as a ``NodeState``, or ``BadAnswer`` saying why it is not a Node."""
        try:
            return node_state(obj, self.field_manager)
        except NotANode as e:
            raise self._bad(method, "nodes", name, str(e)) from None

    def _node_object(self, obj: Any, method: str, name: str) -> dict[str, Any]:
        """A whole Node object, for ``check``: checked as ``_node`` checks one."""
        self._node(obj, method, name)
        return dict(obj)

    def _bad(self, method: str, resource: str, name: str, what: str) -> BadAnswer:
        return bad_answer(method, resource, name, self.transport.host, what)

    def apply_labels(self, name: str, labels: Mapping[str, str]) -> NodeState:
        """Server-side apply of exactly our label set: keys we applied before and leave out are
        removed by the API server unless another manager also owns them."""
        body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": dict(labels)}}
        query = [("fieldManager", self.field_manager), ("force", True)]
        response = self._call("PATCH", "nodes", name, f"/api/v1/nodes/{name}", query, body, APPLY_PATCH)
        return self._node(response, "PATCH", name)

    def release_claims(self, node: NodeState, keys: frozenset[str]) -> NodeState | None:
        """Take other managers' claims off ``keys``, so that we own them alone; None if there
        were none. Why this way: server-side apply *shares* a key whose value another manager
        already set, and ``force`` only takes keys whose value differs, so after adopting GFD's
        labels (nfd-master, an Update manager) our later drop would leave them on the Node for
        good. The Kubernetes docs' transfer technique needs the other manager's cooperation, which
        nfd-master or a human with kubectl never gives; removing and re-adding the label would make
        it vanish for a moment. Editing managedFields changes no label at all: one JSON patch that
        removes only those keys' entries, guarded by our resourceVersion (a stale one is a 409 and
        the pass retries from a fresh read). Checked against a real kube-apiserver."""
        ops: list[dict[str, Any]] = []
        for claim in node.claims:
            for key in sorted(claim.keys & keys):
                ops.append({"op": "remove", "path": f"/metadata/managedFields/{claim.index}/fieldsV1/f:metadata"
                                                    f"/f:labels/{_json_pointer('f:' + key)}"})
        if not ops:
            return None
        ops.insert(0, {"op": "replace", "path": "/metadata/resourceVersion", "value": node.resource_version})
        path = f"/api/v1/nodes/{node.name}"
        response = self._call("PATCH", "nodes", node.name, path, [("fieldManager", self.field_manager)], ops,
                              JSON_PATCH)
        return self._node(response, "PATCH", node.name)

    # -- other objects: the nodefeature sink's NodeFeature, our Pod for owner references --------
    def served_resources(self, group_version: str) -> set[str] | None:
        """The resources an API group version serves (discovery), or None when it is not served
        (its CRD is not installed)."""
        try:
            found = self._call("GET", "apis", group_version, f"/apis/{group_version}")
        except ApiError as e:
            if e.status == 404:
                return None
            raise
        resources = found.get("resources") or []
        if not isinstance(resources, list) or not all(isinstance(r, dict) for r in resources):
            raise self._bad("GET", "apis", group_version, "not an API resource list")
        return {str(r.get("name")) for r in resources}

    def get_object(self, path: str, resource: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist (its type does: a missing type is an error)."""
        try:
            return self._object(self._call("GET", resource, name, path), "GET", resource, name)
        except ObjectNotFound:
            return None

    def apply_object(self, path: str, resource: str, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply under our field manager (creates the object if it is missing)."""
        query = [("fieldManager", self.field_manager), ("force", True)]
        return self._object(self._call("PATCH", resource, name, path, query, dict(body), APPLY_PATCH), "PATCH",
                            resource, name)

    def _object(self, obj: dict[str, Any], method: str, resource: str, name: str) -> dict[str, Any]:
        """An object with the metadata its readers use (name, uid, resourceVersion, labels)."""
        meta = obj.get("metadata")
        if not isinstance(meta, dict) or not all(isinstance(meta.get(k, ""), str) for k in ("name", "uid")):
            raise self._bad(method, resource, name, "not an object with metadata")
        return obj

    def delete_object(self, path: str, resource: str, name: str, uid: str) -> bool:
        """Delete exactly the object we looked at (a uid precondition); False if it is gone already."""
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"uid": uid}}
        try:
            self._call("DELETE", resource, name, path, body=body)
        except ObjectNotFound:
            return False
        return True

    def watch_node(self, name: str, resource_version: str, timeout_seconds: int) -> Iterator[tuple[str, NodeState]]:
        """Stream our own Node's changes from ``resource_version`` until the server ends the watch
        (``timeoutSeconds``), after ``CONNECTED`` once the stream is open. Bookmarks only advance the
        resourceVersion. Raises WatchExpired on 410."""
        for kind, obj in self._watch("/api/v1/nodes", "nodes", name, resource_version, timeout_seconds):
            if kind in (CONNECTED, "BOOKMARK"):  # a bookmark carries only a resourceVersion, to resume from
                meta = obj.get("metadata")
                version = str(meta.get("resourceVersion") or "") if isinstance(meta, dict) else ""
                yield kind, NodeState("", "", version, {}, frozenset())
                continue
            yield kind, self._node(obj, "WATCH", name)

    def resource_slices(self, node_name: str, driver: str) -> list[dict[str, Any]] | None:
        """This node's ResourceSlices of ``driver`` (``resource.k8s.io/v1``; both are selectable
        fields), or None when the API server does not serve that version (DRA not there)."""
        query: list[tuple[str, Any]] = [("fieldSelector", f"spec.nodeName={node_name},spec.driver={driver}")]
        try:
            found = self._call("GET", "resourceslices", "", "/apis/resource.k8s.io/v1/resourceslices", query)
        except ApiError as e:
            if e.status == 404:  # the type is not served: no DRA on this cluster
                return None
            raise
        items = found.get("items")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise self._bad("GET", "resourceslices", "", "not a list of ResourceSlices")
        return items

    def read_configmap(self, namespace: str, name: str) -> dict[str, Any]:
        """One ConfigMap (the GPU Operator's mig-parted config); ObjectNotFound when it is missing."""
        path = f"/api/v1/namespaces/{namespace}/configmaps/{name}"
        return self._object(self._call("GET", "configmaps", name, path), "GET", "configmaps", name)

    def watch_configmap(self, namespace: str, name: str, resource_version: str,
                        timeout_seconds: int) -> Iterator[tuple[str, dict[str, Any]]]:
        """That one ConfigMap's changes. The field selector on its name is what lets a Role that
        grants watch by ``resourceNames`` authorize the request: without it, a watch is a watch
        of every ConfigMap in the namespace."""
        path = f"/api/v1/namespaces/{namespace}/configmaps"
        for kind, obj in self._watch(path, "configmaps", name, resource_version, timeout_seconds):
            yield kind, obj if kind == CONNECTED else self._object(obj, "WATCH", "configmaps", name)

    def _watch(self, path: str, resource: str, name: str, resource_version: str,
               timeout_seconds: int) -> Iterator[tuple[str, dict[str, Any]]]:
        query: list[tuple[str, Any]] = [("fieldSelector", f"metadata.name={name}"), ("watch", True),
                                        ("allowWatchBookmarks", True), ("timeoutSeconds", timeout_seconds)]
        if resource_version:
            query.append(("resourceVersion", resource_version))
        api_exception = self.transport.api_exception
        self._wait_for_rate_limit()
        try:
            response = self.transport.request("GET", path, query, {"Accept": "application/json"}, None,
                                              (TIMEOUT[0], timeout_seconds + 30))
            if response.status != 200:
                response.read()
                raise api_exception.from_response(  # type: ignore[attr-defined]
                    http_resp=response, body=response.data.decode(errors="replace"), data=None)
            host = self.transport.host
            content_type = str(response.getheader("Content-Type") or "")
            if "json" not in content_type.lower():
                response.read()
                raise bad_answer("WATCH", resource, name, host, f"{content_type or 'untyped'}, not a watch stream",
                                 200, content_type)
            yield CONNECTED, {}  # the server answered with a watch stream: events may take minutes to come
            yield from _watch_events(response.response, resource, name, host)
        except api_exception as e:
            raise translate_api_exception(e, "WATCH", resource, name) from e
        except (self.transport.http_error, OSError) as e:
            raise connection_error(e, "WATCH", resource, name, self.transport.host) from e

    def post_event(self, node: NodeState, reason: str, message: str, event_type: str, now: float) -> None:
        stamp = datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": f"{node.name}.mig-labeler.", "namespace": EVENT_NAMESPACE},
            "involvedObject": {"apiVersion": "v1", "kind": "Node", "name": node.name, "uid": node.uid},
            "reason": reason, "message": message[:1024], "type": event_type,
            "source": {"component": FIELD_MANAGER, "host": node.name},
            "reportingComponent": FIELD_MANAGER, "reportingInstance": socket.gethostname(),
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
        }
        self._call("POST", "events", node.name, f"/api/v1/namespaces/{EVENT_NAMESPACE}/events", body=body)

    def _call(self, method: str, resource: str, name: str, path: str, query: list[tuple[str, Any]] | None = None,
              body: Any = None, content_type: str = "application/json") -> Any:
        def request() -> Any:
            return self._request(method, resource, name, path, query, body, content_type)

        self._wait_for_rate_limit()
        what = f"{method} {resource}/{name}".rstrip("/")
        left = None if self.deadline is None else self.deadline - time.monotonic()
        if left is not None and left <= 0:
            raise ApiError(f"{what}: gave up: the time limit of {self.within:g} s ran out")
        try:
            return self.stop.abandonable(what, request, timeout=left)
        except TimeoutError:
            raise ApiTransient(f"{what}: no complete answer from {self.transport.host} within the time "
                               f"limit of {self.within:g} s") from None

    def _wait_for_rate_limit(self) -> None:
        delay = self.rate_limit.reserve() if self.rate_limit is not None else 0.0
        if delay > 0:
            self.stop.sleep(delay)

    def _request(self, method: str, resource: str, name: str, path: str, query: list[tuple[str, Any]] | None,
                 body: Any, content_type: str) -> Any:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        api_exception = self.transport.api_exception
        try:
            response = self.transport.request(method, path, query or [], headers, body, self._timeout())
            response.read()
            if not 200 <= response.status <= 299:
                raise api_exception.from_response(  # type: ignore[attr-defined]
                    http_resp=response, body=response.data.decode(errors="replace"), data=None)
            return _json_object(response.data, method, resource, name, self.transport.host,
                                response.status, str(response.getheader("Content-Type") or ""))
        except api_exception as e:
            raise translate_api_exception(e, method, resource, name, self.transport.host) from e
        except (self.transport.http_error, OSError) as e:
            raise connection_error(e, method, resource, name, self.transport.host) from e


def _json_pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _json_object(data: bytes, method: str, resource: str, name: str, host: str | None, status: int | None = None,
                 content_type: str = "") -> dict[str, Any]:
    """The body as a JSON object, or ``BadAnswer`` naming what it is instead."""
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        what = "not JSON" if data.strip() else "empty"
        raise bad_answer(method, resource, name, host, what, status, content_type) from None
    if not isinstance(obj, dict):
        raise bad_answer(method, resource, name, host, f"a JSON {type(obj).__name__}, not an object", status)
    return obj


MAX_WATCH_LINE = 8 << 20  # one watch event; a Node is tens of KiB, a ConfigMap at most 1 MiB


def _watch_events(raw: Any, resource: str, name: str, host: str | None) -> Iterator[tuple[str, dict[str, Any]]]:
    buffer = b""
    try:
        for chunk in raw.stream(65536, decode_content=True):
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip():
                    yield _watch_event(_json_object(line, "WATCH", resource, name, host), resource, name, host)
            if len(buffer) > MAX_WATCH_LINE:
                raise bad_answer("WATCH", resource, name, host, "a line longer than 8 MiB, not a watch event")
        if buffer.strip():  # the stream ended inside a line: cut off, or not a watch stream at all
            _json_object(buffer, "WATCH", resource, name, host)
            raise bad_answer("WATCH", resource, name, host, "a stream that ended inside an event")
    finally:
        raw.release_conn()


def _watch_event(event: Mapping[str, Any], resource: str, name: str,
                 host: str | None) -> tuple[str, dict[str, Any]]:
    """(type, object): ADDED/MODIFIED/DELETED carry the whole object; BOOKMARK only a resourceVersion."""
    obj = event.get("object") or {}
    if not isinstance(obj, dict):
        raise bad_answer("WATCH", resource, name, host, "a watch event without an object")
    kind = str(event.get("type"))
    if kind == "ERROR":
        code = obj.get("code")
        if code == 410:
            raise WatchExpired(f"WATCH {resource}/{name}: resourceVersion too old", 410)
        raise ApiTransient(f"WATCH {resource}/{name}: error event: {obj.get('message')}", code)
    return kind, dict(obj)
