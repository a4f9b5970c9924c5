"""End-to-end passes: fake NVML (fixture files) + real kubernetes client + fake API server + fake clock."""

from __future__ import annotations

import dataclasses
import random
import threading
import urllib.request

import pytest

from mig_labeler.config import MigStrategy
from mig_labeler.daemon.health import HealthServer

from .conftest import (
    FOREIGN,
    STARTED_AT,
    CommandLine,
    FakeClock,
    fixture_path,
    make_config,
    make_daemon,
    reload_with,
    reloadable_daemon,
    wait_until,
    write_fixture,
)

NODE = "gpu-node-1"
LAYOUT_A = {"machine_type": "NVIDIA DGX A100",
            "gpus": [{"model": "A100-SXM4-40GB", "count": 2, "mig": ["1g.5gb"] * 7}]}
LAYOUT_B = {"machine_type": "NVIDIA DGX A100",
            "gpus": [{"model": "A100-SXM4-40GB", "count": 2, "mig": ["3g.20gb", "3g.20gb"]}]}
MIG_OFF = {"machine_type": "NVIDIA DGX A100", "gpus": [{"model": "A100-SXM4-40GB", "count": 2}]}


@pytest.fixture
def node_file(tmp_path):
    return write_fixture(tmp_path / "node.yaml", LAYOUT_A)


def ours(labels: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if k not in FOREIGN}


def with_strategy(daemon, command_line, strategy: str) -> None:
    reload_with(daemon, command_line, mig_strategy=MigStrategy(strategy))


def test_first_pass_publishes_the_computed_labels_and_keeps_foreign_ones(kube_api):
    daemon = make_daemon(kube_api, fixture_path("dgx-a100-mixed"), no_timestamp=False)
    result = daemon.run_pass()
    assert result.ok and result.wrote
    live = kube_api.labels(NODE)
    assert {k: live[k] for k in FOREIGN} == FOREIGN
    assert live["nvidia.com/mig-3g.20gb.count"] == "4"
    assert live["nvidia.com/gfd.timestamp"] == "1700000000"


