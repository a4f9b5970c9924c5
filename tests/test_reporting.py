"""What an operator sees: Events delayed within the rate window, never dropped; Event and log
text that say what changed; failed reloads counted, evented and alerted on."""

from __future__ import annotations

import logging

import pytest

from mig_labeler.daemon.events import RETRY_AFTER, EventNotPosted, EventReporter
from mig_labeler.errors import ConfigError
from mig_labeler.sinks.plan import plan_update
from mig_labeler.topology import NodeTopology

from .conftest import CommandLine, FakeClock, make_config, make_daemon, read, reload_with, write_fixture

NODE = "gpu-node-1"


class Sender:
    """An EventSender that hands each Event to ``post`` (the reporter's outer boundary)."""

    def __init__(self, post):
        self.post = post


A100 = "A100-SXM4-40GB"
BALANCED = {"gpus": [{"model": A100, "count": 2, "mig": ["3g.20gb", "2g.10gb", "1g.5gb", "1g.5gb"]}]}
ALL_1G = {"gpus": [{"model": A100, "count": 2, "mig": ["1g.5gb"] * 7}]}


def test_a_second_event_in_the_window_waits_for_its_end_and_the_latest_wins():
    clock, posted = FakeClock(0.0), []
    events = EventReporter(Sender(lambda *event: posted.append(event) or True), clock)
    events.report("GPULabelsChanged", "first", "Normal")
    clock.now = 10
    events.report("GPULabelsChanged", "second", "Normal")
    clock.now = 20
    events.report("GPULabelsChanged", "third", "Normal")
    assert [m for _, m, _ in posted] == ["first"]
    assert events.due_in() == 40
    clock.now = 59
    events.flush()
    assert len(posted) == 1
    clock.now = 60
    events.flush()
    assert posted[-1] == ("GPULabelsChanged", "third (the latest of 2 in the last minute; the log has each)", "Normal")
    assert events.due_in() is None


def test_reasons_have_windows_of_their_own():
    clock, posted = FakeClock(0.0), []
    events = EventReporter(Sender(lambda *event: posted.append(event) or True), clock)
    events.report("GPULabelsChanged", "a", "Normal")
    events.report("GPULabelingFailed", "b", "Warning")
    assert [r for r, _, _ in posted] == ["GPULabelsChanged", "GPULabelingFailed"]


def test_an_event_that_cannot_be_posted_yet_is_kept():
    clock, posted, ready = FakeClock(0.0), [], []
    events = EventReporter(Sender(lambda *event: bool(ready) and (posted.append(event) or True)), clock)
    events.report("GPULabelsChanged", "a", "Normal")
    assert posted == [] and events.due_in() == RETRY_AFTER  # tried again a little later, not in a busy loop
    ready.append(True)
    clock.now += RETRY_AFTER
    events.flush()
    assert [m for _, m, _ in posted] == ["a"]


def test_a_layout_change_10_s_after_another_reaches_the_node_too(kube_api, tmp_path):
    clock = FakeClock()
    node_file = write_fixture(tmp_path / "node.yaml", BALANCED)
    daemon = make_daemon(kube_api, node_file, clock=clock)
    daemon.run_pass()
    clock.now += 10
    write_fixture(node_file, ALL_1G)
    daemon.run_pass()
    assert len(kube_api.events) == 1  # held back by the window, not dropped
    clock.now += 50
    daemon.run_pass()  # nothing changed: the pass posts what the window held
    messages = [e["message"] for e in kube_api.events]
    assert messages[0].startswith("mig-labeler: layout 4×1g.5gb, 2×2g.10gb, 2×3g.20gb; added ")
    assert messages[1] == ("mig-labeler: MIG layout 4×1g.5gb, 2×2g.10gb, 2×3g.20gb → 14×1g.5gb; removed "
                           "mig-2g.10gb.*, mig-3g.20gb.*; mig-1g.5gb.count → 14")
    assert all(len(m) <= 1024 for m in messages)


