"""Optional tier: the publisher against a real API server (``make test-e2e``).

Runs only when ``MIG_LABELER_E2E_KUBECONFIG`` names a kubeconfig; ``MIG_LABELER_E2E_NODE`` picks
the Node (default: the first one). It uses its own field manager and label keys under
``e2e.mig-labeler.test/``, so it cannot disturb a mig-labeler running on that node, and it removes
what it wrote.
"""

from __future__ import annotations

import os

import pytest

from mig_labeler.kube import KubeClient, api_client

KUBECONFIG = os.environ.get("MIG_LABELER_E2E_KUBECONFIG")
pytestmark = pytest.mark.skipif(not KUBECONFIG, reason="set MIG_LABELER_E2E_KUBECONFIG to run against a cluster")
PREFIX = "e2e.mig-labeler.test/"


@pytest.fixture
def kube():
    client = KubeClient(api_client(KUBECONFIG), field_manager="mig-labeler-e2e")
    yield client
    client.close()


@pytest.fixture
def node_name(kube):
    name = os.environ.get("MIG_LABELER_E2E_NODE")
    if name:
        return name
    nodes = kube._call("GET", "nodes", "", "/api/v1/nodes")
    return nodes["items"][0]["metadata"]["name"]


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
