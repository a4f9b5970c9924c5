"""Nothing a flag, environment variable, config file or fixture holds may crash the daemon: every
bad input is a valid value or our own error type, and a bad reload keeps the previous config."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from mig_labeler.cli.logs import JsonFormatter
from mig_labeler.config import GO_MAX_DURATION, parse_duration
from mig_labeler.config_file import FileSettings, parse_config_file
from mig_labeler.daemon.run_loop import next_wait
from mig_labeler.errors import ConfigError, FixtureError
from mig_labeler.simulated.fake_nvml import FakeNvml
from mig_labeler.simulated.fixture import NodeFixture, load_fixture, parse_fixture
from mig_labeler.text_files import load_config_file

from .conftest import (
    CommandLine,
    fixture_path,
    make_config,
    make_daemon,
    reload_with,
    reloadable_daemon,
    wait_for_passes,
    wait_until,
    write_fixture,
)
from .test_cli import run_main

NODE = "gpu-node-1"

# -- durations ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["999999999h", "2562048h", "9" * 400 + "s"])
def test_durations_longer_than_gos_maximum_are_rejected(text):
    with pytest.raises(ConfigError, match="longer than Go's maximum of 2562047h"):
        parse_duration(text)


def test_gos_maximum_duration_itself_is_accepted():
    assert parse_duration("2562047h") <= GO_MAX_DURATION


def test_a_huge_sleep_interval_flag_exits_2_before_anything_is_written(capsys, kube_api, tmp_path):
    from .conftest import write_kubeconfig

    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kube_api.url)
    code, _, err = run_main(capsys, "run", "--node-name", NODE, "--kubeconfig", str(kubeconfig), "--fixture",
                            "a30-mig-off", "--sleep-interval", "999999999h", "--metrics-port", "0")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "2562047h" in err
    assert kube_api.writes() == []


def test_a_huge_sleep_interval_in_the_config_file_exits_2(capsys, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("version: v1\nflags: {gfd: {sleepInterval: 999999999h}}\n")
    code, _, err = run_main(capsys, "labels", "--fixture", "a30-mig-off", "--config-file", str(cfg))
    assert code == 2 and "2562047h" in err and "Traceback" not in err


def test_the_loop_never_waits_longer_than_threading_allows(kube_api, tmp_path):
    assert next_wait(GO_MAX_DURATION, settling=False) is None  # only a wake-up starts the next pass
    daemon = make_daemon(kube_api, write_fixture(tmp_path / "n.yaml", {"gpus": []}), sleep_interval=GO_MAX_DURATION)
    thread = threading.Thread(target=daemon.run_forever)  # an OverflowError would end it (and fail the test)
    thread.start()
    wait_for_passes(daemon, 1)
    daemon.wake.set()
    wait_for_passes(daemon, 2)
    daemon.stop.request()
    thread.join(timeout=30)
    assert not thread.is_alive()


# -- config files ---------------------------------------------------------------------------------


def test_a_config_file_that_is_not_utf8_is_one_line_and_exit_2(capsys, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_bytes(b"version: v1\nflags: {migStrategy: \xff\xfe}\n")
    code, _, err = run_main(capsys, "labels", "--fixture", "a30-mig-off", "--config-file", str(cfg))
    assert code == 2
    assert err.strip() == f"mig-labeler: error: config file {cfg} is not UTF-8 text (byte 0xff at offset 33)"


def test_unknown_keys_both_sharing_blocks_and_duplicates_are_warned_about():
    settings = parse_config_file(
        "version: v1\nflags: {migstrategy: mixed, gfd: {sleepinterval: 5s}}\nsharing:\n"
        "  mps: {resources: [{name: gpu, replicas: 2}, {name: nvidia.com/gpu, replicas: 4}]}\n"
        "  timeSlicing: {resources: [{name: gpu, replicas: 3}]}\n", "cfg.yaml")
    assert settings.sharing.kind == "mps" and settings.sharing.resource("nvidia.com/gpu").replicas == 2
    assert settings.warnings == (
        "config file cfg.yaml: unknown key flags.migstrategy is ignored",
        "config file cfg.yaml: unknown key flags.gfd.sleepinterval is ignored",
        "config file cfg.yaml: sharing has both mps and timeSlicing; mps is used and timeSlicing is ignored, "
        "as in GFD",
        "config file cfg.yaml: sharing.mps: resources[1] repeats nvidia.com/gpu; the first entry of each is used",
    )


def test_config_warnings_reach_stderr_once(capsys, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("version: v1\nflags: {migstrategy: mixed}\n")
    code, _, err = run_main(capsys, "labels", "--fixture", "a30-mig-off", "--config-file", str(cfg))
    assert code == 0 and err.count("unknown key flags.migstrategy is ignored") == 1


def test_replicas_beyond_gos_integer_range_are_rejected():
    with pytest.raises(ConfigError, match="from 2 to 9223372036854775807"):
        parse_config_file("sharing: {timeSlicing: {resources: [{name: gpu, replicas: 9223372036854775808}]}}")


def test_an_invalid_time_slicing_block_is_an_error_even_beside_mps():
    with pytest.raises(ConfigError, match="timeSlicing.resources must be a non-empty list"):
        parse_config_file("sharing: {mps: {resources: [{name: gpu, replicas: 2}]}, timeSlicing: {}}")


yaml_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12)
yaml_values = st.recursive(yaml_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10) | st.integers(), inner, max_size=4), max_leaves=20)
CONFIG_KEYS = ["version", "flags", "sharing", "migStrategy", "failOnInitError", "gfd", "oneshot", "noTimestamp",
               "sleepInterval", "machineTypeFile", "timeSlicing", "mps", "renameByDefault", "resources", "name",
               "replicas"]
config_like = st.recursive(yaml_scalars | st.sampled_from(["v1", "mixed", "60s", "gpu", "infinite"]),
                           lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.sampled_from(CONFIG_KEYS), inner, max_size=5), max_leaves=25)


@given(st.binary(max_size=200))
def test_any_bytes_in_a_config_file_give_settings_or_a_config_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("cfg") / "config.yaml"
    path.write_bytes(data)
    try:
        assert isinstance(load_config_file(str(path)), FileSettings)
    except ConfigError:
        pass


@given(st.one_of(yaml_values, config_like), st.booleans())
def test_any_yaml_structure_gives_settings_or_a_config_error(doc, as_json):
    text = json.dumps(doc) if as_json else yaml.safe_dump(doc)
    try:
        assert isinstance(parse_config_file(text), FileSettings)
    except ConfigError:
        pass


# -- fixtures -------------------------------------------------------------------------------------

FIXTURE_KEYS = ["driver_version", "cuda_driver_version", "machine_type", "gpus", "model", "count", "mig",
                "mig_mode", "current", "pending", "name", "memory_mib", "compute_capability", "pci_class", "uuid",
                "profile", "attributes", "engines", "copy", "faults", "call", "error", "gpu", "init_error",
                "mig_capable"]
fixture_like = st.recursive(
    yaml_scalars | st.sampled_from(["A100-SXM4-40GB", "A30", "1g.5gb", "3g.20gb", "7g.40gb", "NVML_ERROR_GPU_IS_LOST",
                                    "NVML_ERROR_BOGUS", "030200", "zz"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(FIXTURE_KEYS), inner, max_size=6),
    max_leaves=30)


@given(st.one_of(yaml_values, fixture_like))
def test_any_yaml_structure_gives_a_fixture_or_a_fixture_error(doc):
    try:
        fixture = parse_fixture(doc)
    except FixtureError:
        return
    assert isinstance(fixture, NodeFixture)
    try:
        FakeNvml(fixture)  # error names are checked against pynvml here
    except FixtureError:
        pass


@given(st.binary(max_size=200))
def test_any_bytes_in_a_fixture_file_give_a_fixture_or_a_fixture_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fx") / "node.yaml"
    path.write_bytes(data)
    try:
        assert isinstance(load_fixture(path), NodeFixture)
    except FixtureError:
        pass


# -- a running daemon keeps its configuration when a reload fails --------------------------------


@pytest.mark.parametrize("bad", [b"version: v1\nflags: {gfd: {sleepInterval: 999999999h}}\n",
                                 b"version: v1\nflags: {migStrategy: \xff}\n",
                                 b"flags: {migStrategy: bogus}\n"])
def test_a_failed_reload_keeps_the_previous_config_and_the_daemon_running(kube_api, tmp_path, caplog, bad):
    config = tmp_path / "config.yaml"
    config.write_text("version: v1\nflags: {migStrategy: mixed}\n")
    node_file = write_fixture(tmp_path / "n.yaml", {"gpus": [{"model": "A30", "mig": ["2g.12gb"]}]})

    class ConfigFileOnly(CommandLine):  # what a reload reads: the config file again
        def read(self):
            settings = load_config_file(str(config))
            return dataclasses.replace(self.config, mig_strategy=settings.mig_strategy,
                                       sleep_interval=settings.sleep_interval or 3600.0)

    daemon = make_daemon(kube_api, node_file, command_line=ConfigFileOnly(
        make_config("mixed", fixture=str(node_file), node_name=NODE, sleep_interval=3600.0)))
    thread = threading.Thread(target=daemon.run_forever, daemon=True)
    thread.start()
    wait_for_passes(daemon, 1)
    before = daemon.config
    config.write_bytes(bad)
    daemon.wake.request_reload()
    wait_for_passes(daemon, 2)
    assert daemon.config == before and thread.is_alive()
    failures = [r.getMessage() for r in caplog.records if "reload failed" in r.getMessage()]
    assert len(failures) == 1 and "keeping the previous one" in failures[0]
    config.write_text("version: v1\nflags: {migStrategy: single}\n")
    daemon.wake.request_reload()
    wait_until(lambda: kube_api.labels(NODE).get("nvidia.com/mig.strategy") == "single")
    daemon.stop.request()
    thread.join(timeout=30)
    assert not thread.is_alive()


def test_the_reloaded_configuration_is_logged_with_its_settings_as_fields(kube_api, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="mig_labeler")
    daemon, command_line = reloadable_daemon(kube_api, fixture_path("a30-mig-off"))
    reload_with(daemon, command_line)
    record = next(r for r in caplog.records if r.getMessage() == "configuration reloaded")
    assert record.fields["settings"]["migStrategy"] == "mixed"
    assert json.loads(JsonFormatter().format(record))["settings"]["migStrategy"] == "mixed"


def test_a_fault_on_nvml_init_points_at_init_error(capsys, tmp_path):
    """A fault on nvmlInit was accepted and did nothing (the fake's init runs before faults apply)."""
    fault = {"call": "nvmlInit", "error": "NVML_ERROR_DRIVER_NOT_LOADED"}
    path = write_fixture(tmp_path / "n.yaml", {"gpus": [{"model": "A30"}], "faults": [fault]})
    code, _, err = run_main(capsys, "labels", "--fixture", str(path))
    assert code == 2 and "faults[0]: nvmlInit fails through the top-level key init_error" in err
    write_fixture(path, {"gpus": [{"model": "A30"}], "init_error": "NVML_ERROR_DRIVER_NOT_LOADED"})
    code, _, err = run_main(capsys, "labels", "--fixture", str(path))
    assert code == 1 and "NVIDIA kernel driver is not loaded" in err
