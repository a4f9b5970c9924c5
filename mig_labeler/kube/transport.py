"""HTTP to the API server through the ``kubernetes`` package's own transport, and nothing more of it.

Owns: loading the parts of ``kubernetes`` the daemon uses, and ``Transport``: one request as the
package's ``ApiClient`` would send it (its ``Configuration`` for the server, TLS, proxy and
credentials, the bearer token refreshed through the configuration's hook as ``ApiClient`` does,
its ``RESTClientObject`` for urllib3), without ``ApiClient`` itself.

Why: ``import kubernetes.client.rest`` first runs ``kubernetes/__init__.py``, which imports
``config`` (requests, oauthlib, google-auth), ``dynamic``, ``watch``, ``stream``, ``leaderelection``
and ``informer``; ``ApiClient`` pulls in pydantic and the model registry. Together that is about
16 MiB of the node daemon's memory and a third of its start-up, for four request shapes we spell
out ourselves (``make bench`` section 2). ``load`` imports a module of the package with the
``__init__`` of ``kubernetes``, ``kubernetes.config`` and ``kubernetes.utils`` deferred: each runs,
whole and unchanged, the first time anything asks one of those packages for a name, so code that
uses the package the usual way (a kubeconfig, ``from kubernetes import client``) sees the real thing.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from collections.abc import Mapping
from types import ModuleType
from typing import Any
from urllib.parse import quote

# Parents first: finding a package's spec imports its parent.
_DEFERRED = ("kubernetes", "kubernetes.config", "kubernetes.utils")
_lock = threading.RLock()


def load(name: str) -> ModuleType:
    """The module ``name`` of the ``kubernetes`` package (``kubernetes.client.rest``, ...)."""
    with _lock:
        for package in _DEFERRED:
            _defer(package)
        return importlib.import_module(name)


def _defer(name: str) -> None:
    """Register package ``name`` with its ``__path__`` (so its modules import) but its ``__init__``
    not run yet; the first lookup of any other name on it runs the ``__init__``, then answers."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"no module named {name!r}", name=name)
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def complete(attribute: str) -> Any:
        with _lock:
            if module.__dict__.get("__getattr__") is complete:
                del module.__dict__["__getattr__"]
                loader.exec_module(module)
        return getattr(module, attribute)

    module.__dict__["__getattr__"] = complete
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)


def configuration(host: str | None = None) -> Any:
    """A new ``kubernetes.client.Configuration`` (for ``host`` when given)."""
    configuration_class = load("kubernetes.client.configuration").Configuration
    return configuration_class(host=host) if host is not None else configuration_class()


class Transport:
    """One request as ``ApiClient.param_serialize`` + ``call_api`` send it: the User-Agent, the
    bearer token from the configuration (its refresh hook run per request: the in-cluster token
    is re-read as it rotates, a kubeconfig's exec plugin asked again when its token expires), the
    query encoded as ``ApiClient`` encodes it, and the body left for ``RESTClientObject`` to serialize
    by its Content-Type."""

    def __init__(self, config: Any, user_agent: str) -> None:
        self.configuration = config
        self.user_agent = user_agent
        self.rest = load("kubernetes.client.rest").RESTClientObject(config)
        self.api_exception: type[Exception] = load("kubernetes.client.exceptions").ApiException

    @property
    def host(self) -> str:
        return str(self.configuration.host)

    def request(self, method: str, path: str, query: list[tuple[str, Any]], headers: Mapping[str, str],
                body: Any, timeout: tuple[float, float]) -> Any:
        """The ``RESTResponse``, body not read yet (a watch streams it)."""
        sent = {**headers, "User-Agent": self.user_agent}
        auth = self.configuration.auth_settings().get("BearerToken")
        if auth and auth.get("value"):
            sent[auth["key"]] = auth["value"]
        url = self.host + path
        if query:
            url += "?" + "&".join(f"{key}={quote(_query_value(value))}" for key, value in query)
        return self.rest.request(method, url, headers=sent, body=body, _request_timeout=timeout)

    def close(self) -> None:
        self.rest.close()


def _query_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
