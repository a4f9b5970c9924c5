"""Verifying a node's MIG layout against the config mig-manager was asked to apply, and watching
mig-manager's progress: the label, the Events, the gauges, from a file or a ConfigMap in another
namespace read through the API (with no more RBAC than get and watch on that one object)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mig_labeler.daemon.root import Daemon
from mig_labeler.text_files import load_mig_parted

from .conftest import (
    WAIT_LIMIT,
    FakeClock,
    make_daemon,
    settle,
    wait_for_passes,
    wait_until,
    watching_daemon,
    write_fixture,
    write_kubeconfig,
)
from .test_cli import run_main

CONFIG = Path(__file__).parent / "fixtures" / "mig-parted" / "config.yaml"
NODE = "gpu-node-1"
APPLIED = "nvidia.com/mig.config.applied"
REQUESTED, STATE = "nvidia.com/mig.config", "nvidia.com/mig.config.state"
MIG_MANAGER = "nvidia-mig-manager"
A100_BALANCED = {"gpus": [{"model": "A100-SXM4-40GB", "count": 2, "mig": ["1g.5gb", "1g.5gb", "2g.10gb", "3g.20gb"]}]}
A100_7X1G = {"gpus": [{"model": "A100-SXM4-40GB", "count": 2, "mig": ["1g.5gb"] * 7}]}
CM_NAMESPACE, CM_NAME = "gpu-operator", "default-mig-parted-config"


def sample(daemon: Daemon, name: str, **labels: str) -> float | None:
    return daemon.metrics.registry.get_sample_value(name, labels)


def events(kube_api, reason: str) -> list[tuple[str, str]]:
    return [(e["type"], e["message"]) for e in kube_api.events if e["reason"] == reason]


def ask(kube_api, config: str = "all-balanced", state: str = "success") -> None:
    """What mig-manager leaves on the Node once it is done: the config and its state."""
    kube_api.edit_labels(NODE, {REQUESTED: config, STATE: state}, manager=MIG_MANAGER)


def verifying_daemon(kube_api, tmp_path, layout: dict, state: str = "success", clock: FakeClock | None = None,
                     **overrides):
    node_file = write_fixture(tmp_path / "node.yaml", layout)
    ask(kube_api, state=state)
    overrides.setdefault("mig_parted", load_mig_parted(str(CONFIG)))
    return make_daemon(kube_api, node_file, clock=clock, **overrides), node_file


# -- the layout against the config -------------------------------------------------------------
def test_a_node_whose_layout_matches_is_labelled_in_its_first_pass(kube_api, tmp_path):
    daemon, _ = verifying_daemon(kube_api, tmp_path, A100_BALANCED)
    daemon.run_pass()
    labels = kube_api.labels(NODE)
    assert labels[APPLIED] == "all-balanced"
    assert labels[STATE] == "success"  # mig-manager's, untouched
    assert sample(daemon, "mig_labeler_mig_config_match", config="all-balanced") == 1
    assert not events(kube_api, "MIGLayoutMismatch")


def test_a_layout_that_drifts_loses_the_label_with_one_warning_event(kube_api, tmp_path):
    daemon, node_file = verifying_daemon(kube_api, tmp_path, A100_BALANCED)
    daemon.run_pass()
    write_fixture(node_file, A100_7X1G)  # repartitioned by hand; mig.config and its state still say success
    daemon.run_pass()
    daemon.run_pass()
    assert APPLIED not in kube_api.labels(NODE)
    assert events(kube_api, "MIGLayoutMismatch") == [
        ("Warning", "mig-labeler: GPUs 0, 1: has 7×1g.5gb, all-balanced wants 2×1g.5gb + 1×2g.10gb + 1×3g.20gb")]
    assert sample(daemon, "mig_labeler_mig_config_match", config="all-balanced") == 0


def test_the_match_gauge_is_absent_when_nothing_is_compared(kube_api, tmp_path):
    daemon, _ = verifying_daemon(kube_api, tmp_path, A100_BALANCED)
    daemon.run_pass()
    kube_api.edit_labels(NODE, {REQUESTED: None, STATE: None}, manager=MIG_MANAGER)
    daemon.run_pass()
    assert sample(daemon, "mig_labeler_mig_config_match", config="all-balanced") is None
    assert APPLIED not in kube_api.labels(NODE)
    off, _ = verifying_daemon(kube_api, tmp_path, A100_BALANCED, mig_parted=None)
    off.run_pass()
    assert "mig_labeler_mig_config_match" not in scrape(off)
    assert APPLIED not in kube_api.labels(NODE)


def scrape(daemon: Daemon) -> str:
    from prometheus_client import generate_latest

    return "\n".join(line for line in generate_latest(daemon.metrics.registry).decode().splitlines()
                     if not line.startswith("#"))


def test_nothing_is_verified_while_mig_manager_is_not_done(kube_api, tmp_path):
    daemon, _ = verifying_daemon(kube_api, tmp_path, A100_7X1G, state="pending")
    daemon.run_pass()
    assert APPLIED not in kube_api.labels(NODE)
    assert not events(kube_api, "MIGLayoutMismatch")


def test_a_new_config_that_mig_manager_has_not_answered_is_not_a_mismatch(kube_api, tmp_path):
    """The admin relabels mig.config; until mig-manager sets pending, the old 'success' is about
    the old config: no Event, and the applied label goes (the layout is not verified for it)."""
    clock = FakeClock()
    kube_api.clock = clock
    daemon, _ = verifying_daemon(kube_api, tmp_path, A100_BALANCED, clock=clock)
    daemon.run_pass()
    assert kube_api.labels(NODE)[APPLIED] == "all-balanced"
    clock.now += 30
    kube_api.edit_labels(NODE, {REQUESTED: "all-1g.5gb"}, manager="kubectl-label")
    daemon.run_pass()
    assert APPLIED not in kube_api.labels(NODE)
    assert not events(kube_api, "MIGLayoutMismatch")
    assert sample(daemon, "mig_labeler_mig_config_match", config="all-1g.5gb") is None
    assert sample(daemon, "mig_labeler_mig_config_state_seconds", state="unanswered") == 0


def test_the_config_file_names_no_such_config_is_a_mismatch(kube_api, tmp_path):
    daemon, _ = verifying_daemon(kube_api, tmp_path, A100_BALANCED)
    ask(kube_api, config="all-3g.40gb")
    daemon.run_pass()
    assert events(kube_api, "MIGLayoutMismatch")[0][1].startswith(
        "mig-labeler: nvidia.com/mig.config=all-3g.40gb names no config in the mig-parted config (it has all-1g.5gb")
    assert sample(daemon, "mig_labeler_mig_config_match", config="all-3g.40gb") == 0


# -- mig-manager's progress ---------------------------------------------------------------------
def test_a_pending_state_that_lasts_is_stuck_once_with_one_event(kube_api, tmp_path):
    clock = FakeClock()
    kube_api.clock = clock
    daemon, _ = verifying_daemon(kube_api, tmp_path, A100_BALANCED, state="pending", clock=clock)
    daemon.run_pass()
    assert sample(daemon, "mig_labeler_mig_config_state_seconds", state="pending") == 0
    assert sample(daemon, "mig_labeler_mig_config_stuck") == 0
    clock.now += 14 * 60
    daemon.run_pass()
    assert sample(daemon, "mig_labeler_mig_config_state_seconds", state="pending") == 14 * 60
    assert sample(daemon, "mig_labeler_mig_config_stuck") == 0 and not events(kube_api, "MIGConfigStuck")
    clock.now += 2 * 60
    daemon.run_pass()
    daemon.run_pass()
    assert sample(daemon, "mig_labeler_mig_config_stuck") == 1
    assert events(kube_api, "MIGConfigStuck") == [
        ("Warning", "mig-labeler: nvidia.com/mig.config.state has been pending for 16 min "
                    "(nvidia.com/mig.config=all-balanced): mig-manager has not finished; its log says why (usually "
                    "GPU clients it could not stop, or a reboot in the middle of the change)")]
    ask(kube_api)  # mig-manager got there in the end
    daemon.run_pass()
    assert sample(daemon, "mig_labeler_mig_config_stuck") == 0
    assert sample(daemon, "mig_labeler_mig_config_state_seconds", state="pending") is None
    assert kube_api.labels(NODE)[APPLIED] == "all-balanced"


def test_an_old_managed_fields_time_does_not_make_a_fresh_change_look_stuck(kube_api, tmp_path):
    """kube-apiserver moves an Update manager's managedFields time only when the set of fields it
    owns changes, not when it changes a value: mig-manager's entry may be months old while the
    state it just set is seconds old. A labeler that starts now counts from now."""
    clock = FakeClock()
    kube_api.clock = lambda: clock.now - 90 * 86400  # mig-manager took both keys 90 days ago
    ask(kube_api, state="failed")
    entry = next(m for m in kube_api.nodes[NODE].to_json()["metadata"]["managedFields"] if m["manager"] == MIG_MANAGER)
    kube_api.clock = clock
    ask(kube_api, state="pending")  # a value change of a key it owns: its time stays 90 days old
    again = next(m for m in kube_api.nodes[NODE].to_json()["metadata"]["managedFields"] if m["manager"] == MIG_MANAGER)
    assert again["time"] == entry["time"]
    daemon = make_daemon(kube_api, write_fixture(tmp_path / "node.yaml", A100_BALANCED), clock=clock,
                         mig_parted=load_mig_parted(str(CONFIG)))
    daemon.run_pass()
    assert sample(daemon, "mig_labeler_mig_config_state_seconds", state="pending") == 0
    assert sample(daemon, "mig_labeler_mig_config_stuck") == 0


def test_a_config_mig_manager_never_answers_is_stuck(kube_api, tmp_path):
    clock = FakeClock()
    kube_api.clock = clock
    daemon, _ = verifying_daemon(kube_api, tmp_path, A100_BALANCED, clock=clock)
    daemon.run_pass()
    clock.now += 1
    kube_api.edit_labels(NODE, {REQUESTED: "all-1g.5gb"}, manager="kubectl-label")
    daemon.run_pass()  # seen now (a watching daemon sees it when it happens)
    clock.now += 15 * 60
    daemon.run_pass()
    assert sample(daemon, "mig_labeler_mig_config_state_seconds", state="unanswered") == 15 * 60
    assert events(kube_api, "MIGConfigStuck") == [
        ("Warning", "mig-labeler: nvidia.com/mig.config=all-1g.5gb was set 15 min ago and mig-manager has not "
                    "answered (nvidia.com/mig.config.state is unchanged): is nvidia-mig-manager running on this "
                    "node?")]


def test_stuck_after_zero_never_calls_a_request_stuck(kube_api, tmp_path):
    clock = FakeClock()
    daemon, _ = verifying_daemon(kube_api, tmp_path, A100_BALANCED, state="rebooting", clock=clock,
                                 mig_config_stuck_after=0.0)
    daemon.run_pass()
    clock.now += 3600
    daemon.run_pass()
    assert sample(daemon, "mig_labeler_mig_config_state_seconds", state="rebooting") == 3600
    assert sample(daemon, "mig_labeler_mig_config_stuck") == 0 and not events(kube_api, "MIGConfigStuck")


@pytest.mark.parametrize(("value", "message"), [
    ("soon", "--mig-config-stuck-after: invalid duration 'soon'"),
    ("500ms", "--mig-config-stuck-after '500ms' is too short: it must be at least 1s"),
])
def test_a_bad_stuck_after_is_exit_2(capsys, value, message):
    code, _, err = run_main(capsys, "run", "--oneshot", "--fixture", "a30-mig-off", "--output-file", "-",
                            "--mig-config-stuck-after", value)
    assert code == 2 and message in err and "Traceback" not in err, err


def test_success_after_a_change_is_verified_within_one_pass_through_the_watch(kube_api, tmp_path):
    node_file = write_fixture(tmp_path / "node.yaml", A100_7X1G)
    ask(kube_api, state="pending")
    with watching_daemon(kube_api, node_file, mig_parted=load_mig_parted(str(CONFIG))) as daemon:
        assert APPLIED not in kube_api.labels(NODE)
        write_fixture(node_file, A100_BALANCED)  # mig-manager applied the layout
        done = daemon.passes_done
        ask(kube_api)  # ... and says so; the watch wakes one pass (the interval is an hour)
        wait_for_passes(daemon, done + 1)
        assert kube_api.labels(NODE)[APPLIED] == "all-balanced"


def test_a_bad_mig_parted_config_stops_a_start_with_exit_2(capsys, tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_text("version: v1\nmig-configs: {}\n")
    code, _, err = run_main(capsys, "run", "--oneshot", "--fixture", "a30-mig-off", "--output-file", "-",
                            "--mig-parted-config", str(bad))
    assert code == 2 and "at least one entry in 'mig-configs' is required" in err


# -- the config from a ConfigMap in the GPU Operator's namespace --------------------------------
def grant_only_the_configmap(kube_api) -> None:
    """The Role the overlay ships: get and watch on that one ConfigMap by resourceNames."""
    kube_api.granted_names["configmaps"] = {CM_NAME}
    kube_api.put_configmap(CM_NAMESPACE, CM_NAME, {"config.yaml": CONFIG.read_text()})


def configmap_daemon(kube_api, tmp_path, layout: dict, **overrides) -> Daemon:
    node_file = write_fixture(tmp_path / "node.yaml", layout)
    ask(kube_api)
    return make_daemon(kube_api, node_file, mig_parted_configmap=(CM_NAMESPACE, CM_NAME, "config.yaml"), **overrides)


def running_configmap_daemon(kube_api, tmp_path):
    """A watching daemon that reads its config from the ConfigMap (both watches open)."""
    grant_only_the_configmap(kube_api)
    ask(kube_api)
    return watching_daemon(kube_api, write_fixture(tmp_path / "node.yaml", A100_BALANCED), watches=2,
                           mig_parted_configmap=(CM_NAMESPACE, CM_NAME, "config.yaml"))


def test_the_config_is_read_from_the_configmap_with_get_on_that_name_alone(kube_api, tmp_path):
    grant_only_the_configmap(kube_api)
    daemon = configmap_daemon(kube_api, tmp_path, A100_BALANCED)
    daemon.start_up()
    daemon.run_pass()
    assert kube_api.labels(NODE)[APPLIED] == "all-balanced"
    reads = [r for r in kube_api.log if r.resource == "configmaps"]
    assert [(r.verb, r.path, r.status) for r in reads] == [
        ("get", f"/api/v1/namespaces/{CM_NAMESPACE}/configmaps/{CM_NAME}", 200)]


def test_a_changed_configmap_applies_without_a_restart_and_a_bad_one_is_kept_out(kube_api, tmp_path):
    with running_configmap_daemon(kube_api, tmp_path) as daemon:
        assert kube_api.labels(NODE)[APPLIED] == "all-balanced"
        watch = next(r for r in kube_api.watches() if r.resource == "configmaps")
        assert watch.query["fieldSelector"] == [f"metadata.name={CM_NAME}"] and watch.status == 200
        # all-balanced now asks for 7×1g.5gb: the running daemon compares against the new config
        changed = ("version: v1\nmig-configs:\n"
                   "  all-balanced: [{devices: all, mig-enabled: true, mig-devices: {1g.5gb: 7}}]\n"
                   "  all-balanced-was: [{devices: all, mig-enabled: true, mig-devices: {3g.20gb: 2}}]\n")
        kube_api.put_configmap(CM_NAMESPACE, CM_NAME, {"config.yaml": changed})
        wait_until(lambda: APPLIED not in kube_api.labels(NODE))
        assert sample(daemon, "mig_labeler_config_reloads_total", result="success") == 1
        assert events(kube_api, "MIGLayoutMismatch")
        kube_api.put_configmap(CM_NAMESPACE, CM_NAME, {"config.yaml": "version: v1\nmig-configs: {}\n"})
        wait_until(lambda: sample(daemon, "mig_labeler_config_reloads_total", result="failure") == 1)
        assert sample(daemon, "mig_labeler_config_stale") == 1
        assert "all-balanced-was" in daemon.config.mig_parted.configs  # the last good one stays
        wait_until(lambda: events(kube_api, "ConfigReloadFailed"))
        assert "at least one entry in 'mig-configs' is required" in events(kube_api, "ConfigReloadFailed")[0][1]


def test_without_watch_permission_the_configmap_is_read_again_every_poll(kube_api):
    from mig_labeler.daemon.watch import ConfigMapWatcher
    from mig_labeler.kube.connection import connect
    from mig_labeler.stop import Stop

    grant_only_the_configmap(kube_api)
    kube_api.forbidden.add(("watch", "configmaps"))
    seen: list[dict] = []

    class Listener:
        def configmap_changed(self, obj):
            seen.append(obj)

        def configmap_deleted(self, obj):
            seen.append(obj)

    stop = Stop()
    kube = connect(None, host=kube_api.url)
    first = kube.read_configmap(CM_NAMESPACE, CM_NAME)
    watcher = ConfigMapWatcher(kube, CM_NAMESPACE, CM_NAME, first["metadata"]["resourceVersion"], Listener(), stop,
                               poll=0.01).start()
    try:
        wait_until(lambda: not watcher.available)
        kube_api.put_configmap(CM_NAMESPACE, CM_NAME, {"config.yaml": "changed"})
        wait_until(lambda: seen)
        assert seen[0]["data"] == {"config.yaml": "changed"}
    finally:
        stop.request()
        watcher.thread.join(WAIT_LIMIT)
        kube.close()


@pytest.mark.parametrize(("setup", "args", "message"), [
    ("missing", [], f"ConfigMap {CM_NAMESPACE}/{CM_NAME} (--mig-parted-configmap) does not exist"),
    ("other-name", [], f"cannot read ConfigMap {CM_NAMESPACE}/{CM_NAME} (--mig-parted-configmap): "),
    ("present", ["--mig-parted-configmap-key", "config.yml"],
     f"ConfigMap {CM_NAMESPACE}/{CM_NAME} has no key 'config.yml' (it has config.yaml)"),
    ("bad", [], f"ConfigMap {CM_NAMESPACE}/{CM_NAME} key config.yaml: at least one entry in 'mig-configs'"),
    ("present", ["--mig-parted-config", str(CONFIG)], "name two sources of the same config: give one"),
])
def test_a_configmap_that_cannot_be_used_is_one_line_and_exit_2(capsys, kube_api, kubeconfig, setup, args, message):
    if setup == "other-name":
        kube_api.granted_names["configmaps"] = {"some-other-config"}
        kube_api.put_configmap(CM_NAMESPACE, CM_NAME, {"config.yaml": CONFIG.read_text()})
    elif setup in ("present", "bad"):
        text = CONFIG.read_text() if setup == "present" else "version: v1\nmig-configs: {}\n"
        kube_api.put_configmap(CM_NAMESPACE, CM_NAME, {"config.yaml": text})
    writes = len(kube_api.writes())
    code, _, err = run_main(capsys, "run", "--oneshot", "--node-name", NODE, "--kubeconfig", kubeconfig,
                            "--fixture", "a30-mig-off", "--mig-parted-configmap", f"{CM_NAMESPACE}/{CM_NAME}", *args)
    assert code == 2 and message in err and "Traceback" not in err, err
    errors = [line for line in err.splitlines() if "INFO" not in line]
    assert len(errors) == 1 and errors[0].startswith("mig-labeler: error: "), err
    assert len(kube_api.writes()) == writes  # nothing published without the config
    if setup == "other-name":
        assert "a Role in gpu-operator with resourceNames: [default-mig-parted-config]" in err


@pytest.mark.parametrize(("value", "message"), [
    ("default-mig-parted-config", "name '' is not a DNS subdomain"),  # no slash: a namespace alone
    ("GPU-Operator/cfg", "namespace 'GPU-Operator' is not a DNS label"),
    ("gpu-operator/", "name '' is not a DNS subdomain"),
    ("a/b/c", "name 'b/c' is not a DNS subdomain"),
])
def test_a_malformed_configmap_reference_is_exit_2(capsys, value, message):
    code, _, err = run_main(capsys, "run", "--oneshot", "--fixture", "a30-mig-off", "--output-file", "-",
                            "--mig-parted-configmap", value)
    assert code == 2 and message in err, err


def test_a_stop_while_a_reload_posts_its_event_ends_the_loop_cleanly(kube_api, tmp_path):
    """The bad ConfigMap's ConfigReloadFailed Event hangs (an unanswering API server); SIGTERM
    abandons it and the loop returns: no exception out of the loop thread."""
    with running_configmap_daemon(kube_api, tmp_path) as daemon:  # it checks that the loop thread ended
        kube_api.hang_next(1, method="POST")
        kube_api.put_configmap(CM_NAMESPACE, CM_NAME, {"config.yaml": "version: v1\nmig-configs: {}\n"})
        assert kube_api.wait_hung(1)
        daemon.stop.request()


def test_diff_plans_the_applied_label_as_run_oneshot_would(capsys, kube_api, kubeconfig, tmp_path):
    node_file = write_fixture(tmp_path / "node.yaml", A100_BALANCED)
    ask(kube_api)
    args = ["--node-name", NODE, "--kubeconfig", kubeconfig, "--fixture", str(node_file), "--mig-strategy", "mixed",
            "--no-timestamp", "--mig-parted-config", str(CONFIG)]
    code, out, _ = run_main(capsys, "diff", *args)
    assert code == 0 and "+ nvidia.com/mig.config.applied=all-balanced" in out.splitlines()
    assert run_main(capsys, "run", "--oneshot", *args)[0] == 0
    assert kube_api.labels(NODE)[APPLIED] == "all-balanced"
    code, out, _ = run_main(capsys, "diff", *args)
    assert code == 0 and out.splitlines()[0] == "no changes"
    write_fixture(node_file, A100_7X1G)  # the layout drifted: diff says what the next pass will do, and why
    code, out, err = run_main(capsys, "diff", *args)
    assert code == 0 and "- nvidia.com/mig.config.applied (was 'all-balanced')" in out.splitlines()
    assert "MIG layout mismatch: GPUs 0, 1: has 7×1g.5gb, all-balanced wants" in err


def test_a_failed_change_is_one_warning_event_and_no_applied_label(kube_api, tmp_path):
    daemon, _ = verifying_daemon(kube_api, tmp_path, A100_7X1G, state="failed")
    daemon.run_pass()
    daemon.run_pass()
    assert APPLIED not in kube_api.labels(NODE)
    assert events(kube_api, "MIGConfigFailed") == [
        ("Warning", "mig-labeler: nvidia.com/mig.config.state is failed (nvidia.com/mig.config=all-balanced): "
                    "mig-manager could not apply it; the labels describe what NVML shows, and its log says why")]
    assert sample(daemon, "mig_labeler_mig_config_stuck") == 0
    assert not events(kube_api, "MIGLayoutMismatch")


def test_a_layout_that_drifts_under_a_running_daemon_loses_the_label_with_one_event(kube_api, tmp_path):
    node_file = write_fixture(tmp_path / "node.yaml", A100_BALANCED)
    ask(kube_api)
    with watching_daemon(kube_api, node_file, mig_parted=load_mig_parted(str(CONFIG))) as daemon:
        assert kube_api.labels(NODE)[APPLIED] == "all-balanced"
        write_fixture(node_file, A100_7X1G)  # repartitioned by hand; the Node's labels say nothing changed
        for _ in range(3):  # the next interval, and two more
            done = daemon.passes_done
            daemon.wake.set()
            wait_for_passes(daemon, done + 1)
        assert APPLIED not in kube_api.labels(NODE)
        assert len(events(kube_api, "MIGLayoutMismatch")) == 1


def test_an_edit_of_the_mounted_mig_parted_config_applies_without_a_restart(kube_api, tmp_path):
    """The file source, as the kubelet updates a ConfigMap volume (..data swapped to a new
    directory), through the real CLI: the daemon reloads it and compares against the new config."""
    import os
    import subprocess
    import sys

    mount = tmp_path / "mount"
    (mount / "v1").mkdir(parents=True)
    (mount / "v1" / "config.yaml").write_text(CONFIG.read_text())
    os.symlink("v1", mount / "..data")
    os.symlink("..data/config.yaml", mount / "config.yaml")
    node_file = write_fixture(tmp_path / "node.yaml", A100_BALANCED)
    ask(kube_api)
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kube_api.url)
    proc = subprocess.Popen([sys.executable, "-m", "mig_labeler", "run", "--node-name", NODE, "--kubeconfig",
                             str(kubeconfig), "--fixture", str(node_file), "--mig-strategy", "mixed",
                             "--sleep-interval", "1h", "--metrics-port", "0", "--mig-parted-config",
                             str(mount / "config.yaml")], stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: kube_api.labels(NODE).get(APPLIED) == "all-balanced")
        (mount / "v2").mkdir()
        (mount / "v2" / "config.yaml").write_text(
            "version: v1\nmig-configs:\n"
            "  all-balanced: [{devices: all, mig-enabled: true, mig-devices: {1g.5gb: 7}}]\n")
        os.symlink("v2", mount / "..data_tmp")
        os.replace(mount / "..data_tmp", mount / "..data")
        wait_until(lambda: APPLIED not in kube_api.labels(NODE))
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=WAIT_LIMIT)
    assert "configuration reloaded" in err and "MIG layout mismatch: GPUs 0, 1: has 2×1g.5gb" in err, err


def test_a_mig_parted_config_without_a_node_is_said_to_do_nothing(capsys):
    code, _, err = run_main(capsys, "run", "--oneshot", "--fixture", "a30-mig-off", "--output-file", "-",
                            "--mig-parted-config", str(CONFIG))
    assert code == 0
    assert ("--mig-parted-config is not used without --node-name: what it verifies is the layout the Node's "
            "nvidia.com/mig.config asks for") in err


@pytest.mark.parametrize(("labels", "held", "expected"), [
    ({}, {}, None),
    ({REQUESTED: "a", STATE: "success"}, {}, ("a", "success", 0.0)),
    ({REQUESTED: "a", STATE: "success"}, {REQUESTED: ("a", 10.0), STATE: ("success", 5.0)}, ("a", "unanswered", 10.0)),
    ({REQUESTED: "a", STATE: "pending"}, {REQUESTED: ("a", 10.0), STATE: ("pending", 12.0)}, ("a", "pending", 12.0)),
    ({REQUESTED: "a", STATE: "success"}, {REQUESTED: ("a", 10.0), STATE: ("success", 10.0)}, ("a", "success", 10.0)),
    ({REQUESTED: "a"}, {REQUESTED: ("a", 10.0)}, ("a", "unanswered", 10.0)),
    # a record of another value (two reads of the Node): it says nothing about this one
    ({REQUESTED: "a", STATE: "pending"}, {REQUESTED: ("a", 10.0), STATE: ("success", 3.0)}, ("a", "pending", 10.0)),
])
def test_the_request_a_node_makes_and_since_when(labels, held, expected):
    from mig_labeler.gpu_operator import mig_request

    request = mig_request(labels, held)
    assert (None if request is None else (request.config, request.state, request.since)) == expected


# -- a count no GPU holds is refused before anything is built from it -----------------------------
HUGE = [10**9, 10**30]


def _huge(count: int) -> str:
    entry = f"{{devices: all, mig-enabled: true, mig-devices: {{1g.5gb: {count}}}}}"
    return f"version: v1\nmig-configs:\n  all-balanced:\n    - {entry}\n"


@pytest.mark.parametrize("count", HUGE)
def test_a_huge_count_is_exit_2_at_start_with_flat_memory(tmp_path, count):
    """Memory is the point: the count once became a list of a billion names (1.8 GB, then a hang)."""
    config = tmp_path / "mig-parted.yaml"
    config.write_text(_huge(count))
    code = ("import resource, subprocess, sys\n"
            "p = subprocess.run([sys.executable, '-m', 'mig_labeler', 'labels', '--gpu', 'A100-SXM4-40GB:8', "
            f"'--mig-config', 'all-balanced', '--mig-parted-config', {str(config)!r}], capture_output=True, "
            "text=True)\n"
            "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, repr(p.stderr))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split(" ", 2)
    returncode, peak_kib, stderr = int(out[0]), int(out[1]), out[2]
    assert returncode == 2 and "more than any GPU holds (at most 7 MIG devices" in stderr, stderr
    assert stderr.count("\\n") == 1 and "Traceback" not in stderr
    assert peak_kib < 100 * 1024


@pytest.mark.parametrize("count", HUGE)
def test_a_huge_count_in_the_configmap_is_a_failed_reload_and_the_last_good_config_stays(kube_api, tmp_path, count):
    with running_configmap_daemon(kube_api, tmp_path) as daemon:
        before = daemon.config.mig_parted
        kube_api.put_configmap(CM_NAMESPACE, CM_NAME, {"config.yaml": _huge(count)})
        wait_until(lambda: sample(daemon, "mig_labeler_config_reloads_total", result="failure") == 1)
        assert daemon.config.mig_parted == before and sample(daemon, "mig_labeler_config_stale") == 1
        assert kube_api.labels(NODE)[APPLIED] == "all-balanced"
        wait_until(lambda: events(kube_api, "ConfigReloadFailed"))
        assert "more than any GPU holds" in events(kube_api, "ConfigReloadFailed")[0][1]


def test_a_relist_of_an_unchanged_configmap_after_410_is_no_reload(kube_api, tmp_path):
    """After an API server restart the watch's version is gone (410): the relist's ADDED carries
    the same config, which is no change (it once counted, and logged, a reload)."""
    with running_configmap_daemon(kube_api, tmp_path) as daemon:
        relists = len([w for w in kube_api.watches() if w.resource == "configmaps"])
        kube_api.compact()
        kube_api.break_watches()
        wait_until(lambda: len([w for w in kube_api.watches() if w.resource == "configmaps"]) >= relists + 2
                   and kube_api.open_watches == 2)
        settle(daemon)
        assert sample(daemon, "mig_labeler_config_reloads_total", result="success") == 0
        assert sample(daemon, "mig_labeler_config_reloads_total", result="failure") == 0
