"""Stepping aside while the GPU Operator changes GPUs: the DaemonSets' node affinity, and the
daemon's own fence (no NVML call at all while paused, labels kept, one log line, a gauge)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from prometheus_client import generate_latest

from mig_labeler.check import Node, check, workloads
from mig_labeler.simulated.fake_nvml import FakeNvml

from .conftest import make_daemon, settle, wait_for_passes, wait_until, watching_daemon, write_fixture

NODE = "gpu-node-1"
ALL_1G = {"gpus": [{"model": "A100-SXM4-40GB", "count": 2, "mig": ["1g.5gb"] * 7}]}
ALL_3G = {"gpus": [{"model": "A100-SXM4-40GB", "count": 2, "mig": ["3g.20gb", "3g.20gb"]}]}
OPERATOR = "nvidia-mig-manager"


# -- the DaemonSets' required node affinity, evaluated as the scheduler does ----------------------
def scheduled(daemonset: dict[str, Any], labels: dict[str, str]) -> bool:
    """Through `mig-labeler check`'s scheduler rules (terms ORed, expressions ANDed, an empty term
    matches nothing): does the DaemonSet's pod land on a node with these labels?"""
    (workload,), _ = workloads(daemonset, "manifest")
    return check(workload, [Node("node", labels, {})]).nodes_matching == ["node"]


GPU_NODE = {"feature.node.kubernetes.io/pci-10de.present": "true"}
CASES = [
    ("operator says true", GPU_NODE | {"nvidia.com/gpu.deploy.client": "true"}, True),
    ("no operator", GPU_NODE, True),
    ("bootstrapped by hand, no NFD", {"nvidia.com/gpu.present": "true"}, True),
    ("paused for a MIG change", GPU_NODE | {"nvidia.com/gpu.deploy.client": "paused-for-mig-change"}, False),
    ("paused for a driver upgrade", GPU_NODE | {"nvidia.com/gpu.deploy.client": "paused-for-driver-upgrade"}, False),
    ("operator disabled the client", GPU_NODE | {"nvidia.com/gpu.deploy.client": "false"}, False),
    ("no GPU", {"kubernetes.io/os": "linux"}, False),
    ("no GPU, client true", {"nvidia.com/gpu.deploy.client": "true"}, False),
]


@pytest.mark.parametrize(("why", "labels", "expected"), CASES, ids=[c[0] for c in CASES])
def test_every_daemonset_runs_only_where_the_operator_lets_nvml_clients_run(rendered, why, labels, expected):
    for name, objects in rendered.items():
        # the GPU Operator's overlay selects gpu.deploy.client=true in nodeSelector (mig-manager waits
        # for such pods): it needs the operator, which sets the label on every GPU node
        needs_operator = name == "mig-parted-operator" and "nvidia.com/gpu.deploy.client" not in labels
        for ds in (o for o in objects if o["kind"] == "DaemonSet"):
            # the DRA overlay runs only where the operator runs its DRA driver (test below)
            assert scheduled(ds, labels) is (expected and not needs_operator and name != "dra"), (name, why)


DRA = {"nvidia.com/gpu.deploy.dra-driver": "true"}


@pytest.mark.parametrize(("why", "labels", "expected"), [
    ("DRA node, client true", DRA | {"nvidia.com/gpu.deploy.client": "true"}, True),
    ("DRA node, no client label", DRA, True),
    ("DRA node, paused for a driver upgrade", DRA | {"nvidia.com/gpu.deploy.client": "paused-for-driver-upgrade"},
     False),
    ("device-plugin GPU node", GPU_NODE | {"nvidia.com/gpu.deploy.client": "true"}, False),
])
def test_the_dra_overlay_runs_on_dra_nodes_where_the_operator_lets_nvml_clients_run(rendered, why, labels, expected):
    (ds,) = [o for o in rendered["dra"] if o["kind"] == "DaemonSet"]
    assert scheduled(ds, labels) is expected, why


@pytest.fixture(scope="module")
def rendered():
    from tools.manifests_check import entry_points, render

    return {p.name: render(p) for p in entry_points()}


# -- the daemon's own fence -------------------------------------------------------------------------
def nvml_inits(daemon) -> int:
    return int(daemon.source.fake.calls["nvmlInit"])


def metric(daemon, text: str) -> bool:
    return text in generate_latest(daemon.metrics.registry).decode()


@pytest.fixture
def running(kube_api, tmp_path):
    kube_api.edit_labels(NODE, {"nvidia.com/gpu.deploy.client": "true"}, manager="gpu-operator")
    node_file = write_fixture(tmp_path / "node.yaml", ALL_1G)
    with watching_daemon(kube_api, node_file) as daemon:
        assert kube_api.labels(NODE).get("nvidia.com/mig-1g.5gb.count") == "14"
        yield daemon, node_file


def operator(kube_api, **labels: str) -> None:
    names = {"client": "nvidia.com/gpu.deploy.client", "state": "nvidia.com/mig.config.state",
             "config": "nvidia.com/mig.config", "gfd": "nvidia.com/gpu.deploy.gpu-feature-discovery"}
    kube_api.edit_labels(NODE, {names[k]: v for k, v in labels.items()}, manager=OPERATOR)


