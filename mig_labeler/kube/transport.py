"""HTTP to the API server through the ``kubernetes`` package's own transport, and nothing more of it.

Owns: ``Transport``: one request as the package's ``ApiClient`` would send it (its
``Configuration`` for the server, TLS, proxy and credentials, the bearer token refreshed through
the configuration's hook as ``ApiClient`` does, its ``RESTClientObject`` for urllib3), without
``ApiClient`` itself; and ``configuration()``.

Why: ``ApiClient`` pulls in pydantic and the model registry, and the package's ``__init__`` the
kubeconfig machinery (``deferred_imports`` loads the modules used without it). Together that is
about 16 MiB of the node daemon's memory and a third of its start-up, for four request shapes we
spell out ourselves (``make bench`` section 2).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from mig_labeler.deferred_imports import load


def configuration(host: str | None = None) -> Any:
    """A new ``kubernetes.client.Configuration`` (for ``host`` when given)."""
    configuration_class = load("kubernetes.client.configuration").Configuration
    # The package's default, cpu_count() * 5, without multiprocessing (deferred_imports)
    pool = (os.cpu_count() or 1) * 5
    if host is None:
        return configuration_class(connection_pool_maxsize=pool)
    return configuration_class(host=host, connection_pool_maxsize=pool)


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
        self.http_error: type[Exception] = load("urllib3.exceptions").HTTPError

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
