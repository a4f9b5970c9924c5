"""Every bad input is one line and a documented exit code; signals, timeouts and messages that a
newcomer can act on. Each test here failed before its fix."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from mig_labeler.errors import EXIT_BAD_INPUT

from .conftest import make_daemon, wait_for_passes, wait_until, watching_daemon, write_fixture, write_kubeconfig
from .fakes.silent_server import SilentServer
from .test_cli import run, run_main

NODE = "gpu-node-1"
ROOT = Path(__file__).resolve().parents[1]


def one_line(err: str) -> str:
    """The one error line; `run` may log its start-up line before it."""
    lines = [line for line in err.strip().splitlines() if not line.startswith("mig-labeler: INFO: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# -- kubeconfig ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("content", "message"), [
    (b"apiVersion: v1\nclusters: [unclosed\n", "is not valid YAML"),
    (b"apiVersion: v1\nkind: Config\n\xff\xfe\n", "is not UTF-8 text"),
    (b"- just\n- a list\n", "must hold a mapping"),
    (b"apiVersion: v1\nkind: Config\nclusters: 5\n", "is malformed"),
])
def test_a_broken_kubeconfig_is_one_line_naming_the_file_and_exit_2(capsys, tmp_path, content, message):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_bytes(content)
    code, _, err = run_main(capsys, "run", "--oneshot", "--node-name", NODE, "--kubeconfig", str(kubeconfig),
                            "--fixture", "a30-mig-off")
    assert code == EXIT_BAD_INPUT
    line = one_line(err)
    assert str(kubeconfig) in line and message in line


def test_a_server_that_is_not_a_url_is_bad_input(capsys, tmp_path):
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", "not a url")
    code, _, err = run_main(capsys, "run", "--oneshot", "--node-name", NODE, "--kubeconfig", str(kubeconfig),
                            "--fixture", "a30-mig-off")
    assert code == EXIT_BAD_INPUT and "server 'not a url' is not a URL such as https://" in one_line(err)


def test_a_missing_kubeconfig_is_named(capsys, tmp_path):
    missing = tmp_path / "nope" / "config"
    code, _, err = run_main(capsys, "diff", "--node-name", NODE, "--kubeconfig", str(missing),
                            "--fixture", "a30-mig-off")
    assert code == EXIT_BAD_INPUT
    assert one_line(err) == f"mig-labeler: error: kubeconfig {missing} does not exist (from --kubeconfig or KUBECONFIG)"


def test_no_kubeconfig_at_all_names_the_default_path(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    code, _, err = run_main(capsys, "diff", "--node-name", NODE, "--fixture", "a30-mig-off")
    assert code == EXIT_BAD_INPUT
    assert f"there is no {tmp_path}/.kube/config (pass --kubeconfig PATH or set KUBECONFIG)" in one_line(err)


# -- fixtures --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("gpu", "message"), [
    ({"model": "A100-SXM4-40GB", "compute_capability": 8}, "compute_capability must be [major, minor]"),
    ({"model": "A100-SXM4-40GB", "mig_mode": 5}, "mig_mode must be a mapping"),
    ({"model": "A100-SXM4-40GB", "mig_mode": {"current": 1}}, "needs current and pending"),
    ({"model": "A100-SXM4-40GB", "mig_mode": {"current": 7, "pending": 1}}, "from 0 to 1, not 7"),
    ({"model": "A100-SXM4-40GB", "mig_mode": {"current": -1, "pending": 1}}, "from 0 to 1, not -1"),
    ({"model": "A100-SXM4-40GB", "memory_mib": "lots"}, "memory_mib must be an integer"),
    ({"model": "A100-SXM4-40GB", "memory_mib": -1}, "memory_mib must be an integer from 0"),
    ({"model": "A100-SXM4-40GB", "pci_class": "zz"}, "pci_class must be a hex string"),
    ({"model": "A100-SXM4-40GB", "mig": [{"profile": "1g.5gb", "attributes": {"engines": 5}}]},
     "engines must be a mapping"),
    ({"model": "A100-SXM4-40GB", "mig": ["7g.40gb", "7g.40gb"]}, "holds at most 1 7g.40gb"),
    ({"model": "A100-SXM4-40GB", "mig": ["3g.20gb", "3g.20gb", "1g.5gb"]}, "does not fit on one A100-SXM4-40GB"),
    ({"model": "B200", "mig": ["2g.45gb", "2g.45gb", "2g.45gb", "1g.23gb", "1g.23gb"]},
     "does not fit on one B200 (7 compute slices"),
    ({"model": "A100-SXM4-40GB", "mig": [{"profile": "1g.5gb", "attributes": {"memory_mib": 99999}}]},
     "larger than the GPU"),
    ({"model": "A100-SXM4-40GB", "count": 10000000}, "count must be an integer from 1 to 64"),
])
def test_a_wrongly_typed_or_impossible_gpu_is_one_line_and_exit_2(capsys, tmp_path, gpu, message):
    path = write_fixture(tmp_path / "node.yaml", {"gpus": [gpu]})
    code, _, err = run_main(capsys, "labels", "--fixture", str(path))
    assert code == EXIT_BAD_INPUT and message in one_line(err), err


@pytest.mark.parametrize(("doc", "message"), [
    ({"cuda_driver_version": "abc"}, "cuda_driver_version must be an integer"),
    ({"init_error": 123}, "init_error 123 is not an NVML_ERROR_* name"),
    ({"init_error": "NVML_ERROR_BOGUS"}, "'NVML_ERROR_BOGUS' is not an NVML error name"),
    ({"faults": [{"call": "nvmlDeviceGetMemoryInfo", "error": "NVML_ERROR_NOPE"}]},
     "'NVML_ERROR_NOPE' is not an NVML error name"),
    ({"gpus": [{"model": "A30", "uuid": "GPU-1"}, {"model": "A30", "uuid": "GPU-1"}]}, "GPU-1 appears twice"),
])
def test_other_bad_fixture_fields_are_one_line_and_exit_2(capsys, tmp_path, doc, message):
    path = write_fixture(tmp_path / "node.yaml", doc)
    code, _, err = run_main(capsys, "labels", "--fixture", str(path))
    assert code == EXIT_BAD_INPUT and message in one_line(err), err


def test_a_fixture_that_is_not_utf8_is_one_line(capsys, tmp_path):
    path = tmp_path / "node.yaml"
    path.write_bytes(b"gpus: [{model: \xff}]\n")
    code, _, err = run_main(capsys, "labels", "--fixture", str(path))
    assert code == EXIT_BAD_INPUT and "is not UTF-8 text" in one_line(err)


def test_a_mistyped_directory_is_an_error_not_the_bundled_fixture(capsys):
    code, _, err = run_main(capsys, "labels", "--fixture", "/no/such/dir/dgx-a100-mixed.yaml")
    assert code == EXIT_BAD_INPUT
    assert one_line(err) == "mig-labeler: error: cannot read fixture /no/such/dir/dgx-a100-mixed.yaml: no such file"


def test_an_empty_fixture_flag_is_an_error_not_real_nvml(capsys):
    code, _, err = run_main(capsys, "labels", "--fixture", "")
    assert code == EXIT_BAD_INPUT and "--fixture is empty" in one_line(err)


def test_an_empty_strategy_in_the_environment_counts_as_unset_and_on_the_command_line_is_an_error(capsys):
    assert run("labels", "--fixture", "a30-mig-off", env={"GFD_MIG_STRATEGY": ""}).exit_code == 0
    code, _, err = run_main(capsys, "labels", "--fixture", "a30-mig-off", "--mig-strategy", "")
    assert code == EXIT_BAD_INPUT and "--mig-strategy is empty" in one_line(err)


@pytest.mark.parametrize("oneshot", [["--oneshot"], []])
def test_run_refuses_a_missing_fixture_before_the_first_pass(capsys, kube_api, tmp_path, oneshot):
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kube_api.url)
    code, _, err = run_main(capsys, "run", *oneshot, "--node-name", NODE, "--kubeconfig", str(kubeconfig),
                            "--fixture", "dgx-a100-foo", "--metrics-port", "0")
    assert code == EXIT_BAD_INPUT and "cannot read fixture dgx-a100-foo" in err.strip().splitlines()[-1]
    assert kube_api.writes() == []


# -- output ----------------------------------------------------------------------------------------


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mig_labeler", *args]


def test_output_to_a_full_disk_is_one_line_and_exit_2():
    with open("/dev/full", "w") as full:
        proc = subprocess.run(_cli("labels", "--fixture", "dgx-h100-7x1g"), stdout=full, stderr=subprocess.PIPE,
                              text=True, check=False)
    assert proc.returncode == EXIT_BAD_INPUT
    assert one_line(proc.stderr) == "mig-labeler: error: cannot write the output: No space left on device"


def test_a_closed_pipe_ends_quietly_with_0():
    """`mig-labeler labels | head -2`: the reader is gone before we write."""
    proc = subprocess.Popen(_cli("labels", "--fixture", "dgx-h100-7x1g"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and err == b""


def test_yaml_output_pastes_into_a_node_selector_as_strings():
    result = run("labels", "--fixture", "dgx-a100-mixed", "--mig-strategy", "mixed", "--no-timestamp", "-o", "yaml")
    parsed = yaml.safe_load(result.stdout)
    as_text = run("labels", "--fixture", "dgx-a100-mixed", "--mig-strategy", "mixed", "--no-timestamp").stdout
    assert parsed == dict(line.split("=", 1) for line in as_text.splitlines())
    assert all(isinstance(v, str) for v in parsed.values())  # 4, true and 8.0 stay strings


def test_a_usage_error_is_one_line_and_exit_2(capsys):
    code, _, err = run_main(capsys, "labels", "--no-such-flag")
    assert code == EXIT_BAD_INPUT
    assert one_line(err) == "mig-labeler: error: No such option '--no-such-flag' (see 'mig-labeler labels --help')"


def test_help_names_every_environment_variable():
    text = run("run", "--help").stdout
    for name in ("GFD_MIG_STRATEGY", "MIG_LABELER_FIXTURE", "NODE_NAME", "KUBECONFIG", "GFD_SLEEP_INTERVAL",
                 "MIG_LABELER_METRICS_PORT", "MIG_LABELER_ONESHOT_TIMEOUT", "GFD_CONFIG_FILE"):
        assert name in text, name


def test_make_models_without_the_shared_spec_is_one_line():
    proc = subprocess.run([sys.executable, "tools/gen_gpu_models.py", "/no/such/mig-profiles.json"], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == EXIT_BAD_INPUT and "cannot read /no/such/mig-profiles.json" in one_line(proc.stderr)


# -- the network -----------------------------------------------------------------------------------


@pytest.fixture
def silent():
    server = SilentServer()
    yield server
    server.close()


def test_a_server_that_never_answers_fails_a_oneshot_at_its_deadline(capsys, silent, tmp_path):
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", silent.url)
    code, _, err = run_main(capsys, "run", "--oneshot", "--node-name", NODE, "--kubeconfig", str(kubeconfig),
                            "--fixture", "a30-mig-off", "--oneshot-timeout", "1s")
    assert code == 1
    assert err.strip().splitlines()[-1].startswith("mig-labeler: error: labels were not published: ")


class TricklingServer(SilentServer):
    """Answers 200 and then one byte every 0.2 s, for ever: no socket read ever times out."""

    def serve(self, conn: socket.socket) -> None:
        threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 999999\r\n\r\n")
            self.accepted.set()
            while True:  # the server's pace, not a test waiting
                conn.sendall(b" ")
                time.sleep(0.2)
        except OSError:
            return


@pytest.mark.parametrize("command", [["diff", "--timeout", "4s"], ["run", "--oneshot", "--oneshot-timeout", "4s"]])
def test_a_server_that_trickles_bytes_for_ever_fails_at_the_time_limit(tmp_path, command):
    """A socket's read timeout never fires while bytes keep coming: the limit is a deadline on the
    whole request (the command once waited for ever). Bounded here by communicate's own timeout.
    The limit counts from the process's start: 4 s leaves a loaded machine's start-up room."""
    server = TricklingServer()
    url = server.url
    try:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url)
        proc = subprocess.run(_cli(*command, "--node-name", NODE, "--kubeconfig", str(kubeconfig), "--fixture",
                                   "a30-mig-off", "--metrics-port", "0") if command[0] == "run" else
                              _cli(*command, "--node-name", NODE, "--kubeconfig", str(kubeconfig), "--fixture",
                                   "a30-mig-off"), capture_output=True, text=True, timeout=60, check=False)
    finally:
        server.close()
    assert proc.returncode == 1, proc.stderr
    assert f"GET nodes/{NODE}: no complete answer from {url} within the time limit of 4 s" in proc.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_a_oneshot_is_handled_not_fatal(silent, tmp_path, sig):
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", silent.url)
    proc = subprocess.Popen(_cli("run", "--oneshot", "--node-name", NODE, "--kubeconfig", str(kubeconfig),
                                 "--fixture", "a30-mig-off", "--oneshot-timeout", "2s"),
                            stderr=subprocess.PIPE, text=True)
    try:
        assert silent.accepted.wait(30)  # the pass is in flight, so the handlers are installed
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1, err  # the request was abandoned, nothing published: exit 1, not 143/aborted
    assert "labels were not published" in err.strip().splitlines()[-1]


def test_a_refused_connection_names_the_server_and_the_reason(capsys, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{port}")
    code, _, err = run_main(capsys, "run", "--oneshot", "--node-name", NODE, "--kubeconfig", str(kubeconfig),
                            "--fixture", "a30-mig-off", "--oneshot-timeout", "5s")
    assert code == 1
    assert f"cannot reach the API server at 127.0.0.1:{port}: connection refused" in err.strip().splitlines()[-1]


def test_tls_to_a_plain_http_server_is_one_line_naming_the_server(capsys, kube_api, tmp_path):
    url = kube_api.url.replace("http://", "https://")
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url)
    code, _, err = run_main(capsys, "run", "--oneshot", "--node-name", NODE, "--kubeconfig", str(kubeconfig),
                            "--fixture", "a30-mig-off")
    assert code == 1
    line = err.strip().splitlines()[-1]
    assert f"TLS handshake failed with server {url}: wrong version number (is the server plain HTTP?)" in line
    assert "HTTP 0" not in line and "SSLError" not in line and "\\n" not in line


def test_requests_carry_our_user_agent(capsys, kube_api, tmp_path):
    from mig_labeler import __version__

    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kube_api.url)
    code, _, _ = run_main(capsys, "run", "--oneshot", "--node-name", NODE, "--kubeconfig", str(kubeconfig),
                          "--fixture", "a30-mig-off")
    assert code == 0 and {r.user_agent for r in kube_api.log} == {f"mig-labeler/{__version__}"}


# -- the running daemon ----------------------------------------------------------------------------


def test_a_deleted_node_is_reported_once_and_not_ready_then_relabelled(kube_api, tmp_path, caplog):
    with watching_daemon(kube_api, write_fixture(tmp_path / "n.yaml", {"gpus": [{"model": "A30"}]})) as daemon:
        assert daemon.health.readiness()[0]
        kube_api.delete_node(NODE)
        not_found = (False, 'node "gpu-node-1" not found: check --node-name / NODE_NAME')
        wait_until(lambda: daemon.health.readiness() == not_found)
        done = daemon.passes_done
        for more in (1, 2):  # two more passes against the missing Node: still said only once
            daemon.wake.set()
            wait_for_passes(daemon, done + more)
        assert daemon.health.readiness() == not_found
        messages = [r.getMessage() for r in caplog.records if r.levelname in ("WARNING", "ERROR")]
        assert sum("was deleted" in m for m in messages) == 1
        assert sum("not found" in m for m in messages) == 1
        kube_api.add_node(NODE)
        wait_until(lambda: kube_api.labels(NODE).get("nvidia.com/gpu.product") == "NVIDIA-A30")
        wait_until(lambda: daemon.health.readiness()[0])


def test_a_node_state_read_before_the_deletion_never_brings_the_node_back(kube_api, tmp_path):
    """A pass in flight when the watch reports the deletion still holds the Node it read; handing
    that back to the cache must not resurrect the Node (the loop would plan against it from then
    on, never GET, never say "not found"). The Node's return is newer and is taken."""
    import dataclasses

    daemon = make_daemon(kube_api, write_fixture(tmp_path / "n.yaml", {"gpus": [{"model": "A30"}]}))
    read_in_pass = daemon.kube.read_node(NODE)
    daemon.node.remember(read_in_pass)
    kube_api.delete_node(NODE)  # the DELETED event carries the last state at the deletion's version
    daemon.node.node_deleted(dataclasses.replace(read_in_pass, resource_version=str(kube_api.revision)))
    assert daemon.node.remember(read_in_pass) is None and daemon.node.latest() is None
    kube_api.add_node(NODE)
    back = daemon.kube.read_node(NODE)
    daemon.node.remember(back)
    assert daemon.node.latest() == back


