"""The fake API server's HTTP side: routing each request (nodes, watches, NodeFeatures, pods,
ConfigMaps, Events), RBAC as configured on the ``FakeKubeApi``, injected faults and hangs, and
the chunked watch streams. The semantics live in ``kube_api.FakeKubeApi``."""

from __future__ import annotations

import base64
import copy
import json
import re
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlparse

import yaml

from .kube_objects import (
    NFD_GROUP_VERSION,
    ApiFailure,
    LoggedRequest,
    _selected,
    status_body,
)

if TYPE_CHECKING:
    from .kube_api import FakeKubeApi


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
            scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
            if api.bearer_token is not None and (scheme.lower(), token) != ("bearer", api.bearer_token):
                entry.status = 401
                self._send(401, status_body(401, "Unauthorized", "Unauthorized"))
                return
            fault = api.take_fault(method)
            if fault is not None and fault.hang:
                self._hang(fault.hang == "partial")
                return
            if fault is not None and fault.answer is not None:
                entry.status = 200
                self.send_response(200)
                self.send_header("Content-Type", fault.answer[1])
                self.send_header("Content-Length", str(len(fault.answer[0])))
                self.end_headers()
                self.wfile.write(fault.answer[0])
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
            if path == "/apis/resource.k8s.io/v1/resourceslices" and method == "GET":
                return self._resource_slices(query)
            policy = re.fullmatch(r"/apis/nvidia[.]com/v1/clusterpolicies/([^/]+)", path)
            if policy and method == "GET":
                return self._cluster_policy(unquote(policy.group(1)))
            namespaced = self._namespaced(method, path, query, raw, entry)
            if namespaced is not None:
                return namespaced
            raise ApiFailure(404, "NotFound", f"the server could not find the requested resource {path}")

        def _resource_slices(self, query: dict[str, list[str]]) -> tuple[int, dict[str, Any] | None]:
            """A LIST of ResourceSlices; the field selectors kube-apiserver supports for them
            (spec.nodeName, spec.driver, metadata.name), any other one a 400 as there."""
            if not api.dra_served:
                return self._not_served()
            wanted: dict[str, str] = {}
            for term in (query.get("fieldSelector") or [""])[0].split(","):
                if not term:
                    continue
                field_name, _, value = term.partition("=")
                if field_name not in ("spec.nodeName", "spec.driver", "metadata.name"):
                    raise ApiFailure(400, "BadRequest", f'field label not supported: {field_name}')
                wanted[field_name] = value

            def value_of(item: dict[str, Any], field_name: str) -> str:
                section, _, name = field_name.partition(".")
                return str((item.get(section) or {}).get(name, ""))

            with api.lock:
                items = [copy.deepcopy(s) for s in api.resource_slices
                         if all(value_of(s, f) == v for f, v in wanted.items())]
                version = str(api.revision)
            return 200, {"kind": "ResourceSliceList", "apiVersion": "resource.k8s.io/v1",
                         "metadata": {"resourceVersion": version}, "items": items}

        def _cluster_policy(self, name: str) -> tuple[int, dict[str, Any] | None]:
            """The GPU Operator's ClusterPolicy; without its CRD, the plain-text 404 of an unserved group."""
            if not api.gpu_operator_installed:
                return self._not_served()
            with api.lock:
                found = api.cluster_policies.get(name)
            if found is None:
                raise ApiFailure(404, "NotFound", f'clusterpolicies.nvidia.com "{name}" not found', name=name,
                                 kind="clusterpolicies")
            return 200, found

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