def ours(kube_api) -> dict[str, str]:
    return {k: v for k, v in kube_api.labels(NODE).items()
            if not k.startswith(("nvidia.com/gpu.deploy.", "nvidia.com/mig.config"))}


def test_a_mig_change_is_waited_out_without_nvml_and_published_at_once_after(running, kube_api, caplog):
    caplog.set_level(logging.INFO, logger="mig_labeler")
    daemon, node_file = running
    before, inits = ours(kube_api), nvml_inits(daemon)
    operator(kube_api, client="paused-for-mig-change", gfd="paused-for-mig-change", config="all-3g.20gb",
             state="pending")
    wait_until(lambda: metric(daemon, 'mig_labeler_paused{reason="gpu.deploy.client=paused-for-mig-change"} 1.0'))
    passes = daemon.passes_done
    daemon.wake.set()  # a pass now (as the interval would) must not touch NVML
    wait_for_passes(daemon, passes + 1)
    operator(kube_api, state="rebooting")
    write_fixture(node_file, ALL_3G)  # the GPUs were reset into the new layout
    daemon.wake.set()
    wait_for_passes(daemon, passes + 2)
    assert nvml_inits(daemon) == inits and ours(kube_api) == before
    assert daemon.health.readiness() == (True, "ok")
    assert metric(daemon, f"mig_labeler_nvml_inits_total {float(inits)}")  # the same count as the fake NVML
    operator(kube_api, state="success", client="true", gfd="true")
    wait_until(lambda: kube_api.labels(NODE).get("nvidia.com/mig-3g.20gb.count") == "4")
    assert "nvidia.com/mig-1g.5gb.count" not in kube_api.labels(NODE)
    assert metric(daemon, 'mig_labeler_paused{reason=""} 0.0')  # reads 0, the series stays
    assert not metric(daemon, "paused-for-mig-change\"} 1.0")
    messages = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("paused: ") for m in messages) == 1
    assert sum(m.startswith("pause over") for m in messages) == 1


def test_a_driver_upgrade_pause_is_waited_out_too(running, kube_api):
    daemon, node_file = running
    inits = nvml_inits(daemon)
    operator(kube_api, client="paused-for-driver-upgrade")
    wait_until(lambda: metric(daemon, 'reason="gpu.deploy.client=paused-for-driver-upgrade"} 1.0'))
    settle(daemon)
    settle(daemon)
    assert nvml_inits(daemon) == inits
    write_fixture(node_file, ALL_3G)
    operator(kube_api, client="true")
    wait_until(lambda: kube_api.labels(NODE).get("nvidia.com/mig-3g.20gb.count") == "4")
    assert nvml_inits(daemon) == inits + 1


def test_a_failed_reconfiguration_publishes_what_nvml_now_shows(running, kube_api):
    daemon, node_file = running
    operator(kube_api, config="all-3g.20gb", state="pending")
    wait_until(lambda: metric(daemon, 'reason="mig.config.state=pending"} 1.0'))
    write_fixture(node_file, {"gpus": [{"model": "A100-SXM4-40GB", "mig": ["3g.20gb"]},
                                       {"model": "A100-SXM4-40GB", "mig": ["1g.5gb"] * 7}]})
    operator(kube_api, state="failed")
    wait_until(lambda: kube_api.labels(NODE).get("nvidia.com/mig-3g.20gb.count") == "1")
    assert kube_api.labels(NODE)["nvidia.com/mig-1g.5gb.count"] == "7"


class PausingNvml(FakeNvml):
    """Real NVML answers while, halfway through a pass, the GPU Operator pauses NVML clients."""

    def __init__(self, source: Any, on_init: Any) -> None:
        super().__init__(source)
        self.on_init = on_init

    def nvmlInitWithFlags(self, flags: int) -> None:
        super().nvmlInitWithFlags(flags)
        self.on_init()


def test_a_pause_in_the_middle_of_a_pass_finishes_it_without_publishing(kube_api, tmp_path):
    kube_api.edit_labels(NODE, {"nvidia.com/gpu.deploy.client": "true"}, manager="gpu-operator")
    node_file = write_fixture(tmp_path / "node.yaml", ALL_1G)
    daemon = make_daemon(kube_api, node_file, sleep_interval=3600.0, watch=True)
    daemon.node.start_watching()
    wait_until(lambda: daemon.node.watched() is not None)
    assert daemon.run_pass().ok
    before = ours(kube_api)
    write_fixture(node_file, ALL_3G)

    def pause_now() -> None:
        operator(kube_api, client="paused-for-mig-change")
        wait_until(lambda: daemon.node.watched().labels["nvidia.com/gpu.deploy.client"] != "true")

    daemon.source.nvml = daemon.source.fake = PausingNvml(node_file, pause_now)
    result = daemon.run_pass()
    assert result.ok and not result.wrote and result.held.startswith("the GPU Operator set")
    assert ours(kube_api) == before
    daemon.stop.request()
