"""The production NVML reader against the fake pynvml: topologies and every fault."""

from __future__ import annotations

import pynvml
import pytest

from mig_labeler.errors import FixtureError, NvmlQueryFailed, NvmlUnavailable
from mig_labeler.simulated.fixture import parse_fixture
from mig_labeler.sources.nvml import ReaderCache, read_topology

from .conftest import binding_from, fake_from, read, write_fixture


def test_dgx_h100_has_eight_gpus_of_seven_1g10gb_devices():
    topology = read("dgx-h100-7x1g")
    assert [g.name for g in topology.gpus] == ["NVIDIA H100 80GB HBM3"] * 8
    assert {m.profile for m in topology.mig_devices} == {"1g.10gb"}
    assert len(topology.mig_devices) == 56
    assert topology.gpus[0].memory_mib == 81559
    assert topology.gpus[0].compute_capability == (9, 0)
    assert topology.gpus[0].pci_class == 0x030200
    assert topology.machine_type == "NVIDIA DGX H100"


def test_a30_with_mig_off_is_capable_but_not_enabled():
    (gpu,) = read("a30-mig-off").gpus
    assert gpu.mig_capable and not gpu.mig_enabled and gpu.mig_devices == ()


def test_non_mig_gpu_reports_no_mig_mode():
    (gpu,) = read({"gpus": [{"name": "Tesla T4", "memory_mib": 15360, "compute_capability": [7, 5]}]}).gpus
    assert gpu.mig_mode is None


def test_display_devices_are_skipped():
    topology = read({"gpus": [{"model": "A100-SXM4-40GB"}, {"name": "DGX Display", "memory_mib": 4096,
                                                            "compute_capability": [7, 5]}]})
    assert [g.name for g in topology.gpus] == ["NVIDIA A100-SXM4-40GB"]


def test_reader_leaves_nvml_shut_down_after_a_pass():
    binding = binding_from("a30-mig-off")
    read_topology(binding.nvml)
    with pytest.raises(binding.nvml.NVMLError_Uninitialized):
        binding.nvml.nvmlDeviceGetCount()


def test_fake_rejects_parent_only_calls_on_mig_handles_like_nvml():
    fake = fake_from("dgx-a100-7x1g")
    fake.nvmlInit()
    mig = fake.nvmlDeviceGetMigDeviceHandleByIndex(fake.nvmlDeviceGetHandleByIndex(0), 0)
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        fake.nvmlDeviceGetMigMode(mig)
    with pytest.raises(pynvml.NVMLError_NotSupported):
        fake.nvmlDeviceGetAttributes(fake.nvmlDeviceGetHandleByIndex(0))
    assert fake.nvmlDeviceIsMigDeviceHandle(mig).value == 1  # a c_uint, as pynvml returns


def test_fake_answers_not_found_for_an_empty_mig_slot():
    fake = fake_from("dgx-a100-mixed")
    fake.nvmlInit()
    with pytest.raises(pynvml.NVMLError_NotFound):
        fake.nvmlDeviceGetMigDeviceHandleByIndex(fake.nvmlDeviceGetHandleByIndex(4), 3)


def test_sparse_mig_slots_are_skipped_not_fatal():
    topology = read("dgx-a100-mixed")
    assert [len(g.mig_devices) for g in topology.gpus] == [4, 4, 4, 4, 1, 1, 3, 3]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("NVML_ERROR_LIBRARY_NOT_FOUND", "libnvidia-ml.so.1 not found"),
        ("NVML_ERROR_DRIVER_NOT_LOADED", "driver is not loaded"),
        ("NVML_ERROR_LIB_RM_VERSION_MISMATCH", "NVML initialisation failed"),
    ],
)
def test_init_failure_is_nvml_unavailable_with_a_clear_reason(code, message):
    with pytest.raises(NvmlUnavailable, match=message):
        read({"init_error": code, "gpus": [{"model": "A30"}]})


LOST_AT_MEMORY = {"gpus": [{"model": "A100-SXM4-40GB", "count": 4, "mig": ["3g.20gb", "3g.20gb"]}],
                  "faults": [{"call": "nvmlDeviceGetMemoryInfo", "gpu": 2, "error": "NVML_ERROR_GPU_IS_LOST"}]}


