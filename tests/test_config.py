"""The device-plugin/GFD config file and the flag > env > file > default precedence."""

from __future__ import annotations

import math

import pytest

from mig_labeler.config import MigStrategy, parse_duration
from mig_labeler.config_file import parse_config_file
from mig_labeler.errors import ConfigError

FULL = """
version: v1
flags:
  migStrategy: mixed
  failOnInitError: false
  gfd:
    oneshot: true
    noTimestamp: true
    sleepInterval: 30s
    machineTypeFile: /host/product_name
sharing:
  timeSlicing:
    resources:
      - name: gpu
        replicas: 4
      - name: nvidia.com/mig-1g.5gb
        replicas: 2
      - name: gpu
        replicas: 9
"""


def test_full_file_is_parsed():
    s = parse_config_file(FULL)
    assert s.mig_strategy is MigStrategy.MIXED
    assert s.fail_on_init_error is False and s.oneshot is True and s.no_timestamp is True
    assert s.sleep_interval == 30.0
    assert s.machine_type_file == "/host/product_name"
    assert s.sharing.kind == "time-slicing" and s.sharing.active_strategy == "time-slicing"
    assert s.sharing.resource("nvidia.com/gpu").replicas == 4  # first entry wins, as in GFD
    assert s.sharing.resource("nvidia.com/mig-1g.5gb").replicas == 2


def test_json_file_and_empty_file_are_accepted():
    assert parse_config_file('{"version": "v1", "flags": {"migStrategy": "single"}}').mig_strategy is MigStrategy.SINGLE
    assert parse_config_file("").mig_strategy is None


def test_mps_block_hides_time_slicing_block():
    s = parse_config_file("sharing:\n  timeSlicing:\n    resources: [{name: gpu, replicas: 2}]\n"
                          "  mps:\n    resources: [{name: gpu, replicas: 3}]\n")
    assert s.sharing.kind == "mps" and s.sharing.resource("nvidia.com/gpu").replicas == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: v2", "unknown version 'v2'"),
        ("flags: {migStrategy: bogus}", "unknown MIG strategy 'bogus'"),
        ("flags: [1]", "must be mappings"),
        ("sharing: {timeSlicing: {}}", "resources must be a non-empty list"),
        ("sharing: {timeSlicing: {resources: [{name: gpu, replicas: 1}]}}", "from 2 to 9223372036854775807, not 1"),
        ("sharing: {timeSlicing: {resources: [{name: mig-1g.24gb+me.all, replicas: 2}]}}", "write mig-1g.10gb.me"),
        ("flags: {gfd: {sleepInterval: 60}}", "duration string"),
        ("flags: {failOnInitError: maybe}", "true or false"),
        ("a: [unclosed", "not valid YAML or JSON"),
        ("- a list", "mapping at the top level"),
    ],
)
def test_bad_files_name_the_problem(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_config_file(text, "cfg.yaml")


@pytest.mark.parametrize(("text", "seconds"), [("60s", 60), ("1m", 60), ("1m30s", 90), ("1.5h", 5400),
                                               ("infinite", math.inf)])
def test_go_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["60", "", "1 m", "0s", "500ms", "soon"])
def test_bad_or_too_short_durations_are_rejected(text):
    with pytest.raises(ConfigError):
        parse_duration(text)
