"""The rooms are a checked contract. Which module may import which is import-linter's job
(``[tool.importlinter]`` in pyproject.toml, run by ``make lint``); this file checks what an import
graph cannot see: imports made only inside a function, a builtin ``open`` in a pure module, parts
wired by subclassing or by assigning into each other, and what a real process loads.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "mig_labeler"
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))
# The pure core, as the import contract lists it: no I/O of any kind, files included.
PURE = ["labels/", "check/autoscalers.py", "check/index.py", "check/model.py", "check/report.py",
        "check/resources.py", "check/rules.py", "check/selection.py", "check/workloads.py", "config.py",
        "config_file.py", "mig_parted.py", "text_document.py", "gpu_operator.py", "topology.py", "label_names.py",
        "sinks/plan.py"]
# Where the daemon's parts live: each is built with what it uses and nobody assigns into it.
PARTS = ["daemon/", "kube/", "sinks/", "cli/"]
# The kubernetes client's Configuration, and logging's objects and flags: library objects we configure.
LIBRARY_OBJECTS = {"configuration", "log", "logging"}


def rel(path: Path) -> str:
    return str(path.relative_to(PACKAGE))


def in_rooms(path: Path, rooms: list[str]) -> bool:
    return any(rel(path) == room or (room.endswith("/") and rel(path).startswith(room)) for room in rooms)


def top_level_imports(path: Path) -> set[str]:
    """Modules ``path`` imports when it is imported (not inside functions, not for type checking)."""
    names: set[str] = set()
    for node in ast.iter_child_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
    return names


def test_the_import_contracts_catch_a_kubernetes_import_outside_kube(tmp_path):
    """``make lint`` fails when someone imports kubernetes outside kube/: the contract run on a
    copy of the package with one such import added."""
    lint_imports = Path(sys.executable).parent / "lint-imports"
    if not lint_imports.exists():
        pytest.skip("import-linter is not installed (make install installs it)")
    shutil.copytree(PACKAGE, tmp_path / "mig_labeler", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PACKAGE.parent / "pyproject.toml", tmp_path / "pyproject.toml")
    wake = tmp_path / "mig_labeler" / "daemon" / "wake.py"

    def lint() -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(lint_imports), "--no-cache"], cwd=tmp_path, capture_output=True, text=True,
                              check=False, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})

    assert lint().returncode == 0, lint().stdout
    wake.write_text(wake.read_text() + "\nimport kubernetes  # noqa: E402, F401\n")
    broken = lint()
    assert broken.returncode == 1 and "mig_labeler.daemon.wake -> kubernetes" in broken.stdout, broken.stdout


@pytest.mark.parametrize("path", [p for p in MODULES if in_rooms(p, PURE)], ids=rel)
def test_the_pure_core_opens_no_file(path):
    """An import graph cannot see the builtin ``open`` or a ``Path`` read: files are read by
    ``text_files`` (and the other shells), then handed to the pure parsers as text."""
    reads = {"open", "read_text", "read_bytes", "write_text", "write_bytes"}
    calls = [node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Call)]
    used = {getattr(c.func, "id", None) or getattr(c.func, "attr", None) for c in calls}
    assert not used & reads


@pytest.mark.parametrize("path", [p for p in MODULES if not rel(p).startswith("simulated/")], ids=rel)
def test_the_simulated_node_is_loaded_only_on_demand(path):
    """Outside simulated/, the fake NVML and fixtures are imported only inside the function that a
    fixture or a prediction needs: never at import time."""
    assert not {n for n in top_level_imports(path) if n.startswith("mig_labeler.simulated")}


def test_the_daemon_runs_without_the_simulated_package():
    code = ("import sys, mig_labeler.cli, mig_labeler.daemon.root, mig_labeler.daemon.one_pass, mig_labeler.sources, "
            "mig_labeler.sinks.node, mig_labeler.sinks.nodefeature, mig_labeler.sinks.file, mig_labeler.pipeline; "
            "print(sorted(m for m in sys.modules if m.startswith('mig_labeler.simulated')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_module_says_what_it_owns():
    missing = [rel(p) for p in MODULES if not ast.get_docstring(ast.parse(p.read_text()))]
    assert missing == []


def test_no_module_passes_400_lines():
    """A room that grows past ~400 lines has gained a second job: split it (STYLE.md)."""
    assert [rel(p) for p in MODULES if len(p.read_text().splitlines()) > 400] == []


def test_no_class_extends_a_class_of_another_module_except_errors():
    """No mixins: a part is composed of others through its constructor, never by inheriting one
    from another file (errors are the exception: ``ConfigError`` is a ``MigLabelerError``)."""
    found = []
    for path in MODULES:
        name = "mig_labeler." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
        if name.endswith("__main__"):
            continue
        module = importlib.import_module(name)
        for cls in (c for _, c in inspect.getmembers(module, inspect.isclass) if c.__module__ == name):
            if issubclass(cls, BaseException):
                continue
            found += [f"{name}.{cls.__name__}({base.__module__}.{base.__name__})" for base in cls.__mro__[1:]
                      if base.__module__.startswith("mig_labeler") and base.__module__ != name]
    assert found == []


@pytest.mark.parametrize("path", [p for p in MODULES if in_rooms(p, PARTS)], ids=rel)
def test_no_part_assigns_into_another(path):
    """A part's attributes are set by its own methods only: ``x.attr = ...`` is ``self.attr`` or a
    library object being configured, never another part of ours (the daemon once had its client's
    stop flag, deadline and rate limit assigned from three modules after it was built)."""
    foreign = []
    for node in ast.walk(ast.parse(path.read_text())):
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        for target in targets:
            for element in (target.elts if isinstance(target, ast.Tuple) else [target]):
                if not isinstance(element, ast.Attribute):
                    continue
                owner = element.value
                while isinstance(owner, ast.Attribute):  # self.server.daemon_threads: self's own object
                    owner = owner.value
                if not (isinstance(owner, ast.Name) and owner.id in {"self", "cls", *LIBRARY_OBJECTS}):
                    foreign.append(f"line {node.lineno}: {ast.unparse(element)}")
    assert foreign == []


def test_no_part_holds_a_bound_method_of_another(kube_api, tmp_path):
    """A part gets objects, not callbacks: ``NodeSink(kube, node, ...)``, not
    ``NodeSink(kube, daemon.node_for_publish, daemon.remember, ...)``. Walks every part a watching
    daemon with every sink is built of (a thread's target and the retry policy's sleep excepted)."""
    from .conftest import make_daemon, write_fixture

    daemon = make_daemon(kube_api, write_fixture(tmp_path / "n.yaml", {"gpus": [{"model": "A30"}]}), watch=True,
                         sinks=("node", "nodefeature", "file"), output_file=str(tmp_path / "gfd"), namespace="ns",
                         namespace_known=True)
    seen: set[int] = set()
    handed: list[str] = []

    def walk(obj: object, where: str) -> None:
        if id(obj) in seen or not type(obj).__module__.startswith("mig_labeler"):
            return
        seen.add(id(obj))
        fields = dict(vars(obj)) if hasattr(obj, "__dict__") else {}
        fields |= {s: getattr(obj, s) for s in getattr(type(obj), "__slots__", ()) if hasattr(obj, s)}
        for name, value in fields.items():
            for i, item in enumerate(value if isinstance(value, (list, tuple)) else [value]):
                if inspect.ismethod(item) and type(item.__self__).__module__.startswith("mig_labeler"):
                    handed.append(f"{where}.{name}: {item.__qualname__}")
                walk(item, f"{where}.{name}[{i}]" if isinstance(value, (list, tuple)) else f"{where}.{name}")

    walk(daemon, "daemon")
    daemon.close()
    assert len(seen) > 15 and handed == []


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