def test_a_restart_that_changes_only_the_timestamp_posts_no_event(kube_api, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="mig_labeler")
    node_file = write_fixture(tmp_path / "node.yaml", BALANCED)
    make_daemon(kube_api, node_file, no_timestamp=False, clock=FakeClock(1_700_000_000.0)).run_pass()
    assert len(kube_api.events) == 1
    restarted = make_daemon(kube_api, node_file, no_timestamp=False, clock=FakeClock(1_700_000_300.0))
    assert restarted.run_pass().wrote
    assert len(kube_api.events) == 1
    assert "labels updated on node gpu-node-1: layout 4×1g.5gb, 2×2g.10gb, 2×3g.20gb; gfd.timestamp only" in \
        caplog.text


def test_a_failed_reload_is_counted_evented_and_marks_the_config_stale(kube_api, tmp_path, caplog):
    node_file = write_fixture(tmp_path / "node.yaml", BALANCED)

    class BrokenOnce(CommandLine):
        def read(self):
            if not self.reads:
                self.reads += 1
                raise ConfigError("config file /etc/mig-labeler/config.yaml is not valid YAML: line 3")
            return super().read()

    command_line = BrokenOnce(make_config("mixed", fixture=str(node_file), node_name=NODE))
    daemon = make_daemon(kube_api, node_file, command_line=command_line)
    daemon.run_pass()
    reload_with(daemon, command_line)
    metrics = daemon.metrics
    assert metrics.config_reloads.labels(result="failure")._value.get() == 1
    assert metrics.config_stale._value.get() == 1
    warning = kube_api.events[-1]
    assert (warning["reason"], warning["type"]) == ("ConfigReloadFailed", "Warning")
    assert "not valid YAML" in warning["message"] and "a restart would fail" in warning["message"]
    reload_with(daemon, command_line)
    assert metrics.config_reloads.labels(result="success")._value.get() == 1
    assert metrics.config_stale._value.get() == 0


def test_the_layout_spelling():
    assert read(BALANCED).layout() == "4×1g.5gb, 2×2g.10gb, 2×3g.20gb"
    mixed = {"gpus": [{"model": A100, "mig": ["7g.40gb"]}, {"model": A100, "mig": []}, {"model": A100, "count": 2}]}
    assert read(mixed).layout() == "1×7g.40gb, 2 full GPUs, 1 MIG-enabled GPU without MIG devices"
    assert NodeTopology("550.54.15", 12040, ()).layout() == "no GPUs"


