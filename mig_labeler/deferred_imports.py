"""Importing a module of a third-party package with the package's ``__init__`` left waiting.

Owns: ``load``, the one way ``mig_labeler`` imports the packages below, and which packages wait.
``load`` registers each as a module with its ``__path__`` (so its modules import) whose
``__init__`` runs, whole and unchanged, the first time anything asks the package for a name that
is not one of its modules. Code that uses a package the usual way (a kubeconfig, ``from
kubernetes import client``, ``multiprocessing.Pool``) sees the real thing; the node daemon does
not carry the ``__init__`` modules it never needs. Measured by ``make bench`` section 2b and
broken down in ``docs/performance.md``:

- ``kubernetes``, ``kubernetes.config``, ``kubernetes.utils``: ``import kubernetes.client.rest``
  would first run ``kubernetes/__init__.py``, which imports ``config`` (requests, oauthlib,
  google-auth), ``dynamic``, ``watch``, ``stream``, ``leaderelection`` and ``informer``
  (``kube/transport.py`` says what is used instead).
- ``urllib3.http2``: its ``__init__`` imports ``importlib.metadata`` to check the version of
  ``h2``, for HTTP/2, which is off unless ``inject_into_urllib3()`` is called; ``urllib3.connection``
  needs only its ``probe`` module.
- ``multiprocessing``: ``kubernetes.client.configuration`` imports it for one call,
  ``cpu_count()``, the default connection pool size, which ``kube.transport.configuration`` gives
  (the same number); logging reads the process name through it unless told not to
  (``cli/logs.py``).
- ``html``: ``http.server`` imports it for ``html.escape`` in its error pages, and its
  ``__init__`` builds the table of HTML5 entities for ``unescape``; the health server sends no
  page of its own (``daemon/health.py`` loads ``http.server`` through ``load``).
- ``prometheus_client``: its ``__init__`` imports the exposition module (urllib.request, wsgiref,
  gzip, the push gateway and the ASGI app) and three default collectors; the daemon uses the
  registry and the metric classes, and writes the text format itself (``daemon/exposition.py``).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any

# What waits when a module of each package is loaded, parents before their packages (so a command
# that loads no kubernetes module registers none of its packages). One already imported stays.
_WAITING = {
    "kubernetes": ("kubernetes", "kubernetes.config", "kubernetes.utils", "urllib3.http2", "multiprocessing"),
    "urllib3": ("urllib3.http2",),
    "prometheus_client": ("prometheus_client",),
    "http": ("html",),
}
_lock = threading.RLock()


def load(name: str) -> ModuleType:
    """The module ``name`` (``kubernetes.client.rest``, ``urllib3.exceptions``,
    ``prometheus_client.metrics``, ``http.server``), with the packages above waiting."""
    waiting = _WAITING.get(name.partition(".")[0], ())
    with _lock:
        for package in waiting:
            _defer(package)
        module = importlib.import_module(name)
        for package in waiting:  # a parent imported after its waiting package: name it there too
            parent, _, child = package.rpartition(".")
            if parent in sys.modules and child not in sys.modules[parent].__dict__:
                setattr(sys.modules[parent], child, sys.modules[package])
        return module


def _defer(name: str) -> None:
    """Register package ``name`` with its ``__path__`` (so its modules import) but its ``__init__``
    not run yet; the first lookup of a name that is not one of its modules runs the ``__init__``,
    then answers. Its parent is not imported (urllib3 imports ``urllib3.http2`` as it loads)."""
    if name in sys.modules:
        return
    spec = _spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        raise ModuleNotFoundError(f"no package named {name!r}", name=name)
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def complete(attribute: str) -> Any:
        with _lock:
            if module.__dict__.get("__getattr__") is complete:
                if importlib.machinery.PathFinder.find_spec(f"{name}.{attribute}", module.__path__):
                    # ``from package import module`` asks before it imports: that needs no __init__
                    return importlib.import_module(f"{name}.{attribute}")
                del module.__dict__["__getattr__"]
                loader.exec_module(module)
        return getattr(module, attribute)

    module.__dict__["__getattr__"] = complete
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent in sys.modules:
        setattr(sys.modules[parent], child, module)


def _spec(name: str) -> importlib.machinery.ModuleSpec | None:
    """``importlib.util.find_spec`` without importing the parent package."""
    parent, _, _ = name.rpartition(".")
    if not parent or parent in sys.modules:
        return importlib.util.find_spec(name)
    parent_spec = _spec(parent)
    if parent_spec is None or parent_spec.submodule_search_locations is None:
        return None
    return importlib.machinery.PathFinder.find_spec(name, parent_spec.submodule_search_locations)
