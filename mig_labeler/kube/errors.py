"""What the Kubernetes API server's failures mean: our error types from an HTTP status and body,
or from a connection error.

Owns: which statuses are retried, the RBAC verb a 403 needs, the one line that names an
unreachable server and why, and telling a missing object from a type nobody serves. Pure
translation: no requests, no ``kubernetes`` import (the client's ``ApiException`` is read by its
attributes: ``status``, ``reason``, ``body``, ``headers``); urllib3's exception classes come
through ``deferred_imports.load``, as every use of urllib3 does.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from mig_labeler.deferred_imports import load
from mig_labeler.errors import ApiConflict, ApiError, ApiTransient, MigLabelerError, NodeNotFound

TRANSIENT_STATUS = {409, 429, 500, 502, 503, 504}
RBAC_HINTS = {
    ("GET", "nodes"): "get nodes",
    ("WATCH", "nodes"): "watch nodes",
    ("PATCH", "nodes"): "patch nodes",
    ("POST", "events"): "create events",
    ("GET", "nodefeatures"): "get nodefeatures.nfd.k8s-sigs.io",
    ("PATCH", "nodefeatures"): "patch nodefeatures.nfd.k8s-sigs.io (and create)",
    ("DELETE", "nodefeatures"): "delete nodefeatures.nfd.k8s-sigs.io",
    ("GET", "pods"): "get pods",
}


class WatchExpired(ApiError):
    """410 Gone: the resourceVersion to resume from is too old; list again."""


def connection_error(e: BaseException, method: str, resource: str, name: str, host: str | None) -> ApiError:
    """One line that names the server and why it could not be reached; retried (transient),
    except a certificate problem, which no retry fixes."""
    url = urlsplit(host or "")
    server = f"{url.hostname}:{url.port or (443 if url.scheme == 'https' else 80)}"
    what = f"{method} {resource}/{name}" if name else f"LIST {resource}"
    cause: BaseException = getattr(e, "reason", None) or e
    text = f"{type(cause).__name__} {cause}".lower()
    urllib3_errors = load("urllib3.exceptions")
    if isinstance(cause, (ssl.SSLError, urllib3_errors.SSLError)) or "certificate" in text:
        problem = "TLS certificate problem" if "certificate" in text else "TLS handshake failed"
        return ApiError(f"{what}: {problem} with server {host}: {_tls_reason(str(cause))} "
                        "(check the kubeconfig's server URL and certificate-authority)")
    if _unresolvable(cause, text, urllib3_errors):
        # Before timeouts: urllib3 files NameResolutionError under connect timeouts. Not retried:
        # a name that does not resolve is a wrong server URL, not worth seconds of backoff.
        return ApiError(f"{what}: cannot reach the API server at {server}: "
                        f"cannot resolve host name {url.hostname!r} (check the kubeconfig's server URL)")
    if "refused" in text:  # before timeouts: urllib3's NewConnectionError is a ConnectTimeoutError
        why = "connection refused"
    elif isinstance(cause, (TimeoutError, urllib3_errors.TimeoutError)) or "timed out" in text:
        why = "timed out"
    elif isinstance(e, urllib3_errors.ProtocolError):
        why = "the connection closed without a response"
    else:
        why = first_line(cause)
    return ApiTransient(f"{what}: cannot reach the API server at {server}: {why}")


def _unresolvable(cause: BaseException, text: str, urllib3_errors: ModuleType) -> bool:
    name_error = getattr(urllib3_errors, "NameResolutionError", None)
    if name_error is not None and isinstance(cause, name_error):
        return True
    if isinstance(cause, socket.gaierror):
        return True
    return "failed to resolve" in text or "name or service not known" in text or "nodename nor servname" in text


def _tls_reason(text: str) -> str:
    """What OpenSSL said, without the layers of repr the client wraps it in."""
    match = re.search(r"certificate verify failed: ([^(]+?)(?: \(_ssl|\)|$)", text)
    if match:
        return match.group(1).strip()
    match = re.search(r"\[SSL: [A-Z0-9_]+\] ([^(\\'\"]+?)(?: \(_ssl|\\|'|\"|$)", text)
    if not match:
        return first_line(Exception(text))
    reason = match.group(1).strip()
    if "wrong version number" in reason or "record layer failure" in reason:
        reason += " (is the server plain HTTP?)"
    return reason


def translate_api_exception(e: Any, method: str, resource: str, name: str,
                            host: str | None = None) -> MigLabelerError:
    status = int(e.status or 0)
    if status == 0:  # the client turns urllib3's SSLError into an ApiException without a status
        return connection_error(ssl.SSLError(str(e.reason or "")), method, resource, name, host)
    message = _status_message(e)
    where = f"{method} {resource}/{name}" if name else f"LIST {resource}"
    if status == 404 and resource == "nodes":
        return NodeNotFound(f'node "{name}" not found: check --node-name / NODE_NAME')
    if status == 404 and _names_object(e, name):
        return ObjectNotFound(f"{where}: not found", status)
    if status == 403:
        collection = method == "GET" and not name  # a list, not a get
        verb = f"list {resource}" if collection else RBAC_HINTS.get((method, resource), f"{method.lower()} {resource}")
        if "cannot set an ownerRef" in message:  # the OwnerReferencesPermissionEnforcement admission plugin
            delete = RBAC_HINTS.get(("DELETE", resource), f"delete {resource}")
            return ApiError(f"{where} forbidden: changing ownerReferences needs RBAC verb '{delete}' (the "
                            "OwnerReferencesPermissionEnforcement admission plugin, on in OpenShift): grant it, "
                            "or run without POD_NAME", status)
        # RBAC's denial has no reason: for an apply that would create, kube-apiserver's message is just
        # '<resource> "<name>" is forbidden: ' (checked on a real v1.24 server), so leave it out then.
        detail = "" if message.rstrip().endswith("forbidden:") else f" ({message})"
        return ApiError(f"{where} forbidden: the service account needs RBAC verb '{verb}'{detail}", status)
    retry_after = _retry_after(e)
    if status == 409:
        return ApiConflict(f"{where}: conflict: {message}", status, retry_after)
    if status in TRANSIENT_STATUS:
        return ApiTransient(f"{where}: HTTP {status}: {message}", status, retry_after)
    return ApiError(f"{where}: HTTP {status}: {message}", status)


class BadAnswer(ApiTransient):
    """The API server (or something between us and it: a proxy, a login page) answered with
    something that is not what the request asks for: not JSON, not an object, not the kind asked
    for. Retried as any transient failure; the last good labels stay."""


def bad_answer(method: str, resource: str, name: str, host: str | None, what: str, status: int | None = None,
               content_type: str = "") -> BadAnswer:
    where = f"{method} {resource}/{name}" if name else f"LIST {resource}"
    hint = ": a proxy or a login page?" if "html" in content_type.lower() else ""
    return BadAnswer(f"{where}: the answer from {host or 'the API server'} is {what}{hint}", status)


class ObjectNotFound(ApiError):
    """404 for an object whose type the server knows (a Status naming the object)."""


def _names_object(e: Any, name: str) -> bool:
    """A 404 about the object (``details.name``), not about a resource type nobody serves."""
    try:
        body = json.loads(e.body or "{}")
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    details = body.get("details")
    return body.get("reason") == "NotFound" and isinstance(details, dict) and details.get("name") == name


def _status_message(e: Any) -> str:
    try:
        return str(json.loads(e.body or "{}").get("message") or e.reason)
    except (ValueError, AttributeError):
        return str(e.reason)


def _retry_after(e: Any) -> float | None:
    headers = e.headers or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
