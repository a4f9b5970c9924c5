"""Sole ownership of our labels (issue: stale MIG labels after migrating from GFD).

The fake API server shares a key between managers exactly as a real kube-apiserver does (checked
against one, see tests/fakes/kube_api.py): applying the value an Update writer (nfd-master, kubectl)
already set makes the key co-owned, and dropping it later removes only our claim. mig-labeler must
therefore take the other claims off the keys it computes, so that its removals happen.
"""

from __future__ import annotations

import logging

from mig_labeler.config import MigStrategy
from mig_labeler.labels.desired import labels_for_topology

from .conftest import (
    FOREIGN,
    fixture_path,
    make_config,
    make_daemon,
    reload_with,
    reloadable_daemon,
    wait_until,
    watching_daemon,
    write_fixture,
)

NODE = "gpu-node-1"
MIG_PREFIXES = ("nvidia.com/mig-3g.20gb.", "nvidia.com/mig-7g.40gb.", "nvidia.com/mig-4g.20gb.",
                "nvidia.com/mig-2g.10gb.")


def gfd_labels(fixture: str, strategy: str) -> dict[str, str]:
    """What GFD (through nfd-master) left on the node: exactly the values mig-labeler computes."""
    daemon_like = make_config(strategy, fixture=str(fixture_path(fixture)))
    from mig_labeler.sources import open_source

    return labels_for_topology(open_source(daemon_like.fixture, None).read(), daemon_like, 0).labels


def owners_of(kube_api, key: str) -> set[str]:
    node = kube_api.nodes[NODE]
    return {manager for (manager, _), keys in node.owners.items() if key in keys}


def migrated_node(kube_api, fixture: str = "dgx-a100-mixed", strategy: str = "mixed") -> dict[str, str]:
    gfd = gfd_labels(fixture, strategy)
    kube_api.edit_labels(NODE, gfd, manager="nfd-master")
    return gfd


def test_adoption_leaves_every_computed_key_owned_by_mig_labeler_alone(kube_api, tmp_path):
    gfd = migrated_node(kube_api)
    daemon = make_daemon(kube_api, fixture_path("dgx-a100-mixed"))
    result = daemon.run_pass()
    assert result.ok and set(result.plan.adopt) == set(gfd)
    assert kube_api.labels(NODE) == FOREIGN | gfd
    assert {k: owners_of(kube_api, k) for k in gfd} == {k: {"mig-labeler"} for k in gfd}
    assert owners_of(kube_api, "nvidia.com/mig.config") == {"kubelet"}  # never touched


def test_after_adoption_a_mig_layout_change_removes_the_stale_mig_labels(kube_api, tmp_path):
    migrated_node(kube_api)
    node_file = write_fixture(tmp_path / "n.yaml", _doc("dgx-a100-mixed"))
    daemon = make_daemon(kube_api, node_file)
    daemon.run_pass()
    write_fixture(node_file, _doc("dgx-a100-7x1g"))
    result = daemon.run_pass()
    live = kube_api.labels(NODE)
    assert not [k for k in live if k.startswith(MIG_PREFIXES)]
    assert live == FOREIGN | gfd_labels("dgx-a100-7x1g", "mixed")
    assert len(result.plan.remove) == 52
    assert daemon.run_pass().plan.empty


def test_after_adoption_a_switch_to_single_removes_every_mig_key(kube_api, tmp_path):
    migrated_node(kube_api)
    daemon, command_line = reloadable_daemon(kube_api, fixture_path("dgx-a100-mixed"))
    daemon.run_pass()
    reload_with(daemon, command_line, mig_strategy=MigStrategy.SINGLE)
    daemon.run_pass()
    live = kube_api.labels(NODE)
    assert not [k for k in live if k.startswith("nvidia.com/mig-")]
    assert live["nvidia.com/mig.strategy"] == "single"


def test_kubectl_label_with_the_same_value_then_our_drop_removes_it(kube_api, tmp_path):
    """A same-value update is a no-op on a real server: it claims nothing, and the drop works."""
    node_file = write_fixture(tmp_path / "n.yaml", _doc("dgx-a100-mixed"))
    daemon = make_daemon(kube_api, node_file)
    daemon.run_pass()
    kube_api.edit_labels(NODE, {"nvidia.com/mig-3g.20gb.count": "4"}, manager="kubectl-label")
    assert owners_of(kube_api, "nvidia.com/mig-3g.20gb.count") == {"mig-labeler"}
    write_fixture(node_file, _doc("dgx-a100-7x1g"))
    daemon.run_pass()
    assert "nvidia.com/mig-3g.20gb.count" not in kube_api.labels(NODE)


