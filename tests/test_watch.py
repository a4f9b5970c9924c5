"""Event-driven rescans: the Node watch, mig-manager's state label, config-file swaps (offline, fast)."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading

import pytest

from mig_labeler.daemon.run_loop import next_wait
from mig_labeler.daemon.watch import ConfigFileWatcher
from mig_labeler.stop import Stop

from .conftest import CommandLine, make_config, make_daemon, wait_for_passes, wait_until, watching_daemon, write_fixture

NODE = "gpu-node-1"
ALL_1G = {"gpus": [{"model": "A100-SXM4-40GB", "count": 2, "mig": ["1g.5gb"] * 7}]}
ALL_3G = {"gpus": [{"model": "A100-SXM4-40GB", "count": 2, "mig": ["3g.20gb", "3g.20gb"]}]}
HALF_BUILT = {"gpus": [{"model": "A100-SXM4-40GB", "mig": ["3g.20gb"]}, {"model": "A100-SXM4-40GB", "mig": []}]}


@pytest.fixture
def running(kube_api, tmp_path):
    """A watching daemon in a thread with a one-hour interval: anything faster is event-driven."""
    node_file = write_fixture(tmp_path / "node.yaml", ALL_1G)
    with watching_daemon(kube_api, node_file) as daemon:
        assert kube_api.labels(NODE).get("nvidia.com/mig-1g.5gb.count") == "14" and len(kube_api.events) == 1
        yield daemon, node_file


def test_mig_config_success_publishes_the_new_layout_without_waiting(running, kube_api):
    daemon, node_file = running
    kube_api.edit_labels(NODE, {"nvidia.com/mig.config": "all-3g.20gb", "nvidia.com/mig.config.state": "pending"},
                         manager="nvidia-mig-manager")
    write_fixture(node_file, ALL_3G)
    kube_api.edit_labels(NODE, {"nvidia.com/mig.config.state": "success"}, manager="nvidia-mig-manager")
    wait_until(lambda: kube_api.labels(NODE).get("nvidia.com/mig-3g.20gb.count") == "4")  # latency: make bench
    assert "nvidia.com/mig-1g.5gb.count" not in kube_api.labels(NODE)


def test_pending_state_never_publishes_a_half_built_layout(running, kube_api):
    daemon, node_file = running
    before = kube_api.labels(NODE)
    passes = daemon.passes_done
    kube_api.edit_labels(NODE, {"nvidia.com/mig.config": "all-3g.20gb", "nvidia.com/mig.config.state": "pending"},
                         manager="nvidia-mig-manager")
    wait_for_passes(daemon, passes + 1)  # it did rescan
    write_fixture(node_file, HALF_BUILT)  # mig-manager is halfway through
    daemon.wake.set()  # and again: still held
    wait_for_passes(daemon, passes + 2)
    after = kube_api.labels(NODE)
    assert {k: v for k, v in after.items() if not k.startswith("nvidia.com/mig.config")} == \
        {k: v for k, v in before.items() if not k.startswith("nvidia.com/mig.config")}
    assert daemon.metrics.registry.get_sample_value("mig_labeler_paused", {"reason": "mig.config.state=pending"}) == 1


def test_a_hand_edited_owned_label_is_restored_by_the_watch(running, kube_api):
    """Restored without waiting for the one-hour interval; how fast is measured in `make bench`."""
    kube_api.edit_labels(NODE, {"nvidia.com/gpu.product": "Tesla-K80", "nvidia.com/mig-1g.5gb.count": None})
    wait_until(lambda: kube_api.labels(NODE).get("nvidia.com/gpu.product") == "NVIDIA-A100-SXM4-40GB"
               and kube_api.labels(NODE).get("nvidia.com/mig-1g.5gb.count") == "14")


def test_steady_state_with_the_watch_sends_no_requests_per_pass(running, kube_api):
    daemon, _ = running
    before = len(kube_api.log)
    for _ in range(20):
        assert not daemon.run_pass().wrote
    assert len(kube_api.log) == before


def test_watch_resumes_from_the_last_version_after_a_dropped_stream(running, kube_api):
    daemon, _ = running
    watches = len(kube_api.watches())
    kube_api.break_watches()
    wait_until(lambda: len(kube_api.watches()) > watches and kube_api.open_watches == 1)
    resumed = kube_api.watches()[-1]
    assert resumed.query["resourceVersion"] != ["0"]
    assert daemon.node.watcher.relists == 1
    kube_api.edit_labels(NODE, {"nvidia.com/gpu.count": "1"})
    wait_until(lambda: kube_api.labels(NODE)["nvidia.com/gpu.count"] == "2")


def test_watch_relists_after_410_gone(running, kube_api):
    daemon, _ = running
    kube_api.add_node("another-node")  # the cluster moves on; our watch's version falls behind
    kube_api.compact()
    kube_api.break_watches()
    wait_until(lambda: daemon.node.watcher.relists == 2 and kube_api.open_watches == 1)
    kube_api.edit_labels(NODE, {"nvidia.com/gpu.count": "1"})
    wait_until(lambda: kube_api.labels(NODE)["nvidia.com/gpu.count"] == "2")


def test_without_watch_permission_it_polls_and_says_so_once(kube_api, tmp_path, caplog):
    kube_api.forbidden.add(("watch", "nodes"))
    daemon = make_daemon(kube_api, write_fixture(tmp_path / "n.yaml", ALL_1G), sleep_interval=3600.0, watch=True)
    thread = threading.Thread(target=daemon.run_forever, daemon=True)
    thread.start()
    wait_until(lambda: not daemon.node.watcher.available)
    wait_for_passes(daemon, 1)  # the loop's own first pass is over; it now waits for an hour
    gets = sum(1 for r in kube_api.log if r.verb == "get")
    daemon.run_pass()
    assert sum(1 for r in kube_api.log if r.verb == "get") == gets + 1  # polling: one GET per pass
    daemon.stop.request()
    thread.join(timeout=5)
    assert sum("no permission to watch" in r.message for r in caplog.records) == 1


def test_config_map_symlink_swap_is_detected(tmp_path):
    """The kubelet updates a ConfigMap volume by pointing ..data at a new timestamped directory."""
    old, new = tmp_path / "..2026_11_24_01", tmp_path / "..2026_11_24_02"
    old.mkdir()
    new.mkdir()
    (old / "config.yaml").write_text("version: v1\nflags: {migStrategy: single}\n")
    (new / "config.yaml").write_text("version: v1\nflags: {migStrategy: mixed}\n")
    os.symlink(old.name, tmp_path / "..data")
    os.symlink("..data/config.yaml", tmp_path / "config.yaml")
    changes = []

    class Listener:
        def file_changed(self, path):
            changes.append(1)

    watcher = ConfigFileWatcher(str(tmp_path / "config.yaml"), Listener(), Stop())
    assert not watcher.check()
    os.symlink(new.name, tmp_path / "..data_tmp")
    os.replace(tmp_path / "..data_tmp", tmp_path / "..data")
    assert watcher.check() and changes == [1]
    assert not watcher.check()


def test_config_file_change_reloads_the_running_daemon(kube_api, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("version: v1\nflags: {migStrategy: mixed}\n")
    node_file = write_fixture(tmp_path / "n.yaml", ALL_1G)
    from mig_labeler.text_files import load_config_file

    class ConfigFileOnly(CommandLine):  # what a reload reads: the config file again
        def read(self):
            return dataclasses.replace(self.config, mig_strategy=load_config_file(str(config)).mig_strategy)

    daemon = make_daemon(kube_api, node_file, command_line=ConfigFileOnly(
        make_config("mixed", fixture=str(node_file), node_name=NODE, sleep_interval=3600.0, config_file=str(config))))
    thread = threading.Thread(target=daemon.run_forever, daemon=True)
    thread.start()
    wait_until(lambda: kube_api.labels(NODE).get("nvidia.com/mig.strategy") == "mixed")
    config.write_text("version: v1\nflags: {migStrategy: single}\n")
    wait_until(lambda: kube_api.labels(NODE).get("nvidia.com/mig.strategy") == "single")
    daemon.stop.request()
    thread.join(timeout=5)


def test_a_pending_mig_mode_shortens_the_next_wait(kube_api, tmp_path):
    doc = {"gpus": [{"model": "H100-SXM5-80GB", "mig_mode": {"current": 0, "pending": 1}}]}
    daemon = make_daemon(kube_api, write_fixture(tmp_path / "n.yaml", doc), sleep_interval=60.0)
    assert next_wait(60.0, daemon.run_pass().settling) == 5.0
    write_fixture(tmp_path / "n.yaml", {"gpus": [{"model": "H100-SXM5-80GB", "mig": ["7g.80gb"]}]})
    assert next_wait(60.0, daemon.run_pass().settling) == 60.0


def watch_sample(daemon, name: str, watch: str = "node") -> float | None:
    return daemon.metrics.registry.get_sample_value(name, {"watch": watch})


def test_a_watch_answered_by_a_login_page_is_one_warning_a_gauge_and_a_line_when_it_is_back(running, kube_api,
                                                                                             caplog):
    """A proxy answers every reconnect with 200 text/html: the daemon once said nothing (DEBUG),
    stayed ready and counted no error while it could not see its Node."""
    daemon, _ = running
    caplog.set_level(logging.INFO, logger="mig_labeler")
    assert watch_sample(daemon, "mig_labeler_watch_up") == 1
    kube_api.garble_next(4, method="GET")
    kube_api.break_watches()
    wait_until(lambda: watch_sample(daemon, "mig_labeler_watch_failures_total") == 5)  # the break, 4 pages
    assert watch_sample(daemon, "mig_labeler_watch_up") == 0
    blind = [r for r in caplog.records if "keeps failing" in r.getMessage()]
    assert len(blind) == 1 and blind[0].levelname == "WARNING"
    assert "is text/html; charset=utf-8, not a watch stream: a proxy or a login page?" in blind[0].getMessage()
    assert "reads the Node with a GET instead" in blind[0].getMessage()
    kube_api.edit_labels(NODE, {"nvidia.com/gpu.count": "1"})  # an event for the watch once it is back
    wait_until(lambda: kube_api.labels(NODE)["nvidia.com/gpu.count"] == "2")
    wait_until(lambda: watch_sample(daemon, "mig_labeler_watch_up") == 1)
    assert any(r.getMessage() == f"the watch of node {NODE} is back after 5 failed reconnects" for r in caplog.records)