def test_stale_labels_are_removed_across_none_mixed_single_none(kube_api, node_file):
    daemon, command_line = reloadable_daemon(kube_api, node_file, strategy="none")
    seen = []
    for strategy in ("none", "mixed", "single", "none"):
        with_strategy(daemon, command_line, strategy)
        assert daemon.run_pass().ok
        live = kube_api.labels(NODE)
        seen.append(ours(live))
        assert {k: live[k] for k in FOREIGN} == FOREIGN
    assert not any(k.startswith("nvidia.com/mig-") for k in seen[0])
    assert "nvidia.com/mig-1g.5gb.count" in seen[1]
    assert not any(k.startswith("nvidia.com/mig-") for k in seen[2])
    assert seen[2]["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"
    assert seen[3] == seen[0]


def test_stale_profile_labels_go_after_a_mig_reconfiguration(kube_api, node_file):
    daemon = make_daemon(kube_api, node_file)
    daemon.run_pass()
    write_fixture(node_file, LAYOUT_B)
    daemon.run_pass()
    live = ours(kube_api.labels(NODE))
    assert live["nvidia.com/mig-3g.20gb.count"] == "4"
    assert not any(k.startswith("nvidia.com/mig-1g.5gb") for k in live)
    write_fixture(node_file, MIG_OFF)
    daemon.run_pass()
    live = ours(kube_api.labels(NODE))
    assert not any(k.startswith("nvidia.com/mig-") for k in live)
    assert live["nvidia.com/gpu.replicas"] == "1"


def test_a_label_edited_or_deleted_by_hand_is_restored_next_pass(kube_api, node_file):
    daemon = make_daemon(kube_api, node_file)
    daemon.run_pass()
    expected = kube_api.labels(NODE)
    kube_api.edit_labels(NODE, {"nvidia.com/gpu.product": "hand-edited", "nvidia.com/gpu.count": None})
    assert daemon.run_pass().wrote
    assert kube_api.labels(NODE) == expected


def test_steady_state_sends_no_writes_for_100_passes(kube_api, node_file):
    daemon = make_daemon(kube_api, node_file)
    daemon.run_pass()
    writes_before = len(kube_api.writes())
    requests_before = len(kube_api.log)
    for _ in range(100):
        assert not daemon.run_pass().wrote
    assert len(kube_api.writes()) == writes_before
    assert len(kube_api.log) - requests_before == 100  # one GET per pass, nothing else


def test_nvml_failure_keeps_the_last_good_labels_and_marks_not_ready(kube_api, node_file):
    daemon = make_daemon(kube_api, node_file)
    daemon.run_pass()
    good = kube_api.labels(NODE)
    write_fixture(node_file, LAYOUT_A | {"faults": [{"call": "nvmlDeviceGetAttributes", "gpu": 1,
                                                    "error": "NVML_ERROR_NOT_SUPPORTED"}]})
    result = daemon.run_pass()
    assert not result.ok and result.kind == "nvml_error"
    assert kube_api.labels(NODE) == good
    assert daemon.health.readiness()[0] is False
    write_fixture(node_file, LAYOUT_A | {"init_error": "NVML_ERROR_DRIVER_NOT_LOADED"})
    assert not daemon.run_pass().ok
    assert kube_api.labels(NODE) == good
    write_fixture(node_file, LAYOUT_A)  # the driver came back: picked up without a restart
    assert daemon.run_pass().ok and daemon.health.readiness()[0]


def test_transient_api_errors_are_retried_with_retry_after(kube_api, node_file):
    clock = FakeClock()
    daemon = make_daemon(kube_api, node_file, clock=clock)
    kube_api.fail_next(1, 429, retry_after=4)
    kube_api.fail_next(1, 503)
    assert daemon.run_pass().ok
    assert clock.slept[0] >= 4
    assert len(clock.slept) == 2


def test_retries_are_bounded_so_a_pass_never_hangs(kube_api, node_file):
    daemon = make_daemon(kube_api, node_file)
    kube_api.fail_next(50, 503)
    result = daemon.run_pass()
    assert not result.ok and result.kind == "api_error"
    assert len(kube_api.log) == 5


def test_fault_suite_30_percent_failures_over_200_passes(kube_api, node_file):
    rnd = random.Random(7)
    daemon, command_line = reloadable_daemon(kube_api, node_file)
    layouts = [LAYOUT_A, LAYOUT_B, MIG_OFF]
    strategies = ["mixed", "single", "none"]
    failed_passes = 0
    for i in range(200):
        if i % 10 == 0:
            write_fixture(node_file, layouts[rnd.randrange(3)])
            with_strategy(daemon, command_line, strategies[rnd.randrange(3)])
        if i % 37 == 0:
            kube_api.edit_labels(NODE, {"nvidia.com/gpu.count": "999"})
        for _ in range(3):
            if rnd.random() < 0.3:
                fault = rnd.choice([("s", 500), ("s", 503), ("s", 409), ("r", 429), ("d", 0)])
                if fault[0] == "d":
                    kube_api.drop_next()
                else:
                    kube_api.fail_next(1, fault[1], retry_after=1 if fault[0] == "r" else None)
        failed_passes += not daemon.run_pass().ok
    kube_api.faults.clear()
    assert daemon.run_pass().ok
    live = kube_api.labels(NODE)
    from mig_labeler.labels.desired import labels_for_topology

    want = labels_for_topology(daemon.source.read(), command_line.config, STARTED_AT).labels  # no timestamp
    assert ours(live) == want
    assert {k: live[k] for k in FOREIGN} == FOREIGN
    assert failed_passes < 200


def test_events_are_posted_on_change_and_rate_limited(kube_api, node_file):
    clock = FakeClock()
    daemon = make_daemon(kube_api, node_file, clock=clock)
    daemon.run_pass()
    write_fixture(node_file, LAYOUT_B)
    daemon.run_pass()  # second change within a minute: no second Event
    assert [e["reason"] for e in kube_api.events] == ["GPULabelsChanged"]
    assert kube_api.events[0]["involvedObject"] == {"apiVersion": "v1", "kind": "Node", "name": NODE,
                                                    "uid": f"uid-{NODE}"}
    clock.now += 61
    write_fixture(node_file, LAYOUT_A)
    daemon.run_pass()
    assert len(kube_api.events) == 2


def test_repeated_failures_post_a_warning_event(kube_api, node_file):
    daemon = make_daemon(kube_api, node_file)
    daemon.run_pass()
    write_fixture(node_file, LAYOUT_A | {"init_error": "NVML_ERROR_DRIVER_NOT_LOADED"})
    for _ in range(3):
        daemon.run_pass()
    warning = kube_api.events[-1]
    assert warning["reason"] == "GPULabelingFailed" and warning["type"] == "Warning"


def test_health_and_metrics_endpoints_answer_and_move(kube_api, node_file):
    daemon = make_daemon(kube_api, node_file)
    server = HealthServer(0, daemon.health, daemon.metrics.registry, host="127.0.0.1").start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert _get(f"{base}/healthz")[0] == 200
        assert _get(f"{base}/readyz")[0] == 503
        daemon.run_pass()
        daemon.run_pass()
        assert _get(f"{base}/readyz") == (200, "ok\n")
        metrics = _get(f"{base}/metrics")[1]
        assert 'mig_labeler_passes_total{result="success"} 2.0' in metrics
        assert 'mig_labeler_mig_devices{profile="1g.5gb"} 14.0' in metrics
        assert "mig_labeler_labels_written_total" in metrics
        assert "mig_labeler_last_success_timestamp_seconds 1.7e+09" in metrics
    finally:
        server.stop()


def test_full_gpu_utilization_is_exported(kube_api, tmp_path):
    daemon = make_daemon(kube_api, write_fixture(tmp_path / "n.yaml", MIG_OFF))
    daemon.run_pass()
    from prometheus_client import generate_latest

    assert 'mig_labeler_gpu_utilization_ratio{gpu="0"' in generate_latest(daemon.metrics.registry).decode()


def test_run_forever_stops_on_signal_and_reloads_on_hup(kube_api, node_file):
    daemon, command_line = reloadable_daemon(kube_api, node_file, sleep_interval=3600.0)
    thread = threading.Thread(target=daemon.run_forever)
    thread.start()
    wait_until(lambda: len(kube_api.writes()) == 1)
    command_line.config = dataclasses.replace(command_line.config, mig_strategy=MigStrategy.SINGLE)
    daemon.wake.request_reload()  # as the SIGHUP handler does
    wait_until(lambda: kube_api.labels(NODE).get("nvidia.com/mig.strategy") == "single")
    daemon.stop.request()
    thread.join(timeout=5)
    assert not thread.is_alive() and command_line.reads == 1


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_a_torn_fixture_read_fails_the_pass_but_not_the_daemon(kube_api, node_file):
    daemon = make_daemon(kube_api, node_file)
    daemon.run_pass()
    node_file.write_text("")  # read halfway through a rewrite
    result = daemon.run_pass()
    assert not result.ok and result.kind == "nvml_error"
    write_fixture(node_file, LAYOUT_A)
    assert daemon.run_pass().ok


def test_run_forever_survives_a_vanished_node(kube_api, node_file):
    daemon = make_daemon(kube_api, node_file, sleep_interval=3600.0, node_name="ghost")
    thread = threading.Thread(target=daemon.run_forever)
    thread.start()
    wait_until(lambda: daemon.metrics.passes.labels(result="error")._value.get() >= 1)
    assert thread.is_alive()
    daemon.stop.request()
    thread.join(timeout=5)


def test_daemon_logs_a_rejected_label_and_the_invalid_reason_once(kube_api, tmp_path, caplog):
    long_name = {"gpus": [{"name": "Very Long GPU Name " * 4, "memory_mib": 1, "compute_capability": [9, 0]}]}
    empty_mig = {"gpus": [{"model": "A100-SXM4-40GB", "mig": []}]}
    for doc, strategy in ((long_name, "none"), (empty_mig, "single")):
        daemon = make_daemon(kube_api, write_fixture(tmp_path / f"{strategy}.yaml", doc), strategy=strategy)
        daemon.run_pass()
        daemon.run_pass()
    messages = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("not publishing nvidia.com/gpu.product") for m in messages) == 1
    assert sum("MIG strategy single is INVALID" in m for m in messages) == 1


