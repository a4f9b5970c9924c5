"""Whatever the API server (or a proxy in front of it) answers, every request gives a result or our
error, never another exception: any status, any content type, any body, for every request the tool
makes. The real ``kubernetes`` client runs over a raw HTTP server that answers as told."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mig_labeler.errors import MigLabelerError
from mig_labeler.kube.client import KubeClient
from mig_labeler.kube.connection import connect
from mig_labeler.kube.node_state import LabelClaim, NodeState

NODE_OBJECT = {"kind": "Node", "apiVersion": "v1",
               "metadata": {"name": "n", "uid": "u", "resourceVersion": "7", "labels": {"a": "b"}}}


class Answer:
    """What the server says next: status, content type, body."""

    def __init__(self) -> None:
        self.status, self.content_type, self.body = 200, "application/json", b"{}"


class RawServer:
    def __init__(self) -> None:
        self.answer = Answer()
        answer = self.answer

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _reply(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_PATCH = do_DELETE = _reply

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture(scope="module")
def server() -> Iterator[RawServer]:
    raw = RawServer()
    yield raw
    raw.server.shutdown()


NODE = NodeState("n", "u", "7", {}, frozenset())
CLAIMED = NodeState("n", "u", "7", {"x": "1"}, frozenset(), (LabelClaim(0, "gfd", "Update", frozenset({"x"})),))
REQUESTS: dict[str, Callable[[KubeClient], Any]] = {
    "get node": lambda k: k.read_node("n"),
    "apply labels": lambda k: k.apply_labels("n", {"nvidia.com/gpu.count": "8"}),
    "release claims": lambda k: k.release_claims(CLAIMED, frozenset({"x"})),
    "list nodes": lambda k: k.node_objects([]),
    "get nodes": lambda k: k.node_objects(["n"]),
    "discovery": lambda k: k.served_resources("nfd.k8s-sigs.io/v1alpha1"),
    "get object": lambda k: k.get_object("/apis/x/v1/namespaces/ns/things/t", "things", "t"),
    "apply object": lambda k: k.apply_object("/apis/x/v1/namespaces/ns/things/t", "things", "t", {"kind": "T"}),
    "delete object": lambda k: k.delete_object("/apis/x/v1/namespaces/ns/things/t", "things", "t", "uid"),
    "get configmap": lambda k: k.read_configmap("ns", "cm"),
    "post event": lambda k: k.post_event(NODE, "Reason", "message", "Normal", 0.0),
    "watch node": lambda k: list(itertools.islice(k.watch_node("n", "", 5), 20)),
    "watch configmap": lambda k: list(itertools.islice(k.watch_configmap("ns", "cm", "", 5), 20)),
}

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=3), max_leaves=8)
shaped = st.sampled_from([
    NODE_OBJECT, {"kind": "Status"}, {"metadata": []}, {"metadata": {"name": 7}}, {"items": {}},
    {"items": [1]}, {"items": [NODE_OBJECT], "metadata": {"continue": ""}}, {"resources": "x"},
    {"type": "ADDED", "object": NODE_OBJECT}, {"type": "ADDED", "object": []}, {"type": "ERROR", "object": {}},
    {"type": "BOOKMARK", "object": {"metadata": []}}, {"metadata": {"labels": {"a": 1}, "name": "n"}},
    {"metadata": {"name": "n", "managedFields": [1]}}, {"data": [], "metadata": {"name": "cm"}},
])
bodies = st.one_of(
    st.binary(max_size=64),
    json_values.map(lambda v: json.dumps(v).encode()),
    shaped.map(lambda v: json.dumps(v).encode()),
    shaped.map(lambda v: json.dumps(v).encode()[:-3]),  # truncated
    shaped.map(lambda v: (json.dumps({"type": "MODIFIED", "object": v}) + "\n").encode() * 2),  # a watch stream
    st.just(b"<html><body>Please log in</body></html>"),
)
statuses = st.sampled_from([200, 201, 204, 301, 400, 401, 403, 404, 409, 410, 429, 500, 503])
content_types = st.sampled_from(["application/json", "text/html; charset=utf-8", "text/plain", ""])


@pytest.mark.parametrize("request_kind", list(REQUESTS))
@settings(max_examples=60)
@given(status=statuses, content_type=content_types, body=bodies)
def test_any_answer_is_a_result_or_our_error(server, request_kind, status, content_type, body):
    server.answer.status, server.answer.content_type, server.answer.body = status, content_type, body
    kube = connect(None, host=server.url, within=10)
    try:
        REQUESTS[request_kind](kube)
    except MigLabelerError:
        pass
    finally:
        kube.close()


def test_a_login_page_is_one_line_naming_the_request_the_server_and_a_proxy(server):
    server.answer.status, server.answer.content_type = 200, "text/html"
    server.answer.body = b"<html><body>Please log in</body></html>"
    kube = connect(None, host=server.url)
    with pytest.raises(MigLabelerError) as caught:
        kube.read_node("n")
    assert str(caught.value) == f"GET nodes/n: the answer from {server.url} is not JSON: a proxy or a login page?"


@pytest.mark.parametrize(("body", "said"), [
    (b'{"kind": "Node", "metadata": {"labels": {', "not JSON"),
    (b'["not", "an", "object"]', "a JSON list, not an object"),
    (b'{"kind": "Status", "status": "Failure"}', "a 'Status' object, not a Node"),
])
def test_a_truncated_or_wrong_answer_is_a_transient_error(server, body, said):
    from mig_labeler.errors import is_transient

    server.answer.status, server.answer.content_type, server.answer.body = 200, "application/json", body
    kube = connect(None, host=server.url)
    with pytest.raises(MigLabelerError) as caught:
        kube.read_node("n")
    assert said in str(caught.value) and is_transient(caught.value)
