"""A lost GPU is isolated, reported and labelled truthfully; a GPU fallen off the bus is reported.

Through the daemon, the real pynvml binding over the fake library, and the fake API server."""

from __future__ import annotations

from prometheus_client import generate_latest

from .conftest import labels_of, make_daemon, write_fixture
from .test_mig_config_verify import events

NODE = "gpu-node-1"
DGX = {"machine_type": "NVIDIA DGX A100", "gpus": [{"model": "A100-SXM4-40GB", "count": 4, "mig": ["3g.20gb"] * 2}]}
GPU_2_LOST = [{"call": "nvmlDeviceGetMemoryInfo", "gpu": 2, "error": "NVML_ERROR_GPU_IS_LOST"}]  # a first read
GPU_2_GONE = [{"call": "*", "gpu": 2, "error": "NVML_ERROR_GPU_IS_LOST"}]  # every call, as a GPU off the bus answers
HEALTHY = "nvidia.com/gpu.healthy-count"


def gauge(daemon, state: str) -> float:
    text = generate_latest(daemon.metrics.registry).decode()
    line = next(x for x in text.splitlines() if x.startswith(f'mig_labeler_gpus{{state="{state}"}}'))
    return float(line.split()[-1])


def test_one_lost_gpu_leaves_the_labels_of_the_others_and_recovery_restores_everything(kube_api, tmp_path):
    node_file = write_fixture(tmp_path / "node.yaml", DGX)
    daemon = make_daemon(kube_api, node_file)
    assert daemon.run_pass().ok
    healthy = kube_api.labels(NODE)
    assert healthy["nvidia.com/mig-3g.20gb.count"] == "8" and healthy[HEALTHY] == "4"

    write_fixture(node_file, DGX | {"faults": GPU_2_GONE})
    result = daemon.run_pass()
    assert result.ok and daemon.health.readiness()[0]  # the pass published: the node's labels are true
    lost = kube_api.labels(NODE)
    assert lost["nvidia.com/mig-3g.20gb.count"] == "6"  # GPU 2's MIG devices are gone
    assert lost["nvidia.com/gpu.count"] == "4"  # the node still has 4 (the device plugin's capacity)
    assert lost[HEALTHY] == "3"
    assert {k: v for k, v in lost.items() if k not in (HEALTHY, "nvidia.com/mig-3g.20gb.count")} == \
        {k: v for k, v in healthy.items() if k not in (HEALTHY, "nvidia.com/mig-3g.20gb.count")}
    (event,) = events(kube_api, "GPULost")
    assert event[0] == "Warning" and "GPU 2 (UUID GPU-" in event[1] and "PCI 0000:19:00.0" in event[1]
    assert "GPU is lost" in event[1]
    assert (gauge(daemon, "healthy"), gauge(daemon, "lost")) == (3, 1)

    assert daemon.run_pass().ok  # still lost: no second Event
    assert len(events(kube_api, "GPULost")) == 1

    write_fixture(node_file, DGX)  # a GPU reset brought it back: picked up without a restart
    assert daemon.run_pass().ok
    assert kube_api.labels(NODE) == healthy
    (back,) = events(kube_api, "GPURecovered")
    assert back[0] == "Normal" and "GPU 2" in back[1]
    assert (gauge(daemon, "healthy"), gauge(daemon, "lost")) == (4, 0)


def test_every_gpu_lost_keeps_the_published_labels_and_still_reports(kube_api, tmp_path):
    one = {"gpus": [{"model": "A30"}]}
    node_file = write_fixture(tmp_path / "node.yaml", one)
    daemon = make_daemon(kube_api, node_file)
    assert daemon.run_pass().ok
    good = kube_api.labels(NODE)
    write_fixture(node_file, one | {"faults": [{"call": "*", "gpu": 0, "error": "NVML_ERROR_GPU_IS_LOST",
                                                "from_pass": 2}]})
    result = daemon.run_pass()
    assert not result.ok and "every GPU NVML lists is lost: GPU 0" in result.error
    assert kube_api.labels(NODE) == good
    assert events(kube_api, "GPULost") and gauge(daemon, "lost") == 1


def test_a_gpu_fallen_off_the_bus_is_reported_from_the_pci_bus(kube_api, tmp_path):
    node = {"gpus": [{"model": "H100-SXM5-80GB", "count": 3}, {"model": "H100-SXM5-80GB", "off_bus": True}]}
    daemon = make_daemon(kube_api, write_fixture(tmp_path / "node.yaml", node))
    assert daemon.run_pass().ok
    labels = kube_api.labels(NODE)
    assert labels["nvidia.com/gpu.count"] == labels[HEALTHY] == "3"  # NVML lists 3, as GFD would count
    (event,) = events(kube_api, "GPUMissingFromNVML")
    assert event[0] == "Warning" and "0000:1a:00.0" in event[1]
    assert gauge(daemon, "missing") == 1


def test_labels_of_a_dgx_with_one_lost_gpu_before_and_after():
    before, after = labels_of(DGX, "mixed"), labels_of(DGX | {"faults": GPU_2_LOST}, "mixed")
    changed = {k: (before.get(k), after.get(k)) for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed == {HEALTHY: ("4", "3"), "nvidia.com/mig-3g.20gb.count": ("8", "6")}


def test_the_pci_scan_counts_nvidia_gpus_bound_to_the_nvidia_driver_only(tmp_path):
    from mig_labeler.sources.pci_bus import gpus_on_bus, missing_from_nvml

    devices = tmp_path / "bus" / "pci" / "devices"
    for address, vendor, klass, driver in [("0000:17:00.0", "0x10de", "0x030200", "nvidia"),   # a GPU
                                           ("0000:18:00.0", "0x10de", "0x030000", "nvidia"),   # a VGA one
                                           ("0000:19:00.0", "0x10de", "0x030200", "vfio-pci"),  # passed to a VM
                                           ("0000:1a:00.0", "0x10de", "0x068000", "nvidia"),   # an NVSwitch
                                           ("0000:1b:00.0", "0x10de", "0x030200", None),       # no driver bound
                                           ("0000:00:00.0", "0x8086", "0x060000", "pcieport")]:
        path = devices / address
        path.mkdir(parents=True)
        (path / "vendor").write_text(vendor + "\n")
        (path / "class").write_text(klass + "\n")
        if driver:
            (path / "driver").symlink_to(f"../../../bus/pci/drivers/{driver}")
    assert gpus_on_bus(str(tmp_path)) == {"0000:17:00.0", "0000:18:00.0"}
    assert missing_from_nvml(gpus_on_bus(str(tmp_path)), frozenset({"0000:17:00.0"})) == ("0000:18:00.0",)
    assert missing_from_nvml(gpus_on_bus(str(tmp_path)), None) == ()  # a bus ID NVML did not give: no comparison
    assert gpus_on_bus(str(tmp_path / "nothing")) is None
