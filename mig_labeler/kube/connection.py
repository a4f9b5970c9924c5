"""Connecting to the API server: credentials, their checks, and the client built from them.

Owns: where the credentials come from (the in-cluster service account, else --kubeconfig /
KUBECONFIG, else ~/.kube/config), turning every problem with them into one ``ConfigError`` that
names the file (never a traceback from the client's loader, never a missing credential plugin
found only at the first request), and ``connect``: the one way a ``KubeClient`` is built, with
its stop token, deadline and rate limit given at construction.
"""

from __future__ import annotations

import os
import shutil
from typing import Any
from urllib.parse import urlsplit

import yaml

from mig_labeler import __version__, text_document
from mig_labeler.deferred_imports import load
from mig_labeler.errors import ConfigError
from mig_labeler.kube import transport
from mig_labeler.kube.client import KubeClient
from mig_labeler.kube.errors import first_line
from mig_labeler.kube.rate_limit import client_go_limiter
from mig_labeler.kube.transport import Transport
from mig_labeler.stop import Stop
from mig_labeler.text_document import decode_text

USER_AGENT = f"mig-labeler/{__version__}"


def connect(kubeconfig: str | None, *, host: str | None = None, stop: Stop | None = None,
            within: float | None = None, since: float | None = None, qps: float | None = None, burst: int = 10,
            context: str | None = None) -> KubeClient:
    """A client for the cluster: ``host`` (tests) points the real client at a URL with no
    credentials; ``qps``: the client-side rate limit (--kube-api-qps/--kube-api-burst), none when
    None; ``stop``, ``within`` and ``since`` as ``KubeClient`` takes them."""
    limiter = client_go_limiter(qps, burst) if qps is not None else None
    return KubeClient(transport_for(kubeconfig, host=host, context=context), stop=stop, within=within,
                      since=since, rate_limit=limiter)


def transport_for(kubeconfig: str | None = None, host: str | None = None, user_agent: str = USER_AGENT,
                  context: str | None = None) -> Transport:
    """The in-cluster service account when there is one (and no --kubeconfig), else a kubeconfig
    (--kubeconfig/KUBECONFIG, else ~/.kube/config); ``host`` (tests) points the real client at a
    URL with no credentials. Every problem with the credentials is one ConfigError naming the
    file, never a traceback from the client's loader. The kubeconfig loader (and what it imports:
    requests, oauthlib, the generated client) is loaded only when a kubeconfig is read."""
    configuration = transport.configuration(host)
    if host is None:
        where = _load_config(configuration, kubeconfig, context)
        _check_server(configuration.host, where)
    configuration.retries = False  # our retry policy is the only one: no hidden urllib3 retries
    # The User-Agent: audit logs and API priority-and-fairness rules can tell us apart.
    return Transport(configuration, user_agent)


def _load_config(configuration: Any, kubeconfig: str | None, context: str | None = None) -> str:
    """Load credentials into ``configuration``; returns where they came from, for messages."""
    config_exception = load("kubernetes.config.config_exception").ConfigException
    if not kubeconfig and not context:
        try:
            load("kubernetes.config.incluster_config").load_incluster_config(
                client_configuration=configuration)
            return "the in-cluster service account"
        except config_exception:
            pass  # not in a pod: the kubeconfig lookup
    # Not the client's KUBE_CONFIG_DEFAULT_LOCATION: it captures $KUBECONFIG when first imported.
    default = os.path.expanduser("~/.kube/config")
    paths = [p for p in kubeconfig.split(os.pathsep) if p] if kubeconfig else [default]
    docs = [(path, _check_kubeconfig_file(path, explicit=bool(kubeconfig))) for path in paths]
    # client-go (kubectl, GFD) merges a list: the first file to set a key wins, current-context
    # included. The Python client's merger keeps the first of each named entry but the *last*
    # current-context, so it would talk to another cluster than kubectl: name the context here.
    chosen = context or next((str(d["current-context"]) for _, d in docs if d.get("current-context")), None)
    _check_exec_plugin([d for _, d in docs], chosen, ":".join(paths))
    where = f"kubeconfig {':'.join(paths)}" + (f" (context {chosen})" if context else "")
    try:
        load("kubernetes.config.kube_config").load_kube_config(
            config_file=os.pathsep.join(paths), context=chosen, client_configuration=configuration,
            persist_config=False)
    except config_exception as e:
        raise ConfigError(f"{where}: {e}") from e
    except (OSError, ValueError, TypeError, KeyError, AttributeError, yaml.YAMLError) as e:
        raise ConfigError(f"{where} is malformed: {type(e).__name__}: {first_line(e)}") from e
    return where


def _check_kubeconfig_file(path: str, explicit: bool) -> dict[str, Any]:
    if not os.path.isfile(path):
        if explicit:
            raise ConfigError(f"kubeconfig {path} does not exist (from --kubeconfig or KUBECONFIG)")
        raise ConfigError(f"no Kubernetes credentials: not running in a pod, and there is no {path} "
                          "(pass --kubeconfig PATH or set KUBECONFIG)")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read kubeconfig {path}: {e.strerror or e}") from e
    text = decode_text(data, f"kubeconfig {path}")
    try:
        doc = text_document.load(text)
    except (yaml.YAMLError, ValueError, RecursionError) as e:
        raise ConfigError(f"kubeconfig {path} is not valid YAML: {first_line(e)}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"kubeconfig {path} must hold a mapping (apiVersion: v1, kind: Config, clusters, ...)")
    return doc


def _first_of_each(docs: list[dict[str, Any]], kind: str, field: str) -> dict[Any, Any]:
    """Named entries (contexts, users) across the files, the first of each name winning (client-go)."""
    found: dict[Any, Any] = {}
    for doc in docs:
        for entry in doc.get(kind) or []:
            if isinstance(entry, dict) and entry.get("name") not in found:
                found[entry.get("name")] = entry.get(field) or {}
    return found


def _check_exec_plugin(docs: list[dict[str, Any]], context_name: str | None, path: str) -> None:
    """A credential plugin (``users[].user.exec``, e.g. aws, gke-gcloud-auth-plugin, kubelogin)
    that is not installed is bad input: the client would log a raw ``ERROR:root`` line and go on
    without credentials, to a misleading failure further on."""
    contexts = _first_of_each(docs, "contexts", "context")
    if context_name is not None and context_name not in contexts:
        raise ConfigError(f"kubeconfig {path} has no context {context_name!r} (it has: "
                          f"{', '.join(sorted(str(c) for c in contexts)) or 'none'})")
    user_name = (contexts.get(context_name) or {}).get("user") if isinstance(contexts.get(context_name), dict) else None
    users = _first_of_each(docs, "users", "user")
    plugin = (users.get(user_name) or {}).get("exec") if isinstance(users.get(user_name), dict) else None
    command = plugin.get("command") if isinstance(plugin, dict) else None
    if isinstance(command, str) and command and shutil.which(command) is None:
        raise ConfigError(f"kubeconfig {path}: user {user_name!r} gets credentials from the plugin {command!r}, "
                          "which is not installed here (not an executable file, nor on PATH)")


def _check_server(host: str | None, where: str) -> None:
    url = urlsplit(host or "")
    try:
        url.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        url = urlsplit("")
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigError(f"{where}: server {host!r} is not a URL such as https://10.0.0.1:6443")