def test_a_plan_description_groups_a_profiles_keys_and_stays_short():
    live = {f"nvidia.com/mig-{n}g.{n}0gb.{s}": "1" for n in range(1, 9) for s in ("count", "memory")}
    plan = plan_update(live, set(live), {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"})
    assert plan.describe() == ("removed mig-1g.10gb.*, mig-2g.20gb.*, mig-3g.30gb.*, mig-4g.40gb.*, mig-5g.50gb.*, "
                               "mig-6g.60gb.* and 2 more; added gpu.product")


@pytest.mark.parametrize(("seconds", "spelled"), [(3, "3 s"), (119, "119 s"), (16 * 60, "16 min"),
                                                  (125 * 60 + 30, "2 h 5 min")])
def test_a_stuck_request_says_how_long_in_units_a_person_reads(seconds, spelled):
    from mig_labeler.daemon.reporting import spell_duration

    assert spell_duration(seconds) == spelled


# -- Events are delayed, never lost; coalesced ones say the net change; cleared ones are not posted --
ALL_2G = {"gpus": [{"model": A100, "count": 2, "mig": ["2g.10gb"] * 3}]}
ALL_3G = {"gpus": [{"model": A100, "count": 2, "mig": ["3g.20gb"] * 2}]}
ALL_7G = {"gpus": [{"model": A100, "count": 2, "mig": ["7g.40gb"]}]}


def test_an_event_refused_with_500_is_posted_at_the_next_pass(kube_api, tmp_path):
    clock = FakeClock()
    node_file = write_fixture(tmp_path / "node.yaml", BALANCED)
    daemon = make_daemon(kube_api, node_file, clock=clock)
    kube_api.fail_next(1, 500, method="POST")
    daemon.run_pass()
    assert kube_api.events == [] and kube_api.labels(NODE)["nvidia.com/mig-3g.20gb.count"] == "2"
    clock.now += 1  # inside the retry delay: the next pass tries again at once
    daemon.run_pass()
    assert [e["reason"] for e in kube_api.events] == ["GPULabelsChanged"]
    assert kube_api.events[0]["message"].startswith("mig-labeler: layout 4×1g.5gb, 2×2g.10gb, 2×3g.20gb; added ")


def test_an_event_that_keeps_failing_is_given_up_with_one_warning(caplog):
    clock, attempts = FakeClock(0.0), []

    def refuse(*event):
        attempts.append(event)
        raise EventNotPosted("POST events/n: HTTP 500: etcdserver: request timed out")

    events = EventReporter(Sender(refuse), clock)
    events.report("GPULabelsChanged", "mig-labeler: layout 7×1g.5gb", "Normal")
    for _ in range(5):
        clock.now += RETRY_AFTER
        events.flush()
    lost = [r for r in caplog.records if "could not be posted" in r.getMessage()]
    assert len(attempts) == 3 and events.due_in() is None
    assert len(lost) == 1 and lost[0].levelname == "WARNING"
    assert lost[0].getMessage() == ("Event GPULabelsChanged could not be posted in 3 attempts (the last: POST "
                                    "events/n: HTTP 500: etcdserver: request timed out); it is lost: mig-labeler: "
                                    "layout 7×1g.5gb")


def test_four_layout_changes_in_one_window_give_events_that_name_the_net_change(kube_api, tmp_path):
    clock = FakeClock()
    node_file = write_fixture(tmp_path / "node.yaml", BALANCED)
    daemon = make_daemon(kube_api, node_file, clock=clock)
    daemon.run_pass()  # the first layout: one Event, the window begins
    for layout in (ALL_1G, ALL_2G, ALL_3G, ALL_7G):  # four changes, 10 s apart
        clock.now += 10
        write_fixture(node_file, layout)
        daemon.run_pass()
    clock.now += 60
    daemon.run_pass()
    messages = [e["message"] for e in kube_api.events]
    assert len(messages) == 2 and messages[0].startswith("mig-labeler: layout 4×1g.5gb, 2×2g.10gb, 2×3g.20gb;")
    assert messages[1].startswith("mig-labeler: MIG layout 4×3g.20gb → 2×7g.40gb; ")  # the last step
    assert messages[1].endswith("(net change of 4 in the last minute: 4×1g.5gb, 2×2g.10gb, 2×3g.20gb → "
                                "2×7g.40gb; the log has each)")


def test_a_held_warning_whose_cause_cleared_in_its_window_is_not_posted(kube_api, tmp_path):
    """A reload that failed twice within a minute, then worked: the held second
    ConfigReloadFailed ("a restart would fail on it too") is untrue by the time its window ends."""
    node_file = write_fixture(tmp_path / "node.yaml", BALANCED)
    clock = FakeClock()

    class BrokenTwice(CommandLine):
        def read(self):
            self.reads += 1
            if self.reads <= 2:
                raise ConfigError("config file /etc/mig-labeler/config.yaml is not valid YAML: line 3")
            return self.config

    command_line = BrokenTwice(make_config("mixed", fixture=str(node_file), node_name=NODE))
    daemon = make_daemon(kube_api, node_file, clock=clock, command_line=command_line)
    daemon.run_pass()
    for _ in range(3):  # failed, failed (held), worked
        clock.now += 10
        reload_with(daemon, command_line)
        daemon.run_pass()
    clock.now += 60
    daemon.run_pass()
    assert [e["reason"] for e in kube_api.events].count("ConfigReloadFailed") == 1
