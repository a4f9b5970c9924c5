"""The real kubernetes client against the fake API server: patch type, ownership, error mapping."""

from __future__ import annotations

import pytest

from mig_labeler.errors import ApiConflict, ApiError, ApiTransient, NodeNotFound
from mig_labeler.kube.connection import connect

from .conftest import FOREIGN


@pytest.fixture
def kube(kube_api):
    client = connect(None, host=kube_api.url)
    yield client
    client.close()


def test_apply_uses_server_side_apply_with_our_field_manager(kube, kube_api):
    kube.apply_labels("gpu-node-1", {"nvidia.com/gpu.count": "8"})
    patch = kube_api.writes()[-1]
    assert patch.content_type == "application/apply-patch+yaml"
    assert patch.query == {"fieldManager": ["mig-labeler"], "force": ["true"]}


def test_keys_dropped_from_the_applied_set_are_removed_and_foreign_ones_kept(kube, kube_api):
    kube.apply_labels("gpu-node-1", {"nvidia.com/gpu.count": "8", "nvidia.com/mig-1g.5gb.count": "56"})
    state = kube.apply_labels("gpu-node-1", {"nvidia.com/gpu.count": "8"})
    assert kube_api.labels("gpu-node-1") == FOREIGN | {"nvidia.com/gpu.count": "8"}
    assert state.owned == {"nvidia.com/gpu.count"}


def test_reapplying_the_same_labels_does_not_bump_resource_version(kube, kube_api):
    kube.apply_labels("gpu-node-1", {"nvidia.com/gpu.count": "8"})
    before = kube_api.resource_version("gpu-node-1")
    kube.apply_labels("gpu-node-1", {"nvidia.com/gpu.count": "8"})
    assert kube_api.resource_version("gpu-node-1") == before


def test_missing_node_is_node_not_found(kube):
    with pytest.raises(NodeNotFound, match='node "ghost" not found'):
        kube.read_node("ghost")


def test_forbidden_names_the_missing_rbac_verb(kube, kube_api):
    kube_api.forbidden.add(("patch", "nodes"))
    with pytest.raises(ApiError, match="needs RBAC verb 'patch nodes'"):
        kube.apply_labels("gpu-node-1", {"nvidia.com/gpu.count": "8"})


def test_invalid_label_is_a_non_retried_422(kube):
    with pytest.raises(ApiError, match="HTTP 422") as err:
        kube.apply_labels("gpu-node-1", {"nvidia.com/gpu.product": "A100 SXM4"})
    assert not isinstance(err.value, ApiTransient)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_transient(kube, kube_api, status):
    kube_api.fail_next(1, status)
    with pytest.raises(ApiTransient):
        kube.read_node("gpu-node-1")


def test_429_carries_retry_after(kube, kube_api):
    kube_api.fail_next(1, 429, retry_after=7)
    with pytest.raises(ApiTransient) as err:
        kube.read_node("gpu-node-1")
    assert err.value.retry_after == 7.0


def test_409_is_a_conflict(kube, kube_api):
    kube_api.fail_next(1, 409)
    with pytest.raises(ApiConflict):
        kube.apply_labels("gpu-node-1", {"nvidia.com/gpu.count": "8"})


def test_dropped_connection_is_transient(kube, kube_api):
    kube_api.drop_next()
    with pytest.raises(ApiTransient, match="cannot reach the API server at 127.0.0.1:.*closed without a response"):
        kube.read_node("gpu-node-1")


def test_fake_server_rejects_unknown_patch_types_and_apply_without_manager(kube_api):
    import urllib.request

    def patch(content_type: str, query: str = "") -> int:
        request = urllib.request.Request(f"{kube_api.url}/api/v1/nodes/gpu-node-1{query}", data=b"{}",
                                         method="PATCH", headers={"Content-Type": content_type})
        try:
            return urllib.request.urlopen(request).status
        except urllib.error.HTTPError as e:
            return e.code

    assert patch("application/json") == 415
    assert patch("application/apply-patch+yaml") == 400
    assert patch("application/merge-patch+json") == 200


