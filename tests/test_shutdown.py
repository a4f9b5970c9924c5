"""A stop request ends every wait at once, whatever the API server is doing (issue: SIGTERM within
a second). The real CLI in a subprocess against the fake API server, which can leave a request
unanswered (or half answered) for as long as the test runs. How long the exit takes is measured in
``make bench``; these tests check the behaviour: the process exits, with the documented code,
and says what it abandoned. Nothing here waits out a request's timeout: a test that did would
see a retry line, which each one rules out.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import WAIT_LIMIT, write_kubeconfig

NODE = "gpu-node-1"


# ``python -m mig_labeler`` with SIGINT as a terminal delivers it. A shell starts background jobs
# with SIGINT ignored (``make test-stress &``) and Python keeps an inherited SIG_IGN, so Ctrl-C
# would be a no-op in the very process meant to show what Ctrl-C does. (Not preexec_fn: it is
# unsafe in a process with threads, and the fake API server runs in threads.)
MIG_LABELER = [sys.executable, "-c", "import runpy, signal, sys; signal.signal(signal.SIGINT, "
               "signal.default_int_handler); sys.argv[0] = 'mig-labeler'; "
               "runpy.run_module('mig_labeler', run_name='__main__', alter_sys=True)"]


def start(kube_api, tmp_path: Path, *args: str) -> subprocess.Popen:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kube_api.url)
    return subprocess.Popen([*MIG_LABELER, *args, "--node-name", NODE, "--kubeconfig",
                             str(kubeconfig), "--fixture", "a30-mig-off"], stderr=subprocess.PIPE, text=True)


def stop(proc: subprocess.Popen, sig: signal.Signals = signal.SIGTERM) -> tuple[int, str]:
    try:
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=WAIT_LIMIT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in err, err
    return proc.returncode, err


def read_until(proc: subprocess.Popen, text: str) -> list[str]:
    """stderr lines up to the first that contains ``text`` (blocks until the process says it)."""
    seen: list[str] = []
    while not (seen and text in seen[-1]):
        seen.append(proc.stderr.readline())
        assert seen[-1], f"the process exited before saying {text!r}: {seen}"
    return seen


DAEMON = ("run", "--metrics-port", "0", "--sleep-interval", "1h")


def test_sigterm_with_a_patch_in_flight_exits_0_and_says_what_it_abandoned(kube_api, tmp_path):
    # On a real server a PATCH answered late (504) may still be applied: abandoning it is safe
    # because every pass plans against the live Node again, and an apply is atomic there.
    kube_api.hang_next(method="PATCH")
    proc = start(kube_api, tmp_path, *DAEMON)
    assert kube_api.wait_hung(1)
    code, err = stop(proc)
    assert code == 0, err
    assert f"mig-labeler: INFO: stopping: SIGTERM; abandoning PATCH nodes/{NODE}" in err
    assert "retry" not in err and "timed out" not in err


def test_sigterm_at_start_up_while_the_server_sends_half_a_response_exits_0(kube_api, tmp_path):
    kube_api.hang_next(method="GET", partial=True)
    proc = start(kube_api, tmp_path, *DAEMON)
    assert kube_api.wait_hung(1)
    code, err = stop(proc)
    assert code == 0, err
    assert f"stopping: SIGTERM; abandoning GET nodes/{NODE}" in err
    assert "retry" not in err


def test_sigterm_during_a_retry_backoff_exits_0(kube_api, tmp_path):
    kube_api.fail_next(5, 503, retry_after=30, method="PATCH")  # the server asks for 30 s of patience
    proc = start(kube_api, tmp_path, *DAEMON)
    read_until(proc, "; retry 1 of 4 in 30.0 s")
    code, err = stop(proc)
    assert code == 0, err
    assert "stopping: SIGTERM" in err
    assert "retry 2 of 4" not in err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_abandons_a_oneshots_request_and_exits_1(kube_api, tmp_path, sig):
    kube_api.hang_next(method="GET")
    proc = start(kube_api, tmp_path, "run", "--oneshot")
    assert kube_api.wait_hung(1)
    code, err = stop(proc, sig)
    assert code == 1, err
    assert err.strip().splitlines()[-1] == (f"mig-labeler: error: labels were not published: stopped by {sig.name} "
                                            f"while waiting for GET nodes/{NODE}")


def test_sighup_is_not_a_stop(kube_api, tmp_path):
    kube_api.hang_next(method="PATCH")
    proc = start(kube_api, tmp_path, *DAEMON)
    assert kube_api.wait_hung(1)
    proc.send_signal(signal.SIGHUP)
    code, err = stop(proc)  # still running after SIGHUP: only the TERM ends it
    assert code == 0 and err.count("stopping: ") == 1, err


def test_ctrl_c_on_diff_exits_130(kube_api, tmp_path):
    kube_api.hang_next(method="GET")
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kube_api.url)
    proc = subprocess.Popen([*MIG_LABELER, "diff", "--node-name", NODE, "--kubeconfig",
                             str(kubeconfig), "--fixture", "a30-mig-off"], stderr=subprocess.PIPE, text=True)
    assert kube_api.wait_hung(1)
    code, err = stop(proc, signal.SIGINT)
    assert code == 130
    assert err.strip().splitlines()[-1] == "mig-labeler: interrupted"


def test_each_retry_of_diff_is_one_info_line(kube_api, tmp_path, capsys):
    from .test_cli import run_main

    kube_api.add_node(NODE)
    kube_api.fail_next(1, 503, retry_after=0.01)
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kube_api.url)
    code, _, err = run_main(capsys, "diff", "--node-name", NODE, "--kubeconfig", str(kubeconfig),
                            "--fixture", "a30-mig-off", "--timeout", "20s")
    assert code == 0, err
    assert f"mig-labeler: INFO: GET nodes/{NODE}: HTTP 503: injected fault; retry 1 of 4 in " in err


def test_a_host_name_that_does_not_resolve_is_said_at_once_without_retries(tmp_path, capsys):
    from .test_cli import run_main

    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", "https://no-such-host.invalid:6443")
    code, _, err = run_main(capsys, "diff", "--node-name", NODE, "--kubeconfig", str(kubeconfig),
                            "--fixture", "a30-mig-off")
    assert code == 1
    assert "cannot resolve host name 'no-such-host.invalid'" in err
    assert "retry" not in err and "timed out" not in err


def test_a_zero_timeout_names_its_option(tmp_path, capsys):
    from .test_cli import run_main

    code, _, err = run_main(capsys, "run", "--oneshot", "--node-name", NODE, "--fixture", "a30-mig-off",
                            "--oneshot-timeout", "0s")
    assert code == 2
    assert "--oneshot-timeout '0s' is too short: it must be more than 0" in err