def test_a_lost_gpu_is_left_out_and_named_while_the_others_are_read():
    """It once failed the whole read (the node's labels froze, nothing said which GPU)."""
    topology = read(LOST_AT_MEMORY)
    assert [g.index for g in topology.gpus] == [0, 1, 3]
    assert len(topology.mig_devices) == 6
    (lost,) = topology.lost
    assert (lost.index, lost.name, lost.pci_bus_id) == (2, "NVIDIA A100-SXM4-40GB", "0000:19:00.0")
    assert lost.uuid is not None and lost.uuid.startswith("GPU-")
    assert "nvmlDeviceGetMemoryInfo on GPU 2 failed: GPU is lost" in lost.error
    assert lost.describe() == f"GPU 2 (UUID {lost.uuid}, PCI 0000:19:00.0)"


def test_a_gpu_that_answers_nothing_is_lost_with_what_this_process_read_of_it_before():
    doc = {"gpus": [{"model": "H100-SXM5-80GB", "count": 2}],
           "faults": [{"call": "*", "gpu": 1, "error": "NVML_ERROR_GPU_IS_LOST", "from_pass": 2, "until_pass": 2}]}
    nvml, cache = binding_from(doc).nvml, ReaderCache()
    first = read_topology(nvml, cache=cache)
    second = read_topology(nvml, cache=cache)
    assert [g.index for g in second.gpus] == [0]
    assert (second.lost[0].uuid, second.lost[0].pci_bus_id) == (first.gpus[1].uuid, first.gpus[1].pci_bus_id)
    third = read_topology(nvml, cache=cache)  # it came back: read again, nothing restarted
    assert third == first and not third.lost


def test_a_gpu_lost_from_the_start_is_known_by_its_index_alone():
    doc = {"gpus": [{"model": "A30", "count": 2}],
           "faults": [{"call": "*", "gpu": 0, "error": "NVML_ERROR_GPU_IS_LOST"}]}
    topology = read(doc)
    assert [g.index for g in topology.gpus] == [1]
    assert topology.lost[0].describe() == "GPU 0"
    assert topology.nvml_bus_ids is None  # a bus ID unknown: the PCI comparison cannot be made


@pytest.mark.parametrize("error", ["NVML_ERROR_UNKNOWN", "NVML_ERROR_RESET_REQUIRED"])
def test_unknown_on_every_attempt_and_reset_required_mean_gone_too(error):
    doc = {"gpus": [{"model": "A30", "count": 2}],
           "faults": [{"call": "nvmlDeviceGetCudaComputeCapability", "gpu": 1, "error": error}]}
    binding = binding_from(doc)
    topology = read_topology(binding.nvml)
    assert [g.index for g in topology.gpus] == [0] and topology.lost[0].index == 1
    tries = 2 if error == "NVML_ERROR_UNKNOWN" else 1  # UNKNOWN is read again at once before giving up
    assert binding.calls["nvmlDeviceGetCudaComputeCapability"] == 1 + tries


def test_an_error_that_does_not_mean_gone_still_fails_the_read_naming_call_and_gpu():
    doc = {"gpus": [{"model": "A100-SXM4-40GB", "count": 4}],
           "faults": [{"call": "nvmlDeviceGetMemoryInfo", "gpu": 3, "error": "NVML_ERROR_INSUFFICIENT_SIZE"}]}
    with pytest.raises(NvmlQueryFailed, match="nvmlDeviceGetMemoryInfo on GPU 3 failed: Insufficient Size"):
        read(doc)


def test_attributes_not_supported_fails_the_read_instead_of_guessing():
    doc = {"gpus": [{"model": "A100-SXM4-40GB", "mig": ["1g.5gb"]}],
           "faults": [{"call": "nvmlDeviceGetAttributes", "error": "NVML_ERROR_NOT_SUPPORTED"}]}
    with pytest.raises(NvmlQueryFailed, match="nvmlDeviceGetAttributes on GPU 0 failed: Not Supported"):
        read(doc)


