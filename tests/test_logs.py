"""--log-format json: every line on stderr is one JSON object with an RFC 3339 timestamp, the
fatal line included, and structured values (the settings) are fields, not text inside msg."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from .conftest import write_kubeconfig

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def json_lines(stderr: str) -> list[dict]:
    lines = [json.loads(line) for line in stderr.splitlines()]  # fails on any line that is not JSON
    assert lines and all(RFC3339.match(line["ts"]) and line["level"] and "msg" in line for line in lines), lines
    return lines


def mig_labeler(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mig_labeler", *args], capture_output=True, text=True, timeout=120,
                          check=False, env=env)


def test_start_up_a_change_and_a_fatal_error_are_each_one_json_object(kube_api, tmp_path):
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kube_api.url)
    done = mig_labeler("run", "--oneshot", "--log-format", "json", "--node-name", "gpu-node-1", "--kubeconfig",
                       str(kubeconfig), "--fixture", "dgx-a100-mixed", "--mig-strategy", "mixed")
    assert done.returncode == 0, done.stderr
    lines = json_lines(done.stderr)
    start = lines[0]
    assert start["msg"].startswith("mig-labeler ") and start["msg"].endswith(" starting")
    assert start["settings"]["migStrategy"] == "mixed" and start["settings"]["sinks"] == ["node"]
    change = next(line for line in lines if line["msg"].startswith("labels updated on node gpu-node-1: "))
    assert "layout 8×1g.5gb" in change["msg"] or "layout " in change["msg"]
    ghost = mig_labeler("run", "--oneshot", "--log-format", "json", "--node-name", "ghost", "--kubeconfig",
                        str(kubeconfig), "--fixture", "dgx-a100-mixed")
    assert ghost.returncode == 1
    fatal = json_lines(ghost.stderr)[-1]
    assert fatal["level"] == "error" and fatal["msg"].startswith('error: node "ghost" not found')


def test_a_bad_config_file_and_a_usage_error_are_json_too(tmp_path):
    bad = mig_labeler("run", "--log-format=json", "--fixture", "a30-mig-off", "--output-file", "-",
                      "--config-file", str(tmp_path / "missing.yaml"))
    assert bad.returncode == 2
    assert json_lines(bad.stderr)[-1]["msg"].startswith("error: cannot read config file ")
    usage = mig_labeler("run", "--log-format", "json", "--no-such-option")
    assert usage.returncode == 2
    assert "No such option" in json_lines(usage.stderr)[-1]["msg"]


def test_text_logs_keep_the_settings_readable(kube_api, tmp_path):
    done = mig_labeler("run", "--oneshot", "--fixture", "a30-mig-off", "--output-file", str(tmp_path / "gfd"))
    assert done.returncode == 0, done.stderr
    first = done.stderr.splitlines()[0]
    assert re.match(r'^mig-labeler: INFO: mig-labeler \S+ starting: \{.*"sinks": \["file"\]', first), first
