"""Finding ``libnvidia-ml.so.1`` under a mounted driver root (``--driver-root-ctr-path``).

Owns: the library directories a driver root is searched in, and handing the library to the NVML
binding (pynvml loads ``libnvidia-ml.so.1`` through the loader's path only, and keeps whatever is
in its ``nvmlLib`` instead). The GPU Operator mounts the host's driver at ``/driver-root``; with
the NVIDIA container runtime the library is on the loader's path and this is never needed.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from typing import Any

from mig_labeler.errors import NvmlUnavailable

LIBRARY = "libnvidia-ml.so.1"
# Where distributions and the driver's .run installer put it, in the order the loader would try.
LIBRARY_DIRS = ("usr/lib64", "usr/lib/x86_64-linux-gnu", "usr/lib/aarch64-linux-gnu", "lib64",
                "lib/x86_64-linux-gnu", "lib/aarch64-linux-gnu", "usr/lib", "lib")
LIBRARY_NOT_FOUND = 12  # NVML_ERROR_LIBRARY_NOT_FOUND


def candidates(driver_root: str) -> list[str]:
    return [os.path.join(driver_root, d, LIBRARY) for d in LIBRARY_DIRS]


def load_from_driver_root(nvml: Any, driver_root: str, load: Callable[[str], Any] = ctypes.CDLL) -> str:
    """Load the library from the first candidate that loads and give it to the binding; returns
    its path. ``NvmlUnavailable`` (LIBRARY_NOT_FOUND) names every path tried and why each failed."""
    tried = []
    for path in candidates(driver_root):
        if not os.path.exists(path):
            tried.append(f"{path} (absent)")
            continue
        try:
            library = load(path)
        except OSError as e:
            tried.append(f"{path} ({e})")
            continue
        nvml.nvmlLib = library
        return path
    raise NvmlUnavailable(f"NVML library {LIBRARY} not found: not on the loader's path (no NVIDIA container "
                          f"runtime?), and not under the driver root {driver_root} (tried {', '.join(tried)}); "
                          "set --driver-root-ctr-path to where the host's driver is mounted", LIBRARY_NOT_FOUND)
