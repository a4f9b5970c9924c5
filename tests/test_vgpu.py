"""vGPU labels from PCI config space (gfd-reference §1.11): the production scan over directories of
real-format 256-byte config files, the fixture's ``vgpu`` key, and GFD's failure rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from mig_labeler.errors import FixtureError
from mig_labeler.simulated.fake_sysfs import INTEL, NVIDIA, config_space, write_fake_sysfs
from mig_labeler.simulated.fixture import parse_fixture
from mig_labeler.sources.vgpu import VgpuError, host_driver, read_vgpu, vendor_capability
from mig_labeler.topology import Vgpu

from .conftest import labels_of, read


def device(root: Path, address: str, vendor: int, config: bytes) -> None:
    path = root / "bus" / "pci" / "devices" / address
    path.mkdir(parents=True)
    (path / "vendor").write_text(f"0x{vendor:04x}\n")
    (path / "config").write_bytes(config)


def test_a_vgpu_gives_present_and_the_host_driver(tmp_path):
    device(tmp_path, "0000:00:00.0", INTEL, config_space(INTEL, 0x1237))
    device(tmp_path, "0000:17:00.0", NVIDIA, config_space(NVIDIA, 0x20B0, ("550.54.16", "r550_40")))
    assert read_vgpu(str(tmp_path)) == Vgpu(True, "550.54.16", "r550_40")


def test_gfds_own_test_values(tmp_path):
    device(tmp_path, "0000:17:00.0", NVIDIA, config_space(NVIDIA, 0x20B0, ("460.16", "r460_00")))
    assert read_vgpu(str(tmp_path)) == Vgpu(True, "460.16", "r460_00")


def test_an_nvidia_device_without_the_vf_signature_is_not_a_vgpu(tmp_path):
    device(tmp_path, "0000:17:00.0", NVIDIA, config_space(NVIDIA, 0x20B0))
    assert read_vgpu(str(tmp_path)) == Vgpu(False)


def test_with_several_vgpus_the_last_one_wins(tmp_path):
    device(tmp_path, "0000:17:00.0", NVIDIA, config_space(NVIDIA, 0x20B0, ("535.1", "r535_00")))
    device(tmp_path, "0000:65:00.0", NVIDIA, config_space(NVIDIA, 0x20B0, ("550.54.16", "r550_40")))
    assert read_vgpu(str(tmp_path)).host_driver_version == "550.54.16"


def test_an_unprivileged_read_or_no_sysfs_omits_every_vgpu_label(tmp_path):
    device(tmp_path, "0000:17:00.0", NVIDIA, config_space(NVIDIA, 0x20B0, size=64))
    assert read_vgpu(str(tmp_path)) is None
    assert read_vgpu(str(tmp_path / "nothing")) is None
    assert not any(k.startswith("nvidia.com/vgpu.") for k in labels_of("a30-mig-off"))  # conftest: no sysfs


def test_a_looping_capability_chain_ends():
    config = bytearray(config_space(NVIDIA, 0x20B0))
    config[0x69] = 0x60  # PCI Express points back at power management
    assert vendor_capability(bytes(config)) == b""


@pytest.mark.parametrize("records", [b"", bytes([0x01, 0x01]), bytes([0x01, 0x40]), bytes([0x00, 0x05, 1, 2, 3])])
def test_a_malformed_vgpu_record_fails_the_pass_with_one_line(records):
    with pytest.raises(VgpuError, match="vGPU 0000:17:00.0"):
        host_driver(b"\x09\x00\x40VF" + records, "0000:17:00.0")


def test_the_fixture_key_puts_one_vgpu_in_the_fake_sysfs(tmp_path):
    fixture = parse_fixture({"gpus": [{"model": "A30"}], "vgpu": {"host_driver_version": "550.54.16",
                                                                 "host_driver_branch": "r550_40"}})
    root = write_fake_sysfs(fixture, tmp_path)
    doc = {"gpus": [{"model": "A30"}], "vgpu": {"host_driver_version": "550.54.16", "host_driver_branch": "r550_40"}}
    labels = {k: v for k, v in _labels(doc, root).items() if k.startswith("nvidia.com/vgpu.")}
    assert labels == {"nvidia.com/vgpu.present": "true", "nvidia.com/vgpu.host-driver-version": "550.54.16",
                      "nvidia.com/vgpu.host-driver-branch": "r550_40"}


def test_without_the_key_the_fake_sysfs_says_no_vgpu_even_without_gpus(tmp_path):
    root = write_fake_sysfs(parse_fixture({"gpus": []}), tmp_path)
    assert _labels({"gpus": []}, root) == {"nvidia.com/vgpu.present": "false"}


@pytest.mark.parametrize("value", ["", "12345678901", "é"])
def test_fixture_vgpu_fields_must_fit_the_record(value):
    with pytest.raises(FixtureError, match="vgpu.host_driver_branch must be 1 to 10 ASCII"):
        parse_fixture({"gpus": [], "vgpu": {"host_driver_version": "550.54.16", "host_driver_branch": value}})


def _labels(doc, root: Path) -> dict[str, str]:
    from mig_labeler.labels import compute_labels

    from .conftest import make_config

    return compute_labels(read(doc, sysfs=str(root)), make_config(), 0)
