"""--driver-root-ctr-path (libnvidia-ml.so.1 under a mounted driver root) and --kube-api-qps /
--kube-api-burst (client-go's token bucket)."""

from __future__ import annotations

from types import SimpleNamespace

import pynvml
import pytest

from mig_labeler.config import Config
from mig_labeler.daemon.root import build_daemon
from mig_labeler.errors import NvmlUnavailable
from mig_labeler.kube.rate_limit import TokenBucket, client_go_limiter
from mig_labeler.sources import TopologySource
from mig_labeler.sources.driver_root import candidates, load_from_driver_root

from .conftest import FakeClock, fake_from


def test_a_missing_library_names_every_path_tried(tmp_path):
    with pytest.raises(NvmlUnavailable) as e:
        load_from_driver_root(SimpleNamespace(nvmlLib=None), str(tmp_path))
    message = str(e.value)
    assert e.value.code == pynvml.NVML_ERROR_LIBRARY_NOT_FOUND
    assert f"not under the driver root {tmp_path}" in message
    assert all(f"{path} (absent)" in message for path in candidates(str(tmp_path)))


def test_a_file_that_is_not_a_library_is_named_with_the_loaders_reason(tmp_path):
    broken = tmp_path / "usr/lib64/libnvidia-ml.so.1"
    broken.parent.mkdir(parents=True)
    broken.write_text("not an ELF file")
    with pytest.raises(NvmlUnavailable, match=r"usr/lib64/libnvidia-ml.so.1 \(.*\)"):
        load_from_driver_root(SimpleNamespace(nvmlLib=None), str(tmp_path))


def test_the_first_library_that_loads_is_handed_to_the_binding(tmp_path):
    found = tmp_path / "usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1"
    found.parent.mkdir(parents=True)
    found.write_bytes(b"")
    binding = SimpleNamespace(nvmlLib=None)
    assert load_from_driver_root(binding, str(tmp_path), load=lambda path: ("loaded", path)) == str(found)
    assert binding.nvmlLib == ("loaded", str(found))


class BindingWithoutLibrary:
    """pynvml on a node whose loader cannot find libnvidia-ml.so.1: nvmlInit fails with
    LIBRARY_NOT_FOUND until ``nvmlLib`` holds a library; then it answers as the fake NVML."""

    def __init__(self, fake) -> None:
        self.fake = fake
        self.nvmlLib = None

    def nvmlInit(self) -> None:
        if self.nvmlLib is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
        self.fake.nvmlInit()

    def __getattr__(self, name: str):
        return getattr(self.fake, name)


def test_the_source_looks_under_the_driver_root_when_the_loader_finds_nothing(tmp_path):
    library = tmp_path / "usr/lib64/libnvidia-ml.so.1"
    library.parent.mkdir(parents=True)
    library.write_bytes(b"")
    fake = fake_from("a30-mig-off")
    binding = BindingWithoutLibrary(fake)
    source = TopologySource(binding, None, driver_root=str(tmp_path), sysfs="/nonexistent")
    with pytest.raises(NvmlUnavailable, match="usr/lib64/libnvidia-ml.so.1"):  # not a real library
        source.read()
    binding.nvmlLib = "a library"  # as load_from_driver_root leaves it once one loads
    assert [g.name for g in source.read().gpus] == ["NVIDIA A30"]


def test_the_token_bucket_lets_a_burst_through_then_paces_at_qps():
    clock = FakeClock(0.0)
    bucket = TokenBucket(5, 10, clock)
    assert [bucket.reserve() for _ in range(10)] == [0.0] * 10
    assert bucket.reserve() == pytest.approx(0.2)
    assert bucket.reserve() == pytest.approx(0.4)
    clock.now += 10  # refilled, never above the burst
    assert [bucket.reserve() for _ in range(10)] == [0.0] * 10
    assert bucket.reserve() > 0


def test_client_gos_defaults_for_zero_and_negative():
    assert (client_go_limiter(0, 0).qps, client_go_limiter(0, 0).burst) == (5, 10)
    assert client_go_limiter(-1, 10) is None


def test_the_flags_reach_the_client():
    daemon = build_daemon(Config(kube_api_qps=20, kube_api_burst=40, node_name="n"), host="http://127.0.0.1:1")
    assert daemon.kube is not None and (daemon.kube.rate_limit.qps, daemon.kube.rate_limit.burst) == (20, 40)