def test_a_missing_events_permission_is_warned_about_once(kube_api, tmp_path, caplog):
    kube_api.forbidden.add(("create", "events"))
    node_file = write_fixture(tmp_path / "n.yaml", {"gpus": [{"model": "A30"}]})
    daemon = make_daemon(kube_api, node_file)
    daemon.run_pass()
    daemon.clock.now += 120
    write_fixture(node_file, {"gpus": [{"model": "A30", "mig": ["4g.24gb"]}]})
    daemon.run_pass()
    warnings = [r.getMessage() for r in caplog.records if "cannot post Events" in r.getMessage()]
    assert len(warnings) == 1 and "create events" in warnings[0]


def test_a_list_denied_by_rbac_hints_at_list_not_get(kube_api):
    from mig_labeler.errors import ApiError
    from mig_labeler.kube.connection import connect

    kube_api.forbidden.add(("list", "nodes"))
    client = connect(None, host=kube_api.url)
    with pytest.raises(ApiError, match="needs RBAC verb 'list nodes'"):
        client.node_objects([])
    client.close()




SIGNAL_DURING_IMPORTS = """
import os, signal, sys
from mig_labeler import early_signals, entry
early_signals.install_early_handlers()  # what the console script does first
os.kill(os.getpid(), signal.{sig})  # now: while the command line and its libraries are imported
entry.main(sys.argv[1:])
"""


