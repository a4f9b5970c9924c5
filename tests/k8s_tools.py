"""Finding the real helm, kubectl and promtool that `make tools` puts in .tools/ (tools/k8s-tools).
Without them a test is skipped on a developer's machine, but fails in CI, where make installs them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / ".tools"


def tool(name: str) -> str:
    found = shutil.which(name, path=f"{TOOLS}{os.pathsep}{os.environ.get('PATH', '')}")
    if found is None:
        message = f"{name} not found: run `make tools` (tools/k8s-tools .tools)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found
