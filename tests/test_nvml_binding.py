"""The real pynvml binding over the fake libnvidia-ml (``simulated.nvml_library``): symbol lookup,
argument marshalling, struct versions and error mapping are the binding's own. The layouts of the
fake's C structs are declared from nvml.h, so they judge the binding's and the reader's."""

from __future__ import annotations

import ctypes

import pynvml
import pytest
import yaml

from mig_labeler.simulated import nvml_library
from mig_labeler.simulated.fixture import bundled_fixtures, resolve_fixture
from mig_labeler.sources.nvml import ReaderCache, read_topology

from .conftest import binding_from, fake_from, fixture_path, labels_of


@pytest.mark.parametrize(("struct", "version", "binding_word"), [
    (nvml_library._GiProfileV2, 2, "nvmlGpuInstanceProfileInfo_v2"),
    (nvml_library._CiProfileV2, 2, "nvmlComputeInstanceProfileInfo_v2"),
    (nvml_library._PciInfoExtV1, 1, "nvmlPciInfoExt_v1"),
    (nvml_library._FabricV2, 2, "nvmlGpuFabricInfo_v2"),
    (nvml_library._FabricV3, 3, "nvmlGpuFabricInfo_v3"),
])
def test_the_version_words_of_nvml_h_layouts_match_the_binding(struct, version, binding_word):
    assert nvml_library.struct_version(struct, version) == getattr(pynvml, binding_word)


@pytest.mark.parametrize("name", bundled_fixtures())
def test_every_bundled_fixture_reads_the_same_through_the_binding_as_through_the_module_fake(name):
    """The C layer adds nothing and loses nothing: the fake answers the same facts either way."""
    binding = binding_from(resolve_fixture(name))
    assert read_topology(binding.nvml) == read_topology(fake_from(name))
    assert binding.library.internal_errors == []


def test_a_struct_passed_by_value_is_refused_by_the_binding_as_real_nvml_would_crash_on_it():
    nvml = binding_from({"gpus": [{"model": "B200"}]}).nvml
    nvml.nvmlInit()
    handle = nvml.nvmlDeviceGetHandleByIndex(0)
    with pytest.raises(ctypes.ArgumentError):
        nvml.nvmlDeviceGetPciInfoExt(handle, nvml.nvmlPciInfoExt_v1_t())


def test_a_versioned_struct_with_the_wrong_version_word_is_a_version_mismatch():
    nvml = binding_from({"gpus": [{"model": "B200"}]}).nvml
    nvml.nvmlInit()
    unversioned = nvml.nvmlPciInfoExt_v1_t()  # version left 0
    with pytest.raises(nvml.NVMLError_ArgumentVersionMismatch):
        nvml.nvmlDeviceGetPciInfoExt(nvml.nvmlDeviceGetHandleByIndex(0), ctypes.byref(unversioned))


def test_a_short_buffer_a_null_pointer_and_an_unknown_handle_answer_as_nvml_does():
    binding = binding_from({"gpus": [{"model": "A30"}]})
    binding.nvml.nvmlInit()
    library = binding.library
    handle = binding.nvml.nvmlDeviceGetHandleByIndex(0)
    short = ctypes.create_string_buffer(4)
    assert library.nvmlDeviceGetName(handle, short, 4) == pynvml.NVML_ERROR_INSUFFICIENT_SIZE
    assert library.nvmlDeviceGetCount_v2(None) == pynvml.NVML_ERROR_INVALID_ARGUMENT
    count = ctypes.c_uint()
    assert library.nvmlDeviceGetMaxMigDeviceCount(0xDEAD0, ctypes.byref(count)) == pynvml.NVML_ERROR_INVALID_ARGUMENT
    assert library.internal_errors == []


def test_a_symbol_the_library_lacks_is_function_not_found_from_the_binding_lookup():
    nvml = binding_from({"gpus": [{"model": "A30"}], "missing_symbols": ["nvmlDeviceGetPciInfoExt"]}).nvml
    nvml.nvmlInit()
    info = nvml.nvmlPciInfoExt_v1_t()
    info.version = nvml.nvmlPciInfoExt_v1
    with pytest.raises(nvml.NVMLError_FunctionNotFound):
        nvml.nvmlDeviceGetPciInfoExt(nvml.nvmlDeviceGetHandleByIndex(0), ctypes.byref(info))


@pytest.mark.parametrize("fixture", ["dgx-a100-mixed", "hgx-a100-80gb-mixed"])
@pytest.mark.parametrize("strategy", ["single", "mixed"])
def test_a_460_series_library_with_mig_labels_the_node_as_a_new_one(fixture, strategy):
    """R460 lacks the versioned GI/CI profile-info symbols (they came with R470): the reader falls
    back to the v1 calls, as GFD's go-nvml does, and every label but the driver's is the same."""
    doc = yaml.safe_load(fixture_path(fixture).read_text())
    old_doc = {**doc, "driver_version": "460.106.00"}
    old, new = labels_of(old_doc, strategy), labels_of(doc, strategy)
    not_driver = {k: v for k, v in old.items() if ".driver" not in k}
    assert not_driver == {k: v for k, v in new.items() if ".driver" not in k}
    assert old["nvidia.com/cuda.driver.major"] == "460"
    cache = ReaderCache()
    read_topology(binding_from(old_doc).nvml, cache=cache)
    assert cache.legacy_profile_info
    cache = ReaderCache()
    read_topology(binding_from({**doc, "driver_version": "470.57.02"}).nvml, cache=cache)
    assert not cache.legacy_profile_info
