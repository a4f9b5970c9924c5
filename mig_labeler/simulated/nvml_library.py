"""A fake ``libnvidia-ml.so`` at the C boundary, so that the real ``pynvml`` binding runs over it.

Owns: the C functions the reader reaches through pynvml, exported under the names the library has
(``nvmlDeviceGetCount_v2``, ``nvmlDeviceGetPciInfo_v3``, ``…ProfileInfoV``), with C signatures and
struct layouts declared here from nvml.h (not taken from pynvml, so a binding or reader mistake
in a layout or a version word shows); the checks real NVML makes (a versioned struct with the
wrong version word is ``ARGUMENT_VERSION_MISMATCH``, a short string buffer ``INSUFFICIENT_SIZE``,
a NULL pointer or an unknown handle ``INVALID_ARGUMENT``); opaque handles; symbols an older
library lacks (the binding's lookup fails as ``dlsym`` does); and ``bind``: a private copy of the
real ``pynvml`` module whose library is this one. What a fixture answers comes from ``FakeNvml``
(one source of truth), in that same copy's structs and errors, so a process labelling from a
fixture never imports the global ``pynvml`` (one copy of the binding in memory, not two). This
layer turns its answers into C memory and return codes, so argument marshalling, struct
versions, symbol lookup and error mapping are the binding's own. A failure
inside the fake itself is never read as success: it answers NVML_ERROR_UNKNOWN and is kept in
``internal_errors``.
"""

from __future__ import annotations

import ctypes
import importlib.util
import itertools
import logging
import sys
from collections.abc import Callable
from ctypes import CFUNCTYPE, Structure, c_char, c_int, c_ubyte, c_uint, c_ulonglong, c_void_p, sizeof
from pathlib import Path
from types import ModuleType
from typing import Any

from mig_labeler.simulated.fake_nvml import FakeNvml
from mig_labeler.simulated.fixture import NodeFixture
from mig_labeler.simulated.nvml_structs import symbol_missing

log = logging.getLogger("mig_labeler")

SUCCESS = 0
INVALID_ARGUMENT = 2
INSUFFICIENT_SIZE = 7
ARGUMENT_VERSION_MISMATCH = 25
UNKNOWN = 999

# nvmlErrorString's answers (the library's own text; pynvml knows the common ones itself).
_ERROR_TEXT = {0: "Success", 1: "Uninitialized", 2: "Invalid Argument", 3: "Not Supported",
               4: "Insufficient Permissions", 5: "Already Initialized", 6: "Not Found", 7: "Insufficient Size",
               8: "Insufficient External Power", 9: "Driver Not Loaded", 10: "Timeout",
               11: "Interrupt request issue", 12: "NVML Shared Library Not Found", 13: "Function Not Found",
               14: "Corrupted infoROM", 15: "GPU is lost", 16: "GPU requires restart",
               17: "The operating system has blocked the request.",
               18: "RM has detected an NVML/RM version mismatch.", 19: "In use by another client",
               20: "Insufficient Memory", 21: "No data", 22: "ECC is enabled", 23: "Insufficient resources",
               24: "Frequency not supported", 25: "Argument version mismatch", 26: "Deprecated", 27: "Not Ready",
               28: "GPU not found", 29: "Invalid state", 999: "Unknown Error"}


# -- nvml.h structs ----------------------------------------------------------------------------
class _Memory(Structure):
    _fields_ = [("total", c_ulonglong), ("free", c_ulonglong), ("used", c_ulonglong)]


class _PciInfo(Structure):  # nvmlPciInfo_t, what nvmlDeviceGetPciInfo_v3 fills
    _fields_ = [("busIdLegacy", c_char * 16), ("domain", c_uint), ("bus", c_uint), ("device", c_uint),
                ("pciDeviceId", c_uint), ("pciSubSystemId", c_uint), ("busId", c_char * 32)]


class _PciInfoExtV1(Structure):
    _fields_ = [("version", c_uint), ("domain", c_uint), ("bus", c_uint), ("device", c_uint),
                ("pciDeviceId", c_uint), ("pciSubSystemId", c_uint), ("baseClass", c_uint), ("subClass", c_uint),
                ("busId", c_char * 32)]


