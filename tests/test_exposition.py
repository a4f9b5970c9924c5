"""``/metrics`` is written by ``daemon/exposition.py``, not by ``prometheus_client.generate_latest``
(whose module costs the daemon 0.7 MiB): the client's own function is the judge, byte for byte,
on the daemon's registry in every state these tests can drive, and on generated label values."""

from __future__ import annotations

import math
import re
import urllib.error
import urllib.request

import prometheus_client
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mig_labeler.daemon.exposition import CONTENT_TYPE, render
from mig_labeler.daemon.health import HealthServer, HealthState
from mig_labeler.daemon.metrics import Metrics, new_registry
from mig_labeler.errors import ApiError
from mig_labeler.simulated.fake_nvml import FakeNvml
from mig_labeler.sources.nvml import read_topology

AWKWARD = ['quote " in it', "back\\slash", "new\nline", "ünïcødé ☃", "", "tab\there", "trailing \\"]


def exercised() -> Metrics:
    """The daemon's metrics with every family holding samples, including awkward label values."""
    metrics = Metrics(new_registry())
    metrics.initialise_sinks(["node", "nodefeature", "file"])
    metrics.passes.labels(result="success").inc(3)
    metrics.pass_duration.observe(0.004)
    metrics.pass_duration.observe(12.5)  # past the last bucket: only +Inf counts it
    metrics.reaction.observe(0.0)
    metrics.count_api_error(ApiError("x", status=503))
    for value in AWKWARD:
        metrics.labels_rejected.labels(key=value).inc()
        metrics.nvml_errors.labels(call=value).inc(0.5)
    metrics.set_paused('nvidia.com/gpu.deploy.gpu-feature-discovery="false"')
    metrics.observe_topology(read_topology(FakeNvml("dgx-a100-mixed")))
    metrics.last_success.set(1_764_806_400.123456)
    metrics.labels_current.set(float("nan"))
    metrics.mig_config_state_seconds.labels(state="pending").set(float("inf"))
    metrics.dra_devices.labels(source="nvml", type="gpu").set(-0.0)
    metrics.gpus.labels(state="healthy").set(1e21)  # Go's exponent form
    metrics.watch_up.labels(watch="node").set(1e-7)
    return metrics


def test_the_daemons_registry_renders_as_the_client_renders_it():
    registry = exercised().registry
    assert render(registry) == generate_latest(registry)
    assert b"_created" in render(registry) and b'\\"' in render(registry) and b"\\n" in render(registry)


def test_without_created_series_too():
    prometheus_client.disable_created_metrics()
    try:
        registry = exercised().registry
        assert b"_created" not in generate_latest(registry)
        assert render(registry) == generate_latest(registry)
    finally:
        prometheus_client.enable_created_metrics()


def test_the_other_family_types_the_client_has():
    """Not used by the daemon today; the loop handles them as the client does, should one be added."""
    registry = CollectorRegistry()
    Info("build", "Build facts: with a \\ and a\nnewline.", registry=registry).info({"version": "1.2", "q": '"'})
    Gauge("plain", "A gauge without labels.", registry=registry).set(2)
    Counter("requests", "Requests.", ["code"], registry=registry).labels(code="200").inc()
    Histogram("latency_seconds", "Latency.", registry=registry, buckets=(0.1, 1)).observe(0.5)
    assert render(registry) == generate_latest(registry)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.text(max_size=12), min_size=1, max_size=6, unique=True),
       numbers=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=6))
def test_generated_label_values_and_numbers(values, numbers):
    registry = CollectorRegistry()
    gauge = Gauge("mig_labeler_g", "A gauge.", ["value"], registry=registry)
    for value, number in zip(values, numbers * len(values), strict=False):
        gauge.labels(value=value).set(number)
    assert render(registry) == generate_latest(registry)


def test_every_name_the_daemon_registers_is_in_the_classic_character_set():
    """What ``render`` assumes (it writes names unescaped)."""
    for family in exercised().registry.collect():
        assert re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", family.name), family.name
        for sample in family.samples:
            assert re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", sample.name), sample.name
            assert all(re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", key) for key in sample.labels), sample.labels


def test_the_page_parses_back_to_the_registrys_values():
    """An independent reader (the client's text parser) gets every sample back."""
    registry = exercised().registry
    parsed = {(s.name, tuple(sorted(s.labels.items()))): s.value
              for family in text_string_to_metric_families(render(registry).decode()) for s in family.samples}
    for family in registry.collect():
        for sample in family.samples:
            got = parsed[(sample.name, tuple(sorted(sample.labels.items())))]
            assert got == sample.value or (math.isnan(got) and math.isnan(sample.value))


@pytest.fixture
def served():
    metrics = exercised()
    server = HealthServer(0, HealthState(), metrics.registry, host="127.0.0.1").start()
    yield server, metrics
    server.stop()


def test_metrics_is_served_with_the_text_formats_content_type(served):
    server, metrics = served
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10) as response:
        assert response.headers["Content-Type"] == CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
        assert response.read() == generate_latest(metrics.registry)


def test_a_request_the_server_cannot_serve_gets_its_error_page(served):
    """``http.server`` writes that page with ``html.escape``: ``html`` waits (deferred_imports)
    until then, and is whole when it is needed."""
    server, _ = served
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}/metrics", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as failed:
        urllib.request.urlopen(request, timeout=10)
    assert failed.value.code == 501 and b"Unsupported method" in failed.value.read()
