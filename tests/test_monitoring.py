"""The alerts and the dashboard read metrics that exist: the real daemon (fixture, fake API) is
scraped, and every metric name the rules and the panels use must be on its /metrics page, which
must also pass `promtool check metrics` (naming conventions)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from .conftest import free_port, wait_until, write_kubeconfig
from .k8s_tools import tool

CHART = Path(__file__).resolve().parents[1] / "deployments" / "helm" / "mig-labeler"
NODE = "gpu-node-1"


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\bmig_labeler_[a-z_]+", expr))


def used_metrics() -> set[str]:
    names: set[str] = set()
    for group in yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())["groups"]:
        for rule in group["rules"]:
            names |= metric_names(rule["expr"])
    dashboard = json.loads((CHART / "files" / "dashboard.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            names |= metric_names(target["expr"])
    names |= metric_names(dashboard["templating"]["list"][1]["query"])
    return names


@pytest.fixture(scope="module")
def scraped(tmp_path_factory):
    from .conftest import FOREIGN
    from .fakes.kube_api import FakeKubeApi

    api = FakeKubeApi().start()
    api.add_node(NODE, FOREIGN)
    tmp = tmp_path_factory.mktemp("metrics")
    kubeconfig = write_kubeconfig(tmp / "kubeconfig", api.url)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mig_labeler", "run", "--node-name", NODE, "--kubeconfig",
                             str(kubeconfig), "--fixture", "dgx-a100-mixed", "--mig-strategy", "mixed",
                             "--sleep-interval", "1h", "--metrics-port", str(port)], stderr=subprocess.DEVNULL)
    try:
        def page() -> str:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                    return response.read().decode()
            except OSError:
                return ""
        def passes() -> float:  # at least one: the watch may well have caused a second pass already
            found = re.search(r'^mig_labeler_passes_total\{result="success"\} ([0-9.e+]+)$', page(), re.M)
            return float(found.group(1)) if found else 0.0

        wait_until(lambda: passes() >= 1)
        yield page()
    finally:
        proc.terminate()
        proc.wait(30)
        api.stop()


def test_every_metric_the_alerts_and_the_dashboard_use_exists(scraped):
    families = set(re.findall(r"^# TYPE (\S+) ", scraped, re.M))
    samples = set(re.findall(r"^(mig_labeler_[a-z_]+)", scraped, re.M))
    missing = sorted(n for n in used_metrics() if n not in families | samples)
    assert used_metrics() and missing == []


# Series that are absent by design until there is something to say: the layout was compared with a
# requested MIG config; mig-manager is at work on one. The alert on the first reads its value.
ABSENT_UNTIL_MEANINGFUL = {"mig_labeler_mig_config_match", "mig_labeler_mig_config_state_seconds"}


def test_every_series_the_alerts_and_the_dashboard_query_is_there_from_the_first_scrape(scraped):
    """Not only the family: a sample, so panels never say "No data" and rate() sees the first
    increment. Labelled series start with their known label values at 0."""
    samples = set(re.findall(r"^(mig_labeler_[a-z_]+)", scraped, re.M))
    assert sorted(n for n in used_metrics() - ABSENT_UNTIL_MEANINGFUL if n not in samples) == []
    assert not samples & ABSENT_UNTIL_MEANINGFUL  # nothing compared (no --mig-parted-config), nothing pending
    for series in ('mig_labeler_paused{reason=""} 0.0', 'mig_labeler_passes_total{result="sink_error"} 0.0',
                   'mig_labeler_passes_total{result="api_error"} 0.0', 'mig_labeler_api_errors_total{code="403"} 0.0',
                   'mig_labeler_nvml_errors_total{call="nvmlInit"} 0.0',
                   'mig_labeler_labels_rejected_total{key=""} 0.0',
                   'mig_labeler_publish_total{result="error",sink="node"} 0.0',
                   'mig_labeler_config_reloads_total{result="failure"} 0.0', "mig_labeler_config_stale 0.0",
                   "mig_labeler_mig_config_stuck 0.0"):
        assert series in scraped.splitlines(), series


def test_the_metrics_page_passes_promtool(scraped):
    result = subprocess.run([tool("promtool"), "check", "metrics"], input=scraped, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_counters_end_in_total_and_units_are_base_units(scraped):
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)", scraped, re.M))
    ours = {n: t for n, t in types.items() if n.startswith("mig_labeler_")}
    assert ours
    for name, kind in ours.items():
        if kind == "counter":
            assert name.endswith("_total"), name
        assert not re.search(r"_(percent|milliseconds|ms|minutes|bytes_mib)\b", name), name
