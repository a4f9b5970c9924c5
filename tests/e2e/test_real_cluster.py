"""Optional tier: the publisher against a real API server (``make test-e2e``).

Runs only when ``MIG_LABELER_E2E_KUBECONFIG`` names a kubeconfig; ``MIG_LABELER_E2E_NODE`` picks
the Node (default: the first one, which needs ``list nodes``; our ClusterRole does not grant it, so
with mig-labeler's own credentials set the variable). It uses its own field manager and label
keys under ``e2e.mig-labeler.test/``, so it cannot disturb a mig-labeler running on that node,
and it removes what it wrote, its ``managedFields`` entry included.
"""

from __future__ import annotations

import os

import pytest

from mig_labeler.errors import ApiError
from mig_labeler.kube.client import KubeClient
from mig_labeler.kube.connection import transport_for

KUBECONFIG = os.environ.get("MIG_LABELER_E2E_KUBECONFIG")
pytestmark = pytest.mark.skipif(not KUBECONFIG, reason="set MIG_LABELER_E2E_KUBECONFIG to run against a cluster")
PREFIX = "e2e.mig-labeler.test/"


MANAGER = "mig-labeler-e2e"


@pytest.fixture
def kube():
    client = KubeClient(transport_for(KUBECONFIG), field_manager=MANAGER)
    yield client
    client.close()


@pytest.fixture
def node_name(kube):
    name = os.environ.get("MIG_LABELER_E2E_NODE")
    if not name:
        try:
            nodes = kube._call("GET", "nodes", "", "/api/v1/nodes")
        except ApiError as e:
            pytest.skip(f"cannot pick a node ({e}); set MIG_LABELER_E2E_NODE")
        name = nodes["items"][0]["metadata"]["name"]
    yield name
    _forget_our_manager(kube, name)


def _forget_our_manager(kube: KubeClient, node: str) -> None:
    """An apply of nothing leaves an empty managedFields entry behind; remove it too."""
    obj = kube._call("GET", "nodes", node, f"/api/v1/nodes/{node}")
    meta = obj["metadata"]
    entries = list(enumerate(meta.get("managedFields") or []))
    ops = [{"op": "remove", "path": f"/metadata/managedFields/{i}"}
           for i, entry in reversed(entries) if entry.get("manager") == MANAGER]
    if ops:
        ops.insert(0, {"op": "replace", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]})
        kube._call("PATCH", "nodes", node, f"/api/v1/nodes/{node}", body=ops,
                   content_type="application/json-patch+json")


def test_apply_adds_removes_only_its_own_keys_and_a_no_op_does_not_bump_the_version(kube, node_name):
    try:
        kube.apply_labels(node_name, {PREFIX + "a": "1", PREFIX + "b": "2"})
        state = kube.apply_labels(node_name, {PREFIX + "a": "1"})
        assert state.labels.get(PREFIX + "a") == "1" and PREFIX + "b" not in state.labels
        assert state.owned == {PREFIX + "a"}
        again = kube.apply_labels(node_name, {PREFIX + "a": "1"})
        assert again.resource_version == state.resource_version
    finally:
        final = kube.apply_labels(node_name, {})
    assert not any(k.startswith(PREFIX) for k in final.labels)


def test_watch_sees_our_own_change(kube, node_name):
    start = kube.read_node(node_name)
    try:
        kube.apply_labels(node_name, {PREFIX + "watched": "yes"})
        for kind, state in kube.watch_node(node_name, start.resource_version, 10):
            if state.labels.get(PREFIX + "watched") == "yes":
                assert kind == "MODIFIED"
                break
        else:
            pytest.fail("the watch ended without showing the change")
    finally:
        kube.apply_labels(node_name, {})


def test_nothing_of_ours_stays_in_managed_fields(kube, node_name):
    kube.apply_labels(node_name, {PREFIX + "x": "1"})
    kube.apply_labels(node_name, {})
    _forget_our_manager(kube, node_name)
    obj = kube._call("GET", "nodes", node_name, f"/api/v1/nodes/{node_name}")
    assert MANAGER not in {e.get("manager") for e in obj["metadata"].get("managedFields") or []}