def test_gpu_instance_permission_error_points_at_mig_monitor_devices():
    doc = {"gpus": [{"model": "H100-SXM5-80GB", "mig": ["1g.10gb"]}],
           "faults": [{"call": "nvmlDeviceGetGpuInstanceById", "error": "NVML_ERROR_NO_PERMISSION"}]}
    with pytest.raises(NvmlQueryFailed, match="NVIDIA_MIG_MONITOR_DEVICES=all"):
        read(doc)


@pytest.mark.parametrize("version", ["550", "550.54.15.1", "garbage"])
def test_malformed_driver_version_fails_the_read(version):
    with pytest.raises(NvmlQueryFailed, match="malformed driver version"):
        read({"driver_version": version, "gpus": [{"model": "A30"}]})


def test_mig_mode_not_supported_on_one_gpu_means_not_capable():
    doc = {"gpus": [{"model": "A30"}, {"model": "A30"}],
           "faults": [{"call": "nvmlDeviceGetMigMode", "gpu": 0, "error": "NVML_ERROR_NOT_SUPPORTED"}]}
    gpus = read(doc).gpus
    assert gpus[0].mig_mode is None and gpus[1].mig_capable


def test_missing_memory_is_absent_not_zero():
    doc = {"gpus": [{"model": "A30"}],
           "faults": [{"call": "nvmlDeviceGetMemoryInfo", "error": "NVML_ERROR_NOT_SUPPORTED"}]}
    assert read(doc).gpus[0].memory_mib is None


def test_pci_info_ext_missing_in_old_driver_leaves_class_unknown():
    doc = {"gpus": [{"model": "A30"}],
           "faults": [{"call": "nvmlDeviceGetPciInfoExt", "error": "NVML_ERROR_FUNCTION_NOT_FOUND"}]}
    assert read(doc).gpus[0].pci_class is None


def test_fixture_file_is_reloaded_on_every_init(tmp_path):
    path = write_fixture(tmp_path / "node.yaml", {"gpus": [{"model": "A100-SXM4-40GB", "mig": ["7g.40gb"]}]})
    nvml = binding_from(path).nvml
    assert [m.profile for m in read_topology(nvml).mig_devices] == ["7g.40gb"]
    write_fixture(path, {"gpus": [{"model": "A100-SXM4-40GB", "mig": ["3g.20gb", "2g.10gb", "1g.5gb"]}]})
    assert [m.profile for m in read_topology(nvml).mig_devices] == ["3g.20gb", "2g.10gb", "1g.5gb"]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"gpus": [{"model": "B9000"}]}, "unknown model 'B9000'"),
        ({"gpus": [{"model": "A30", "mig": ["9g.99gb"]}]}, "has no MIG profile '9g.99gb'"),
        ({"gpus": [{"name": "x"}]}, "must give memory_mib, compute_capability"),
        ({"gpus": [{"model": "A30", "mig": ["1g.6gb"] * 5}]}, "at most 4"),
        ({"gpus": [{"name": "T4", "memory_mib": 1, "compute_capability": [7, 5], "mig": []}]}, "not MIG-capable"),
        ({"faults": [{"call": "x", "error": "GPU_IS_LOST"}]}, "not an NVML_ERROR_"),
    ],
)
def test_malformed_fixture_is_a_fixture_error(doc, message):
    with pytest.raises(FixtureError, match=message):
        parse_fixture(doc)


def test_static_facts_and_profile_tables_are_read_once_across_passes():
    fake = binding_from("dgx-h100-7x1g")
    cache = ReaderCache()
    first = read_topology(fake.nvml, cache=cache)
    fake.calls.clear()
    assert read_topology(fake.nvml, cache=cache) == first
    assert fake.calls["nvmlDeviceGetGpuInstanceProfileInfo"] == 0
    assert fake.calls["nvmlGpuInstanceGetComputeInstanceProfileInfo"] == 0
    assert fake.calls["nvmlDeviceGetName"] == 0
    assert fake.calls["nvmlDeviceGetMigDeviceHandleByIndex"] == 56  # MIG devices are re-read every pass


def test_cached_reader_still_sees_a_reconfiguration(tmp_path):
    path = write_fixture(tmp_path / "node.yaml", {"gpus": [{"model": "H100-SXM5-80GB", "mig": ["7g.80gb"]}]})
    nvml, cache = binding_from(path).nvml, ReaderCache()
    read_topology(nvml, cache=cache)
    write_fixture(path, {"gpus": [{"model": "H100-SXM5-80GB", "mig": ["3g.40gb", "2g.20gb", "1g.10gb+me"]}]})
    assert [m.profile for m in read_topology(nvml, cache=cache).mig_devices] == ["3g.40gb", "2g.20gb", "1g.10gb+me"]


