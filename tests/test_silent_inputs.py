"""Inputs that used to be accepted without a word: each is now a warning or a clear refusal."""

from __future__ import annotations

import pytest
import yaml

from .test_cli import run_main


def labels(capsys, *args: str) -> tuple[int, str, str]:
    return run_main(capsys, "labels", "--no-timestamp", *args)


@pytest.mark.parametrize("make", [lambda d: d / "missing", lambda d: d, lambda d: d / "dir/"])
def test_a_machine_type_file_the_user_named_that_cannot_be_read_is_a_warning(capsys, tmp_path, make):
    path = make(tmp_path)
    code, out, err = labels(capsys, "--fixture", "a30-mig-off", "--machine-type-file", str(path))
    assert code == 0 and "nvidia.com/gpu.machine=unknown" in out
    assert f"cannot read the machine type file {path}" in err and "gpu.machine is unknown" in err


def test_the_default_machine_type_file_stays_quiet_when_absent(capsys):
    code, _, err = labels(capsys, "--fixture", "a30-mig-off")  # a fixture stands in for the DMI file
    assert code == 0 and "machine type" not in err


def test_a_binary_machine_type_file_is_one_short_warning(capsys, tmp_path):
    binary = tmp_path / "product_name"
    binary.write_bytes(bytes(range(256)) * 5)
    code, _, err = labels(capsys, "--fixture", "a30-mig-off", "--machine-type-file", str(binary))
    assert code == 0
    warning = next(line for line in err.splitlines() if "nvidia.com/gpu.machine" in line)
    assert len(warning) < 300 and "characters)" in warning


@pytest.mark.parametrize(("doc", "message"), [
    ({"gpus": [{"model": "A30", "mig_devices": ["1g.6gb"]}]}, "gpus[0] has unknown key 'mig_devices'"),
    ({"gpu": [{"model": "A30"}]}, "has unknown key 'gpu'"),
    ({"gpus": [{"model": "A30", "mig": [{"profile": "1g.6gb", "attrs": {}}]}]}, "unknown key 'attrs'"),
    ({"gpus": [{"model": "A30"}], "faults": [{"call": "nvmlDeviceGetMemoryInfos", "error": "NVML_ERROR_UNKNOWN"}]},
     "faults[0].call 'nvmlDeviceGetMemoryInfos' is not an NVML call the fake answers"),
])
def test_a_fixture_typo_is_refused_naming_it(capsys, tmp_path, doc, message):
    path = tmp_path / "node.yaml"
    path.write_text(yaml.safe_dump(doc))
    code, _, err = labels(capsys, "--fixture", str(path))
    assert code == 2 and message in err and "Traceback" not in err


def test_a_sharing_entry_for_a_resource_the_node_lacks_is_a_warning(capsys, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("version: v1\nsharing:\n  timeSlicing:\n    resources:\n"
                      "      - {name: nvidia.com/mig-1g.10gb, replicas: 2}\n")
    code, _, err = labels(capsys, "--fixture", "dgx-h100-7x1g", "--mig-strategy", "mixed", "--config-file", str(config))
    assert code == 0
    assert "the sharing config names nvidia.com/mig-1g.10gb, which this node does not advertise" not in err
    code, _, err = labels(capsys, "--fixture", "a30-mig-off", "--config-file", str(config))
    assert "the sharing config names nvidia.com/mig-1g.10gb, which this node does not advertise (it has " \
           "nvidia.com/gpu)" in err


def test_a_config_file_larger_than_a_configmap_is_refused_at_once(capsys, tmp_path):
    big = tmp_path / "config.yaml"
    big.write_text("version: v1\n" + "# padding\n" * 120_000)
    code, _, err = labels(capsys, "--fixture", "a30-mig-off", "--config-file", str(big))
    assert code == 2 and "is larger than 1 MiB, the most a ConfigMap holds" in err


def test_thousands_of_duplicate_entries_are_one_warning(capsys, tmp_path):
    config = tmp_path / "config.yaml"
    entries = "".join("      - {name: nvidia.com/gpu, replicas: 2}\n" for _ in range(2000))
    config.write_text(f"version: v1\nsharing:\n  timeSlicing:\n    resources:\n{entries}")
    code, _, err = labels(capsys, "--fixture", "a30-mig-off", "--config-file", str(config))
    assert code == 0
    repeats = [line for line in err.splitlines() if "repeats" in line]
    assert len(repeats) == 1 and "and 1996 more; the first entry of each is used" in repeats[0]


def test_a_missing_credential_plugin_is_bad_input_in_one_line(capsys, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1",
                                                  "command": "no-such-credential-plugin"}}}]}))
    code, _, err = run_main(capsys, "diff", "--node-name", "n", "--kubeconfig", str(kubeconfig),
                            "--fixture", "a30-mig-off")
    assert code == 2
    assert err.strip().splitlines() == [f"mig-labeler: error: kubeconfig {kubeconfig}: user 'u' gets credentials "
                                        "from the plugin 'no-such-credential-plugin', which is not installed here "
                                        "(not an executable file, nor on PATH)"]
