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
from mig_labeler.errors import ConfigError
from mig_labeler.kube.client import KubeClient
from mig_labeler.kube.errors import first_line
from mig_labeler.kube.rate_limit import client_go_limiter
from mig_labeler.stop import Stop
from mig_labeler.text_document import decode_text

USER_AGENT = f"mig-labeler/{__version__}"


def connect(kubeconfig: str | None, *, host: str | None = None, stop: Stop | None = None,
            within: float | None = None, qps: float | None = None, burst: int = 10) -> KubeClient:
    """A client for the cluster: ``host`` (tests) points the real client at a URL with no
    credentials; ``qps``: the client-side rate limit (--kube-api-qps/--kube-api-burst), none when
    None; ``stop`` and ``within`` as ``KubeClient`` takes them."""
    limiter = client_go_limiter(qps, burst) if qps is not None else None
    return KubeClient(api_client(kubeconfig, host=host), stop=stop, within=within, rate_limit=limiter)


def api_client(kubeconfig: str | None = None, host: str | None = None, user_agent: str = USER_AGENT) -> Any:
    """The in-cluster service account when there is one (and no --kubeconfig), else a kubeconfig
    (--kubeconfig/KUBECONFIG, else ~/.kube/config); ``host`` (tests) points the real client at a
    URL with no credentials. Every problem with the credentials is one ConfigError naming the
    file, never a traceback from the client's loader."""
    from kubernetes import client as k8s  # noqa: PLC0415 - see the module docstring

    if host is not None:
        configuration = k8s.Configuration(host=host)
    else:
        configuration = k8s.Configuration()
        where = _load_config(configuration, kubeconfig)
        _check_server(configuration.host, where)
    configuration.retries = False  # our retry policy is the only one: no hidden urllib3 retries
    client = k8s.ApiClient(configuration)
    client.user_agent = user_agent  # audit logs and API priority-and-fairness rules can tell us apart
    return client


def _load_config(configuration: Any, kubeconfig: str | None) -> str:
    """Load credentials into ``configuration``; returns where they came from, for messages."""
    from kubernetes import config as k8s_config  # noqa: PLC0415 - see the module docstring

    if not kubeconfig:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
            return "the in-cluster service account"
        except k8s_config.ConfigException:
            pass  # not in a pod: the kubeconfig lookup
    # Not the client's KUBE_CONFIG_DEFAULT_LOCATION: it captures $KUBECONFIG when first imported.
    default = os.path.expanduser("~/.kube/config")
    paths = kubeconfig.split(os.pathsep) if kubeconfig else [default]
    for path in paths:
        _check_kubeconfig_file(path, explicit=bool(kubeconfig))
    where = f"kubeconfig {kubeconfig or paths[0]}"
    try:
        k8s_config.load_kube_config(config_file=kubeconfig or paths[0], client_configuration=configuration,
                                    persist_config=False)
    except k8s_config.ConfigException as e:
        raise ConfigError(f"{where}: {e}") from e
    except (OSError, ValueError, TypeError, KeyError, AttributeError, yaml.YAMLError) as e:
        raise ConfigError(f"{where} is malformed: {type(e).__name__}: {first_line(e)}") from e
    return where


def _check_kubeconfig_file(path: str, explicit: bool) -> None:
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
    _check_exec_plugin(doc, path)


def _check_exec_plugin(doc: dict[str, Any], path: str) -> None:
    """A credential plugin (``users[].user.exec``, e.g. aws, gke-gcloud-auth-plugin, kubelogin)
    that is not installed is bad input: the client would log a raw ``ERROR:root`` line and go on
    without credentials, to a misleading failure further on."""
    context_name = doc.get("current-context")
    contexts = {c.get("name"): c.get("context") or {} for c in doc.get("contexts") or [] if isinstance(c, dict)}
    user_name = (contexts.get(context_name) or {}).get("user")
    users = {u.get("name"): u.get("user") or {} for u in doc.get("users") or [] if isinstance(u, dict)}
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
