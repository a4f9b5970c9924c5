"""The rooms are a checked contract, as kopf's import-linter contracts are: only kube.py imports
kubernetes, NVML is imported only where it is injected from, and the functional core does no I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "mig_labeler"
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))
CORE = {"topology.py", "label_names.py", "plan.py", "config.py", "labels/__init__.py", "labels/full_gpu.py",
        "labels/mig.py", "labels/resource.py", "labels/system.py", "labels/advertised.py", "check.py"}
IO_MODULES = {"os", "time", "socket", "subprocess", "pathlib", "threading", "urllib3", "http", "signal"}


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def rel(path: Path) -> str:
    return str(path.relative_to(PACKAGE))


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_only_kube_imports_kubernetes(path):
    assert "kubernetes" not in imports(path) or rel(path) == "kube.py"


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_pynvml_is_imported_only_by_the_fake_and_where_it_is_injected(path):
    assert "pynvml" not in imports(path) or rel(path) in {"fake_nvml.py", "discovery.py"}


@pytest.mark.parametrize("path", [p for p in MODULES if rel(p) in CORE], ids=rel)
def test_the_core_does_no_io(path):
    assert not imports(path) & (IO_MODULES | {"kubernetes", "pynvml", "prometheus_client"})


def test_every_module_says_what_it_owns():
    missing = [rel(p) for p in MODULES if not ast.get_docstring(ast.parse(p.read_text()))]
    assert missing == []
