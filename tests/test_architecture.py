"""The rooms are a checked contract, as kopf's import-linter contracts are.

The package is laid out as its data flows: ``sources/`` (NVML, machine type, sysfs) → ``labels/``
(pure rules) → ``sinks/`` (node, nodefeature, file, behind one interface), with the loop knowing
only that interface. Only kube.py imports kubernetes, NVML is imported only where it is injected
from, the functional core does no I/O, and the demo tooling (fake NVML, fixtures) is loaded only
when ``--fixture`` is given.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "mig_labeler"
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))
CORE = {"topology.py", "label_names.py", "config.py", "gate.py", "check.py", "sinks/plan.py"}
IO_MODULES = {"os", "time", "socket", "subprocess", "pathlib", "threading", "urllib3", "http", "signal", "tempfile",
              "shutil"}


def rel(path: Path) -> str:
    return str(path.relative_to(PACKAGE))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    """Absolute module names ``path`` imports (``from x import y`` counts ``x`` and ``x.y``).
    ``top_level_only``: leave out imports inside functions (loaded only when called)."""
    tree = ast.parse(path.read_text())
    nodes = ast.iter_child_nodes(tree) if top_level_only else ast.walk(tree)
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.If):  # `if TYPE_CHECKING:` blocks are not loaded at run time
            continue
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def roots(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imports(path)}


def ours(path: Path, top_level_only: bool = False) -> set[str]:
    return {n for n in imports(path, top_level_only) if n.startswith("mig_labeler.")}


def in_stage(path: Path, stage: str) -> bool:
    return rel(path).startswith(f"{stage}/")


def touches(names: set[str], *packages: str) -> set[str]:
    return {n for n in names if any(n == p or n.startswith(p + ".") for p in packages)}


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_only_kube_imports_kubernetes(path):
    assert "kubernetes" not in roots(path) or rel(path) == "kube.py"


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_pynvml_is_imported_only_by_the_fake_and_where_it_is_injected(path):
    assert "pynvml" not in roots(path) or rel(path) in {"demo/fake_nvml.py", "sources/__init__.py"}


@pytest.mark.parametrize("path", [p for p in MODULES if rel(p) in CORE or in_stage(p, "labels")], ids=rel)
def test_the_core_does_no_io(path):
    assert not roots(path) & (IO_MODULES | {"kubernetes", "pynvml", "prometheus_client"})


@pytest.mark.parametrize("path", [p for p in MODULES if in_stage(p, "labels")], ids=rel)
def test_labels_know_no_source_and_no_sink(path):
    assert touches(ours(path), "mig_labeler.sources", "mig_labeler.sinks", "mig_labeler.kube.client", "mig_labeler.simulated",
                   "mig_labeler.daemon.one_pass") == set()


@pytest.mark.parametrize("path", [p for p in MODULES if in_stage(p, "sources")], ids=rel)
def test_sources_know_no_labels_and_no_sink(path):
    assert touches(ours(path), "mig_labeler.labels", "mig_labeler.sinks", "mig_labeler.kube.client", "mig_labeler.daemon.one_pass") \
        == set()


@pytest.mark.parametrize("path", [p for p in MODULES if in_stage(p, "sinks")], ids=rel)
def test_sinks_know_no_source_and_no_label_rule(path):
    assert touches(ours(path), "mig_labeler.sources", "mig_labeler.labels", "mig_labeler.simulated", "mig_labeler.daemon.one_pass",
                   "mig_labeler.daemon.root") == set()


def test_the_loop_knows_only_the_sink_interface():
    names = ours(PACKAGE / "loop.py")
    assert touches(names, "mig_labeler.sinks.node", "mig_labeler.sinks.nodefeature", "mig_labeler.sinks.file",
                   "mig_labeler.sources.nvml", "mig_labeler.simulated") == set()
    assert "mig_labeler.sinks" in names


@pytest.mark.parametrize("path", [p for p in MODULES if not in_stage(p, "demo")], ids=rel)
def test_demo_tooling_is_loaded_only_on_demand(path):
    """Outside demo/, the fake NVML and fixtures are imported only inside the function that a
    fixture needs: never at import time."""
    assert touches(ours(path, top_level_only=True), "mig_labeler.simulated") == set()


def test_the_daemon_runs_without_the_demo_package():
    code = ("import sys, mig_labeler.cli, mig_labeler.daemon.root, mig_labeler.daemon.one_pass, mig_labeler.sources, "
            "mig_labeler.sinks.node, mig_labeler.sinks.nodefeature, mig_labeler.sinks.file, mig_labeler.pipeline; "
            "print(sorted(m for m in sys.modules if m.startswith('mig_labeler.simulated')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_module_says_what_it_owns():
    missing = [rel(p) for p in MODULES if not ast.get_docstring(ast.parse(p.read_text()))]
    assert missing == []


def test_a_file_only_run_never_imports_the_kubernetes_client(tmp_path):
    """The file sink alone, without --node-name, talks to no cluster: the client's import (about
    0.27 s and 20 MiB) is left out. The whole daemon path runs: build, start-up checks, a pass."""
    out = tmp_path / "gfd"
    code = ("import atexit, sys\nfrom mig_labeler.cli import main\n"
            "atexit.register(lambda: print(sorted(m for m in sys.modules if m.split('.')[0] == 'kubernetes')))\n"
            f"main(['run', '--oneshot', '--fixture', 'a30-mig-off', '--output-file', {str(out)!r}])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                            env={"PATH": "/usr/bin"})
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr
    assert "nvidia.com/gpu.product=NVIDIA-A30" in out.read_text()
