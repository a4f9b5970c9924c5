"""The DaemonSet's own way in: the in-cluster service account (token and CA where the kubelet
mounts them, the API server's address in the environment) over HTTPS, no kubeconfig anywhere,
and only the parts of ``kubernetes`` that path uses (``kube.transport``)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request

import pytest

from mig_labeler import __version__
from mig_labeler.errors import EXIT_RUNTIME

from .conftest import free_port, wait_until
from .fakes.kube_api import FakeKubeApi
from .fakes.pod import available, pod_command, pod_env

NODE = "gpu-node-1"
TOKEN = "service-account-token-1"
pytestmark = pytest.mark.skipif(available() is not None, reason=str(available()))


@pytest.fixture
def tls_api():
    api = FakeKubeApi(tls=True).start()
    api.bearer_token = TOKEN
    api.add_node(NODE)
    yield api
    api.stop()


def oneshot(api: FakeKubeApi, token: str = TOKEN, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "mig_labeler", "run", "--oneshot", "--node-name", NODE, "--fixture", "a30-mig-off",
            "--metrics-port", "0", *extra]
    return subprocess.run(pod_command(argv, token), env=pod_env(api), capture_output=True, text=True, timeout=120,
                          check=False)


def test_a_pod_labels_its_node_with_the_service_account(tls_api):
    done = oneshot(tls_api)
    assert done.returncode == 0, done.stderr
    assert tls_api.labels(NODE)["nvidia.com/gpu.product"] == "NVIDIA-A30"
    assert all(entry.status != 401 for entry in tls_api.log)  # every request carried the token
    assert {entry.user_agent for entry in tls_api.log} == {"mig-labeler/" + __version__}


def test_a_rejected_token_is_one_line_and_exit_1(tls_api):
    done = oneshot(tls_api, "a-revoked-token")
    assert done.returncode == EXIT_RUNTIME
    errors = [line for line in done.stderr.splitlines() if "Traceback" in line or "error" in line.lower()]
    assert "Traceback" not in done.stderr
    assert any("401" in line or "Unauthorized" in line for line in errors), done.stderr
    assert "nvidia.com/gpu.product" not in tls_api.labels(NODE)


LOADED = """
import json, sys
from mig_labeler.kube.connection import connect
client = connect(None)
client.read_node(sys.argv[1])
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in
                        ("kubernetes", "pydantic", "requests", "requests_oauthlib", "oauthlib", "google"))))
"""


def test_the_in_cluster_path_loads_only_the_transport_and_the_service_account_loader(tls_api):
    """Not the kubeconfig loader (requests, oauthlib), the generated client or pydantic: the node
    daemon's memory and start-up (``make bench`` section 2)."""
    done = subprocess.run(pod_command([sys.executable, "-c", LOADED, NODE], TOKEN), env=pod_env(tls_api),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert {"kubernetes.client.rest", "kubernetes.client.configuration", "kubernetes.config.incluster_config"} <= loaded
    assert not {m for m in loaded if m.split(".")[0] != "kubernetes"}, loaded
    assert not loaded & {"kubernetes.config.kube_config", "kubernetes.client.api_client", "kubernetes.dynamic",
                         "kubernetes.watch", "kubernetes.stream", "kubernetes.client.models"}, loaded


# What the node daemon never uses, and what would load it (``deferred_imports``, ``make bench`` 2b).
LEFT_OUT = {
    "importlib.metadata": "urllib3.http2's __init__",
    "multiprocessing.context": "multiprocessing's __init__ (kubernetes' Configuration, logging's processName)",
    "prometheus_client.exposition": "prometheus_client's __init__ or generate_latest",
    "html.entities": "html's __init__ (http.server)",
    "importlib.readers": "importlib.resources (the package's data files)",
    "pynvml": "the global binding (the fixture's library carries its own copy)",
    "kubernetes.config.kube_config": "the kubeconfig loader",
    "kubernetes.client.api_client": "ApiClient",
}


# The daemon as ``python -m mig_labeler`` runs it; SIGUSR2 (which it does not use) writes down the
# modules it has loaded (``-X importtime`` and audit hooks miss what importlib.import_module loads).
IMPORTS = """
import json, os, runpy, signal, sys
path = sys.argv[1]
def write_down(*_):
    with open(path + ".part", "w") as f:
        json.dump(sorted(sys.modules), f)
    os.replace(path + ".part", path)
signal.signal(signal.SIGUSR2, write_down)
sys.argv = ["mig-labeler", *sys.argv[2:]]
runpy.run_module("mig_labeler", run_name="__main__", alter_sys=True)
"""


def test_the_daemon_in_a_pod_leaves_out_what_it_never_uses(tls_api, tmp_path):
    """Labels published and /metrics scraped, the modules above were never imported."""
    port = free_port()
    argv = [sys.executable, "-c", IMPORTS, str(tmp_path / "imports"), "run", "--node-name", NODE, "--fixture",
            "a30-mig-off", "--metrics-port", str(port), "--sleep-interval", "1h"]
    proc = subprocess.Popen(pod_command(argv, TOKEN), env=pod_env(tls_api), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)

    def scraped() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                return b'mig_labeler_passes_total{result="success"} 1.0' in response.read()
        except OSError:
            return False

    loaded = tmp_path / "imports"
    try:
        wait_until(lambda: "nvidia.com/gpu.product" in tls_api.labels(NODE) and scraped())
        proc.send_signal(signal.SIGUSR2)
        wait_until(loaded.exists)
    finally:
        proc.terminate()
        stderr = proc.communicate(timeout=60)[1]
    imported = set(json.loads(loaded.read_text()))
    assert {"mig_labeler.daemon.root", "kubernetes.client.rest", "urllib3.http2.probe"} <= imported, stderr
    assert {module: why for module, why in LEFT_OUT.items() if module in imported} == {}


DEFERRED = """
from mig_labeler.deferred_imports import load
load("kubernetes.client.rest")
load("prometheus_client.metrics")
import kubernetes
from kubernetes import client, config, utils
assert callable(config.load_kube_config) and callable(utils.parse_quantity)
assert client.CoreV1Api.__name__ == "CoreV1Api" and kubernetes.__version__
import multiprocessing, urllib3.http2
assert multiprocessing.cpu_count() >= 1 and multiprocessing.get_context().Process
assert callable(urllib3.http2.inject_into_urllib3) and urllib3.http2.probe
from prometheus_client import generate_latest, Counter, REGISTRY, CONTENT_TYPE_LATEST
assert b"python_info" in generate_latest(REGISTRY) and CONTENT_TYPE_LATEST
print("ok")
"""


def test_the_deferred_packages_are_whole_for_code_that_uses_them():
    """Deferring the package ``__init__``s changes nothing for code that uses ``kubernetes`` the
    usual way once the transport has loaded: the first name asked for runs the real ``__init__``."""
    done = subprocess.run([sys.executable, "-c", DEFERRED], capture_output=True, text=True, timeout=120, check=False)
    assert done.stdout.strip() == "ok", done.stderr