@pytest.mark.parametrize(("sig", "args", "code", "said"), [
    ("SIGTERM", ["run", "--metrics-port", "0"], 0, "stopping: SIGTERM"),
    ("SIGINT", ["run", "--oneshot"], 0, "stopping: SIGINT"),
    ("SIGINT", ["labels"], 130, "mig-labeler: interrupted by SIGINT"),
    ("SIGTERM", ["diff"], 143, "mig-labeler: interrupted by SIGTERM"),
    ("SIGHUP", ["labels"], 0, ""),  # the configuration is read for the first time anyway
])
def test_a_signal_while_python_imports_us_is_handled(kube_api, kubeconfig, sig, args, code, said):
    """It once killed run (143, no line), printed a KeyboardInterrupt traceback from importlib for
    labels (-2) and killed the daemon on SIGHUP (129)."""
    kube = ["--node-name", NODE, "--kubeconfig", kubeconfig] if args[0] != "labels" else []
    proc = subprocess.run([sys.executable, "-c", SIGNAL_DURING_IMPORTS.format(sig=sig), *args, *kube, "--fixture",
                           "a30-mig-off"], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == code and said in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    if args[0] == "run":
        assert kube_api.writes() == []  # stopped before the first pass


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["--version"]])
def test_help_and_version_to_a_full_disk_are_one_line_and_exit_2(args):
    with open("/dev/full", "w") as full:
        proc = subprocess.run(_cli(*args), stdout=full, stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr == "mig-labeler: error: cannot write the output: No space left on device\n"


def test_a_fixture_directory_is_said_to_be_a_directory(capsys, tmp_path):
    code, _, err = run_main(capsys, "labels", "--fixture", str(tmp_path))
    assert code == 2 and f"cannot read fixture {tmp_path}: it is a directory" in err


def test_the_sleep_interval_error_suggests_only_durations_it_accepts(capsys):
    code, _, err = run_main(capsys, "run", "--oneshot", "--fixture", "a30-mig-off", "--output-file", "-",
                            "--sleep-interval", "soon")
    assert code == 2 and "such as 60s, 1m or 1m30s" in err and "500ms" not in err


# -- what a newcomer types --------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "first_line"), [
    (["help"], "Usage: mig-labeler [OPTIONS] COMMAND [ARGS]..."),
    (["help", "labels"], "Usage: mig-labeler labels [OPTIONS]"),
])
def test_help_is_a_command_as_in_gfds_cli(capsys, args, first_line):
    code, out, _ = run_main(capsys, *args)
    assert code == 0 and out.splitlines()[0] == first_line