def test_fake_server_answers_stale_resource_version_with_409(kube_api):
    import json
    import urllib.request

    body = json.dumps({"metadata": {"resourceVersion": "1", "labels": {}}}).encode()
    request = urllib.request.Request(f"{kube_api.url}/api/v1/nodes/gpu-node-1", data=body, method="PUT",
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request)
    assert err.value.code == 409


# -- the fake's server-side apply ownership, pinned to what a real kube-apiserver did -------------
def _owners(kube_api, key):
    return {m for (m, _), keys in kube_api.nodes["gpu-node-1"].owners.items() if key in keys}


def test_a_same_value_apply_shares_the_key_and_a_drop_then_leaves_it(kube, kube_api):
    kube_api.edit_labels("gpu-node-1", {"nvidia.com/gpu.count": "8"}, manager="nfd-master")
    state = kube.apply_labels("gpu-node-1", {"nvidia.com/gpu.count": "8"})
    assert _owners(kube_api, "nvidia.com/gpu.count") == {"nfd-master", "mig-labeler"}
    assert state.shared == {"nvidia.com/gpu.count"} and state.owners("nvidia.com/gpu.count") == ["nfd-master"]
    kube.apply_labels("gpu-node-1", {})
    assert kube_api.labels("gpu-node-1")["nvidia.com/gpu.count"] == "8"
    assert _owners(kube_api, "nvidia.com/gpu.count") == {"nfd-master"}


def test_force_takes_over_only_a_differing_value(kube, kube_api):
    kube_api.edit_labels("gpu-node-1", {"nvidia.com/gpu.count": "7", "nvidia.com/gpu.family": "ampere"},
                         manager="nfd-master")
    kube.apply_labels("gpu-node-1", {"nvidia.com/gpu.count": "8", "nvidia.com/gpu.family": "ampere"})
    assert _owners(kube_api, "nvidia.com/gpu.count") == {"mig-labeler"}
    assert _owners(kube_api, "nvidia.com/gpu.family") == {"mig-labeler", "nfd-master"}


def test_an_update_owns_what_it_changes_and_a_same_value_update_changes_nothing(kube, kube_api):
    kube.apply_labels("gpu-node-1", {"nvidia.com/gpu.count": "8"})
    version = kube_api.resource_version("gpu-node-1")
    kube_api.edit_labels("gpu-node-1", {"nvidia.com/gpu.count": "8"})
    assert kube_api.resource_version("gpu-node-1") == version
    assert _owners(kube_api, "nvidia.com/gpu.count") == {"mig-labeler"}
    kube_api.edit_labels("gpu-node-1", {"nvidia.com/gpu.count": "9"})
    assert _owners(kube_api, "nvidia.com/gpu.count") == {"kubectl-label"}


def test_releasing_claims_changes_ownership_not_labels_and_needs_a_fresh_version(kube, kube_api):
    kube_api.edit_labels("gpu-node-1", {"nvidia.com/gpu.count": "8"}, manager="nfd-master")
    state = kube.apply_labels("gpu-node-1", {"nvidia.com/gpu.count": "8"})
    kube_api.edit_labels("gpu-node-1", {"unrelated": "x"})
    with pytest.raises(ApiConflict):
        kube.release_claims(state, frozenset({"nvidia.com/gpu.count"}))
    fresh = kube.read_node("gpu-node-1")
    released = kube.release_claims(fresh, frozenset({"nvidia.com/gpu.count"}))
    assert released is not None and released.labels == fresh.labels
    assert int(released.resource_version) > int(fresh.resource_version)
    assert _owners(kube_api, "nvidia.com/gpu.count") == {"mig-labeler"}
    assert kube.release_claims(released, frozenset({"nvidia.com/gpu.count"})) is None


def test_a_time_limit_counts_from_the_given_start(kube_api):
    """--oneshot-timeout and diff's --timeout count from the process's start (start-up included):
    a limit already spent when the client is built sends nothing and says so."""
    import time

    spent = connect(None, host=kube_api.url, within=5.0, since=time.monotonic() - 10)
    before = len(kube_api.log)
    with pytest.raises(ApiError, match="gave up: the time limit of 5 s ran out"):
        spent.read_node("gpu-node-1")
    assert len(kube_api.log) == before
    fresh = connect(None, host=kube_api.url, within=5.0, since=time.monotonic())
    with pytest.raises(NodeNotFound):
        fresh.read_node("no-such-node")