class _Utilization(Structure):
    _fields_ = [("gpu", c_uint), ("memory", c_uint)]


class _Attributes(Structure):
    _fields_ = [(n, c_uint) for n in ("multiprocessorCount", "sharedCopyEngineCount", "sharedDecoderCount",
                                      "sharedEncoderCount", "sharedJpegCount", "sharedOfaCount",
                                      "gpuInstanceSliceCount", "computeInstanceSliceCount")]
    _fields_ += [("memorySizeMB", c_ulonglong)]


class _Placement(Structure):
    _fields_ = [("start", c_uint), ("size", c_uint)]


class _GiInfo(Structure):
    _fields_ = [("device", c_void_p), ("id", c_uint), ("profileId", c_uint), ("placement", _Placement)]


class _CiInfo(Structure):
    _fields_ = [("device", c_void_p), ("gpuInstance", c_void_p), ("id", c_uint), ("profileId", c_uint),
                ("placement", _Placement)]


_GI_COUNTS: list[tuple[str, Any]] = [
    (n, c_uint) for n in ("id", "isP2pSupported", "sliceCount", "instanceCount", "multiprocessorCount",
                          "copyEngineCount", "decoderCount", "encoderCount", "jpegCount", "ofaCount")]
_CI_COUNTS: list[tuple[str, Any]] = [
    (n, c_uint) for n in ("id", "sliceCount", "instanceCount", "multiprocessorCount", "sharedCopyEngineCount",
                          "sharedDecoderCount", "sharedEncoderCount", "sharedJpegCount", "sharedOfaCount")]


class _GiProfileV1(Structure):
    _fields_ = [*_GI_COUNTS, ("memorySizeMB", c_ulonglong)]


class _GiProfileV2(Structure):
    _fields_ = [("version", c_uint), *_GI_COUNTS, ("memorySizeMB", c_ulonglong), ("name", c_char * 96)]


class _CiProfileV1(Structure):
    _fields_ = _CI_COUNTS


class _CiProfileV2(Structure):
    _fields_ = [("version", c_uint), *_CI_COUNTS, ("name", c_char * 96)]


_FABRIC: list[tuple[str, Any]] = [("clusterUuid", c_ubyte * 16), ("status", c_int), ("cliqueId", c_uint),
                                  ("state", c_ubyte)]


class _FabricV1(Structure):
    _fields_ = _FABRIC


class _FabricV2(Structure):
    _fields_ = [("version", c_uint), *_FABRIC, ("healthMask", c_uint)]


class _FabricV3(Structure):
    _fields_ = [("version", c_uint), *_FABRIC, ("healthMask", c_uint), ("healthSummary", c_ubyte)]


def struct_version(struct: type[Structure], version: int) -> int:
    """nvml.h's NVML_STRUCT_VERSION: the struct's size, the version in the top byte."""
    return sizeof(struct) | (version << 24)


# -- what a C argument holds ---------------------------------------------------------------------
class _Failure(Exception):
    """The library's return code for a bad argument (the fake's own answers raise the binding's
    ``NVMLError``); both become the C function's return value."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value


def _put_uint(pointer: int | None, value: int) -> None:
    c_uint.from_address(_required(pointer)).value = value


def _put_int(pointer: int | None, value: int) -> None:
    c_int.from_address(_required(pointer)).value = value


def _put_string(buffer: int | None, length: int, text: str) -> None:
    data = text.encode() + b"\0"
    if len(data) > length:
        raise _Failure(INSUFFICIENT_SIZE)
    ctypes.memmove(_required(buffer), data, len(data))


def _struct(struct: type[Structure], pointer: int | None, *versions: int) -> Any:
    """The struct at ``pointer``; for a versioned one, its version word must be one NVML knows."""
    target = struct.from_address(_required(pointer))
    if versions and target.version not in versions:
        raise _Failure(ARGUMENT_VERSION_MISMATCH)
    return target


def _required(pointer: int | None) -> int:
    if not pointer:
        raise _Failure(INVALID_ARGUMENT)
    return pointer


def _copy(answer: Any, target: Structure) -> None:
    """The fake's answer (a pynvml struct) into the C struct, field by field of the C layout."""
    for field in target._fields_:
        name = field[0]
        if name == "version" or not hasattr(answer, name):
            continue
        value = getattr(answer, name)
        if isinstance(value, ctypes.Array):
            getattr(target, name)[:] = list(value)
        elif isinstance(value, (int, bytes)):
            setattr(target, name, value)
        elif isinstance(value, str):  # pynvml's structs read char arrays as str
            setattr(target, name, value.encode())