@pytest.mark.parametrize("args", [["labels", "--gpu", "A100-SXM4-40GB:8", "--gpu", "A30:2"],
                                  ["labels", "--fixture", "a30-mig-off", "--fixture=dgx-a100-mixed"]])
def test_a_single_valued_option_given_twice_is_refused_not_the_last_kept(capsys, args):
    code, _, err = run_main(capsys, *args)
    assert code == 2 and f"{args[1]} is given 2 times; give it once; check takes several nodes" in err


def test_a_gpu_product_value_for_gpu_suggests_the_model(capsys):
    code, _, err = run_main(capsys, "labels", "--gpu", "NVIDIA-H100-80GB-HBM3:8")
    assert code == 2
    assert "(did you mean H100-SXM5-80GB? its nvidia.com/gpu.product is NVIDIA-H100-80GB-HBM3)" in err


def test_a_mig_config_under_strategy_none_says_no_mig_device_is_labelled(capsys, tmp_path):
    from .test_mig_parted import CONFIG

    code, out, err = run_main(capsys, "labels", "--gpu", "A100-SXM4-40GB:1", "--mig-config", "all-balanced",
                              "--mig-parted-config", str(CONFIG))
    assert code == 0 and "nvidia.com/mig-" not in out
    assert "the MIG strategy is none, so no MIG device is labelled: add --mig-strategy mixed" in err