def test_the_timestamp_label_moves_on_a_configuration_reload(kube_api, node_file):
    clock = FakeClock()
    daemon, command_line = reloadable_daemon(kube_api, node_file, clock=clock, no_timestamp=False)
    daemon.run_pass()
    first = kube_api.labels(NODE)["nvidia.com/gfd.timestamp"]
    clock.now += 3600
    reload_with(daemon, command_line)
    daemon.run_pass()
    assert int(kube_api.labels(NODE)["nvidia.com/gfd.timestamp"]) == int(first) + 3600


def test_a_reload_requested_during_a_reload_is_not_lost(kube_api, node_file):
    """A SIGHUP (or a config-file change) that arrives while the previous reload runs must still
    lead to a reload: the loop once cleared the wake-up at the top and then slept for the interval."""
    config = make_config("mixed", fixture=str(node_file), node_name=NODE, sleep_interval=3600.0)

    class SecondSighupMidReload(CommandLine):
        def read(self):
            if self.reads == 0:
                daemon.wake.request_reload()  # the next SIGHUP, arriving mid-reload
            return super().read()

    command_line = SecondSighupMidReload(config)
    daemon = make_daemon(kube_api, node_file, command_line=command_line)
    thread = threading.Thread(target=daemon.run_forever)
    thread.start()
    wait_until(lambda: daemon.passes_done >= 1)
    daemon.wake.request_reload()
    wait_until(lambda: command_line.reads == 2)
    daemon.stop.request()
    thread.join(timeout=30)
    assert not thread.is_alive()