_ids = itertools.count(0x1000, 0x10)  # handle values: never NULL, never reused


class FakeNvmlLibrary:
    """Pass as ``pynvml.nvmlLib`` (``bind`` does): its attributes are the library's C functions."""

    def __init__(self, source: str | Path | NodeFixture) -> None:
        self.binding = _private_binding()  # what ``bind`` hands out; the fake answers in its structs
        self.fake = FakeNvml(source, self.binding)  # reads and checks the fixture: a bad one is refused here
        self.internal_errors: list[str] = []
        self._objects: dict[int, object] = {}
        self._handles: dict[object, int] = {}
        self._texts: dict[int, ctypes.Array[c_char]] = {}
        self._exports: dict[str, Any] = {}
        for name, restype, argtypes, implementation in self._functions():
            self._exports[name] = CFUNCTYPE(restype, *argtypes)(self._c_function(name, implementation, restype))

    @property
    def fixture(self) -> NodeFixture:
        return self.fake.fixture

    def __getattr__(self, name: str) -> Any:
        exports = self.__dict__.get("_exports", {})
        if name not in exports or symbol_missing(self.fake.fixture, name):
            raise AttributeError(f"libnvidia-ml.so.1: undefined symbol: {name}")  # pynvml: FUNCTION_NOT_FOUND
        return exports[name]

    def _c_function(self, name: str, implementation: Callable[..., Any], restype: Any) -> Callable[..., Any]:
        def c_function(*args: Any) -> Any:
            try:
                result = implementation(*args)
            except (_Failure, self.binding.NVMLError) as e:
                return int(e.value)
            except Exception as e:  # the fake's own bug: never an answer that reads as success
                self.internal_errors.append(f"{name}: {type(e).__name__}: {e}")
                log.error("the fake NVML library failed in %s: %s", name, e)
                return UNKNOWN
            return SUCCESS if restype is c_int else result

        return c_function

    # -- handles ---------------------------------------------------------------------------------
    def _give(self, pointer: int | None, obj: object) -> None:
        handle = self._handles.get(obj)
        if handle is None:
            handle = self._handles[obj] = next(_ids)
            self._objects[handle] = obj
        c_void_p.from_address(_required(pointer)).value = handle

    def _take(self, handle: int | None) -> object:
        obj = self._objects.get(handle or 0)
        if obj is None:
            raise _Failure(INVALID_ARGUMENT)
        return obj

    # -- the exports -----------------------------------------------------------------------------
    def _functions(self) -> list[tuple[str, Any, tuple[Any, ...], Callable[..., Any]]]:
        fake, take, give = self.fake, self._take, self._give
        p, u = c_void_p, c_uint
        return [
            ("nvmlInit_v2", c_int, (), lambda: fake.nvmlInitWithFlags(0)),
            ("nvmlInitWithFlags", c_int, (u,), fake.nvmlInitWithFlags),
            ("nvmlShutdown", c_int, (), fake.nvmlShutdown),
            ("nvmlErrorString", c_void_p, (c_int,), self._error_string),
            ("nvmlSystemGetDriverVersion", c_int, (p, u),
             lambda buf, n: _put_string(buf, n, fake.nvmlSystemGetDriverVersion())),
            ("nvmlSystemGetCudaDriverVersion", c_int, (p,),
             lambda out: _put_int(out, fake.nvmlSystemGetCudaDriverVersion())),
            ("nvmlDeviceGetCount_v2", c_int, (p,), lambda out: _put_uint(out, fake.nvmlDeviceGetCount())),
            ("nvmlDeviceGetHandleByIndex_v2", c_int, (u, p),
             lambda i, out: give(out, fake.nvmlDeviceGetHandleByIndex(i))),
            ("nvmlDeviceGetIndex", c_int, (p, p), lambda h, out: _put_uint(out, fake.nvmlDeviceGetIndex(take(h)))),
            ("nvmlDeviceGetUUID", c_int, (p, p, u),
             lambda h, buf, n: _put_string(buf, n, fake.nvmlDeviceGetUUID(take(h)))),
            ("nvmlDeviceGetName", c_int, (p, p, u),
             lambda h, buf, n: _put_string(buf, n, fake.nvmlDeviceGetName(take(h)))),
            ("nvmlDeviceGetMemoryInfo", c_int, (p, p),
             lambda h, out: _copy(fake.nvmlDeviceGetMemoryInfo(take(h)), _struct(_Memory, out))),
            ("nvmlDeviceGetCudaComputeCapability", c_int, (p, p, p), self._compute_capability),
            ("nvmlDeviceGetMigMode", c_int, (p, p, p), self._mig_mode),
            ("nvmlDeviceGetUtilizationRates", c_int, (p, p),
             lambda h, out: _copy(fake.nvmlDeviceGetUtilizationRates(take(h)), _struct(_Utilization, out))),
            ("nvmlDeviceGetPciInfo_v3", c_int, (p, p),
             lambda h, out: _copy(fake.nvmlDeviceGetPciInfo(take(h)), _struct(_PciInfo, out))),
            ("nvmlDeviceGetPciInfoExt", c_int, (p, p), self._pci_info_ext),
            ("nvmlDeviceGetGpuFabricInfo", c_int, (p, p), self._fabric_v1),
            ("nvmlDeviceGetGpuFabricInfoV", c_int, (p, p), self._fabric_v),
            ("nvmlDeviceGetMaxMigDeviceCount", c_int, (p, p),
             lambda h, out: _put_uint(out, fake.nvmlDeviceGetMaxMigDeviceCount(take(h)))),
            ("nvmlDeviceGetMigDeviceHandleByIndex", c_int, (p, u, p),
             lambda h, i, out: give(out, fake.nvmlDeviceGetMigDeviceHandleByIndex(take(h), i))),
            ("nvmlDeviceIsMigDeviceHandle", c_int, (p, p),
             lambda h, out: _put_uint(out, fake.nvmlDeviceIsMigDeviceHandle(take(h)).value)),
            ("nvmlDeviceGetDeviceHandleFromMigDeviceHandle", c_int, (p, p),
             lambda h, out: give(out, fake.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(take(h)))),
            ("nvmlDeviceGetAttributes_v2", c_int, (p, p),
             lambda h, out: _copy(fake.nvmlDeviceGetAttributes(take(h)), _struct(_Attributes, out))),
            ("nvmlDeviceGetGpuInstanceId", c_int, (p, p),
             lambda h, out: _put_uint(out, fake.nvmlDeviceGetGpuInstanceId(take(h)))),
            ("nvmlDeviceGetComputeInstanceId", c_int, (p, p),
             lambda h, out: _put_uint(out, fake.nvmlDeviceGetComputeInstanceId(take(h)))),
            ("nvmlDeviceGetGpuInstanceById", c_int, (p, u, p),
             lambda h, i, out: give(out, fake.nvmlDeviceGetGpuInstanceById(take(h), i))),
            ("nvmlGpuInstanceGetInfo", c_int, (p, p), self._gi_info),
            ("nvmlGpuInstanceGetComputeInstanceById", c_int, (p, u, p),
             lambda gi, i, out: give(out, fake.nvmlGpuInstanceGetComputeInstanceById(take(gi), i))),
            ("nvmlComputeInstanceGetInfo_v2", c_int, (p, p), self._ci_info),
            ("nvmlDeviceGetGpuInstanceProfileInfo", c_int, (p, u, p),
             lambda h, i, out: self._gi_profile(h, i, _struct(_GiProfileV1, out), 1)),
            ("nvmlDeviceGetGpuInstanceProfileInfoV", c_int, (p, u, p),
             lambda h, i, out: self._gi_profile(h, i, _struct(_GiProfileV2, out, struct_version(_GiProfileV2, 2)),
                                                2)),
            ("nvmlGpuInstanceGetComputeInstanceProfileInfo", c_int, (p, u, u, p),
             lambda gi, i, e, out: self._ci_profile(gi, i, e, _struct(_CiProfileV1, out), 1)),
            ("nvmlGpuInstanceGetComputeInstanceProfileInfoV", c_int, (p, u, u, p),
             lambda gi, i, e, out: self._ci_profile(gi, i, e, _struct(_CiProfileV2, out,
                                                                      struct_version(_CiProfileV2, 2)), 2)),
        ]

    def _error_string(self, code: int) -> int:
        text = self._texts.get(code)
        if text is None:
            text = self._texts[code] = ctypes.create_string_buffer(_ERROR_TEXT.get(code, "Unknown Error").encode())
        return ctypes.addressof(text)

    def _compute_capability(self, handle: int, major: int, minor: int) -> None:
        a, b = self.fake.nvmlDeviceGetCudaComputeCapability(self._take(handle))
        _put_int(major, a)
        _put_int(minor, b)

    def _mig_mode(self, handle: int, current: int, pending: int) -> None:
        now, then = self.fake.nvmlDeviceGetMigMode(self._take(handle))
        _put_uint(current, now)
        _put_uint(pending, then)

    def _pci_info_ext(self, handle: int, out: int) -> None:
        target = _struct(_PciInfoExtV1, out, struct_version(_PciInfoExtV1, 1))
        answer = self.binding.nvmlPciInfoExt_v1_t()
        answer.version = self.binding.nvmlPciInfoExt_v1
        self.fake.nvmlDeviceGetPciInfoExt(self._take(handle), ctypes.byref(answer))
        _copy(answer, target)

    def _fabric_v1(self, handle: int, out: int) -> None:
        answer = self.binding.c_nvmlGpuFabricInfo_t()
        self.fake.nvmlDeviceGetGpuFabricInfo(self._take(handle), ctypes.byref(answer))
        _copy(answer, _struct(_FabricV1, out))

    def _fabric_v(self, handle: int, out: int) -> None:
        """nvmlGpuFabricInfoV_t is v3 in today's nvml.h; the library still takes a v2 struct."""
        v2, v3 = struct_version(_FabricV2, 2), struct_version(_FabricV3, 3)
        word = _struct(_FabricV2, out, v2, v3).version
        answer = self.binding.c_nvmlGpuFabricInfo_v2_t()
        self.fake.nvmlDeviceGetGpuFabricInfoV(self._take(handle), ctypes.byref(answer))
        _copy(answer, _FabricV2.from_address(out) if word == v2 else _FabricV3.from_address(out))

    def _gi_info(self, gi: int, out: int) -> None:
        target = _struct(_GiInfo, out)
        _copy(self.fake.nvmlGpuInstanceGetInfo(self._take(gi)), target)

    def _ci_info(self, ci: int, out: int) -> None:
        target = _struct(_CiInfo, out)
        _copy(self.fake.nvmlComputeInstanceGetInfo(self._take(ci)), target)

    def _gi_profile(self, handle: int, index: int, target: Structure, version: int) -> None:
        _copy(self.fake.nvmlDeviceGetGpuInstanceProfileInfo(self._take(handle), index, version), target)

    def _ci_profile(self, gi: int, index: int, engine: int, target: Structure, version: int) -> None:
        _copy(self.fake.nvmlGpuInstanceGetComputeInstanceProfileInfo(self._take(gi), index, engine, version), target)


_copies = itertools.count(1)


def bind(library: FakeNvmlLibrary) -> ModuleType:
    """The library's private copy of the real ``pynvml`` module, over ``library``: the binding's own
    code (symbol lookup, ctypes marshalling, struct versions, ``NVMLError`` mapping) with its own
    globals, so two fakes in one process never share a library, a function-pointer cache or a
    refcount."""
    library.binding.__dict__["nvmlLib"] = library
    return library.binding


def _private_binding() -> ModuleType:
    spec = importlib.util.find_spec("pynvml")
    assert spec is not None and spec.origin is not None
    name = f"_mig_labeler_pynvml_{next(_copies)}"
    copy_spec = importlib.util.spec_from_file_location(name, spec.origin)
    assert copy_spec is not None and copy_spec.loader is not None
    module = importlib.util.module_from_spec(copy_spec)
    sys.modules[name] = module  # the binding looks itself up while it loads (its error classes)
    try:
        copy_spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module