def test_kubectl_label_away_and_back_then_our_drop_removes_it(kube_api, tmp_path):
    """kubectl takes the key (a different value), then sets our value back: it alone owns it.
    Our next pass adopts it (shared on apply), takes the claim, and a later drop removes it."""
    node_file = write_fixture(tmp_path / "n.yaml", _doc("dgx-a100-mixed"))
    daemon = make_daemon(kube_api, node_file)
    daemon.run_pass()
    kube_api.edit_labels(NODE, {"nvidia.com/mig-3g.20gb.count": "5"}, manager="kubectl-label")
    kube_api.edit_labels(NODE, {"nvidia.com/mig-3g.20gb.count": "4"}, manager="kubectl-label")
    assert owners_of(kube_api, "nvidia.com/mig-3g.20gb.count") == {"kubectl-label"}
    assert daemon.run_pass().plan.adopt == ("nvidia.com/mig-3g.20gb.count",)
    assert owners_of(kube_api, "nvidia.com/mig-3g.20gb.count") == {"mig-labeler"}
    write_fixture(node_file, _doc("dgx-a100-7x1g"))
    daemon.run_pass()
    assert "nvidia.com/mig-3g.20gb.count" not in kube_api.labels(NODE)


def test_keys_of_other_tools_keep_their_owners_even_with_our_values(kube_api, tmp_path):
    """mig-manager's and the operator's keys are never released, even if we were to compute them."""
    daemon = make_daemon(kube_api, fixture_path("dgx-a100-mixed"))
    daemon.run_pass()
    assert owners_of(kube_api, "nvidia.com/gpu.deploy.device-plugin") == {"kubelet"}
    assert owners_of(kube_api, "kubernetes.io/hostname") == {"kubelet"}


def test_a_removal_that_does_not_happen_is_reported_not_claimed(kube_api, tmp_path, caplog):
    """If the claims cannot be released (here: an admission policy answers 422), the shared keys
    stay; the log, the Event and the metrics say what really happened."""
    caplog.set_level(logging.INFO, logger="mig_labeler")
    migrated_node(kube_api)
    node_file = write_fixture(tmp_path / "n.yaml", _doc("dgx-a100-mixed"))
    daemon = make_daemon(kube_api, node_file)
    kube_api.fail_next(1, 422, method="PATCH")  # the release; the apply still goes through
    daemon.run_pass()
    write_fixture(node_file, _doc("dgx-a100-7x1g"))
    kube_api.fail_next(1, 422, method="PATCH")
    result = daemon.run_pass()
    stuck = [k for k in kube_api.labels(NODE) if k.startswith(MIG_PREFIXES)]
    assert len(stuck) == 52 and result.ok
    messages = [r.getMessage() for r in caplog.records]
    warning = next(m for m in messages if m.startswith("52 labels mig-labeler dropped are still on node"))
    assert "nvidia.com/mig-3g.20gb.count (nfd-master)" in warning
    updated = [m for m in messages if m.startswith("labels updated on node")]
    assert updated[-1].endswith("(0 added, 1 changed, 0 removed)")
    assert daemon.metrics.labels_removed._value.get() == 0
    assert kube_api.events[-1]["message"] == ("mig-labeler: MIG layout 10×1g.5gb, 6×2g.10gb, 4×3g.20gb, 2×4g.20gb, "
                                             "2×7g.40gb → 56×1g.5gb; mig-1g.5gb.count → 56")


def test_the_watch_restores_labels_that_nfd_master_removes_on_gfd_uninstall(kube_api, tmp_path):
    """Uninstalling GFD deletes its NodeFeature, and nfd-master removes every label it applied,
    adopted ones included. The watching daemon puts them back (how fast: make bench)."""
    gfd = migrated_node(kube_api)
    with watching_daemon(kube_api, fixture_path("dgx-a100-mixed")):
        kube_api.edit_labels(NODE, dict.fromkeys(gfd), manager="nfd-master")
        wait_until(lambda: kube_api.labels(NODE) == FOREIGN | gfd)


def _doc(name: str) -> dict:
    import yaml

    return yaml.safe_load(fixture_path(name).read_text())