def test_the_fake_refuses_a_struct_passed_by_value_as_real_nvml_would_crash_on_it():
    """The real binding hands the argument to C unchanged: a struct by value SIGSEGVed on an H100."""
    import ctypes

    fake = fake_from({"gpus": [{"model": "B200", "fabric": {"cluster_uuid": "7b968a6d-c8aa-45e1-9e07-e1e51be99c31"}}]})
    fake.nvmlInit()
    handle = fake.nvmlDeviceGetHandleByIndex(0)
    for call, struct in (("nvmlDeviceGetPciInfoExt", pynvml.nvmlPciInfoExt_v1_t),
                         ("nvmlDeviceGetGpuFabricInfoV", pynvml.c_nvmlGpuFabricInfo_v2_t),
                         ("nvmlDeviceGetGpuFabricInfo", pynvml.c_nvmlGpuFabricInfo_t)):
        with pytest.raises(TypeError, match=f"{call} needs ctypes.byref"):
            getattr(fake, call)(handle, struct())
    unversioned = pynvml.nvmlPciInfoExt_v1_t()  # version field left 0
    with pytest.raises(pynvml.NVMLError) as err:
        fake.nvmlDeviceGetPciInfoExt(handle, ctypes.byref(unversioned))
    assert err.value.value == pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH


OLD_LIBRARY = ["nvmlDeviceGetGpuInstanceProfileInfoV", "nvmlGpuInstanceGetComputeInstanceProfileInfoV"]


@pytest.mark.parametrize("fixture", ["dgx-a100-mixed", "hgx-a100-80gb-mixed"])
def test_a_library_without_the_versioned_profile_calls_labels_the_same(fixture):
    """A 460-series libnvidia-ml.so has no ...ProfileInfoV symbols (FUNCTION_NOT_FOUND from the
    binding's symbol lookup): the reader falls back to the v1 calls, as nvml-mig.md asks. It once
    failed the whole read (labels exit 1) where GFD labelled the node."""
    import yaml

    from .conftest import fixture_path

    doc = yaml.safe_load(fixture_path(fixture).read_text())
    new = read(doc)
    old = binding_from({**doc, "missing_symbols": OLD_LIBRARY}).nvml
    cache = ReaderCache()
    assert read_topology(old, cache=cache) == read_topology(binding_from(doc).nvml)
    assert cache.legacy_profile_info
    assert [m.profile for m in read_topology(old, cache=cache).mig_devices] == [m.profile for m in new.mig_devices]


def test_compute_instance_profiles_fall_back_too():
    node = {"gpus": [{"model": "A100-SXM4-40GB",
                      "mig": [{"profile": "1c.3g.20gb", "gi": "a"}, {"profile": "1c.3g.20gb", "gi": "a"},
                              {"profile": "1c.3g.20gb", "gi": "a"}, "1g.5gb"]}],
            "missing_symbols": OLD_LIBRARY}
    assert [m.profile for m in read(node).mig_devices] == [m.profile for m in read(
        {k: v for k, v in node.items() if k != "missing_symbols"}).mig_devices]


def test_a_failing_utilization_read_never_fails_the_pass_and_is_said_once(caplog):
    """Read for a metric only: an error other than NOT_SUPPORTED/NO_PERMISSION once failed the
    whole labelling pass."""
    node = {"gpus": [{"model": "A30", "count": 2}],
            "faults": [{"call": "nvmlDeviceGetUtilizationRates", "gpu": 1, "error": "NVML_ERROR_UNKNOWN"}]}
    nvml, cache = binding_from(node).nvml, ReaderCache()
    for _ in range(3):
        topology = read_topology(nvml, cache=cache)
        assert [g.utilization_percent is None for g in topology.gpus] == [False, True]
    said = [r for r in caplog.records if "utilization metric of GPU 1 is left out" in r.getMessage()]
    assert len(said) == 1 and said[0].levelname == "WARNING"
