"""Running a command as a pod runs it: the service account's token and CA at the path the
kubelet mounts them (/var/run/secrets/kubernetes.io/serviceaccount) and the API server's address
in KUBERNETES_SERVICE_HOST/PORT, so the in-cluster credentials path (``kubernetes``' own loader)
is what the command uses, with no kubeconfig anywhere.

How: a user and mount namespace (``unshare``, no privileges needed) with a fresh tmpfs on /run
(/var/run), the files written there, then the command exec'd in place (same process id, so its
memory can be read from outside). Where user namespaces are not allowed, ``available`` says so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from .kube_api import TLS_CERTIFICATE, FakeKubeApi

SCRIPT = ('run=$(readlink -f /var/run) && mount -t tmpfs pod "$run" && '
          'sa="$run/secrets/kubernetes.io/serviceaccount" && mkdir -p "$sa" && cp "$0" "$sa/ca.crt" && '
          'printf %s "$1" > "$sa/token" && shift && exec "$@"')


@cache
def available() -> str | None:
    """None when commands can run as in a pod here, else why not."""
    if shutil.which("unshare") is None:
        return "no unshare(1) here"
    probe = subprocess.run(pod_command(["true"], "probe"), capture_output=True, text=True, check=False)
    return None if probe.returncode == 0 else f"cannot enter a user and mount namespace: {probe.stderr.strip()}"


def pod_command(argv: list[str], token: str) -> list[str]:
    return ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", SCRIPT, str(TLS_CERTIFICATE), token,
            *argv]


def pod_env(api: FakeKubeApi, **extra: str) -> dict[str, str]:
    """The environment of a pod of the DaemonSet: the service's address, no kubeconfig."""
    url = urlsplit(api.url)
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "HOME")}
    env.update(KUBERNETES_SERVICE_HOST=str(url.hostname), KUBERNETES_SERVICE_PORT=str(url.port),
               HOME=str(Path("/nonexistent")), **extra)
    return env
