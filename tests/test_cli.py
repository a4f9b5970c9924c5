"""The CLI through click's runner: output formats, exit codes and one-line errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from mig_labeler import __version__
from mig_labeler.cli import cli, main

from .conftest import fixture_path


def run(*args: str, env: dict | None = None):
    result = CliRunner().invoke(cli, list(args), env=env)
    return result


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def test_labels_text_output_is_sorted_key_value_lines():
    result = run("labels", "--fixture", str(fixture_path("dgx-a100-mixed")), "--mig-strategy", "mixed",
                 "--no-timestamp")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines == sorted(lines)
    assert "nvidia.com/mig-3g.20gb.count=4" in lines
    assert "nvidia.com/mig.strategy=mixed" in lines


def test_labels_json_output_is_one_sorted_object():
    result = run("labels", "--fixture", "dgx-h100-7x1g", "-o", "json", "--mig-strategy", "single")
    data = json.loads(result.stdout)
    assert list(data) == sorted(data)
    assert data["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3-MIG-1g.10gb"
    assert data["nvidia.com/gpu.count"] == "56"
    assert data["nvidia.com/gfd.timestamp"].isdigit()


def test_gfd_environment_variables_are_accepted():
    env = {"GFD_MIG_STRATEGY": "single", "GFD_NO_TIMESTAMP": "true", "MIG_LABELER_FIXTURE": "dgx-a100-7x1g"}
    result = run("labels", env=env)
    assert "nvidia.com/mig.strategy=single" in result.stdout
    assert "gfd.timestamp" not in result.stdout


def test_flag_beats_env_beats_file_beats_default(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("version: v1\nflags:\n  migStrategy: mixed\n")
    base = ["labels", "--fixture", "dgx-a100-7x1g", "--config-file", str(cfg), "--no-timestamp"]
    assert "mig.strategy=mixed" in run(*base).stdout
    assert "mig.strategy=single" in run(*base, env={"MIG_STRATEGY": "single"}).stdout
    assert "mig.strategy" not in run(*base, "--mig-strategy", "none", env={"MIG_STRATEGY": "single"}).stdout
    assert "mig.strategy" not in run("labels", "--fixture", "dgx-a100-7x1g").stdout


def test_version(capsys):
    code, out, _ = run_main(capsys, "--version")
    assert code == 0 and __version__ in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["labels", "--fixture", "a30-mig-off", "--mig-strategy", "bogus"], "unknown MIG strategy 'bogus'"),
        (["labels", "--fixture", "no-such-fixture"], "cannot read fixture no-such-fixture"),
        (["labels", "--fixture", "a30-mig-off", "--config-file", "/nonexistent.yaml"], "cannot read config file"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, args, message):
    code, out, err = run_main(capsys, *args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err and out == ""


def test_malformed_config_file_exits_2(capsys, tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("version: v9\n")
    code, _, err = run_main(capsys, "labels", "--fixture", "a30-mig-off", "--config-file", str(cfg))
    assert code == 2 and "unknown version 'v9'" in err


def test_malformed_fixture_exits_2(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("gpus: [{model: B9000}]\n")
    code, _, err = run_main(capsys, "labels", "--fixture", str(bad))
    assert code == 2 and "unknown model 'B9000'" in err


def test_nvml_init_failure_exits_1_and_mentions_fixture(capsys, tmp_path):
    node = tmp_path / "node.yaml"
    node.write_text("init_error: NVML_ERROR_DRIVER_NOT_LOADED\ngpus: []\n")
    code, _, err = run_main(capsys, "labels", "--fixture", str(node))
    assert code == 1 and "driver is not loaded" in err and "Traceback" not in err


def test_nvml_init_failure_without_fail_on_init_error_labels_no_gpus(capsys, tmp_path):
    node = tmp_path / "node.yaml"
    node.write_text("init_error: NVML_ERROR_DRIVER_NOT_LOADED\ngpus: []\n")
    code, out, err = run_main(capsys, "labels", "--fixture", str(node), "--fail-on-init-error=false")
    assert code == 0
    assert out.startswith("nvidia.com/gfd.timestamp=") and out.splitlines()[1:] == ["nvidia.com/vgpu.present=false"]
    assert "labelling as a node without GPUs" in err


def test_real_nvml_absent_says_fixture_exists(capsys):
    code, _, err = run_main(capsys, "labels")
    if code == 0:
        pytest.skip("this machine has a working NVIDIA driver")
    assert code == 1 and "--fixture" in err and len(err.strip().splitlines()) == 1


def test_nvml_query_failure_exits_1(capsys, tmp_path):
    node = tmp_path / "node.yaml"
    node.write_text("gpus: [{model: A30}]\nfaults: [{call: nvmlDeviceGetCudaComputeCapability, "
                    "error: NVML_ERROR_GPU_IS_LOST}]\n")
    code, _, err = run_main(capsys, "labels", "--fixture", str(node))
    assert code == 1 and "GPU is lost" in err


def test_invalid_single_layout_warns_with_reason(capsys):
    code, out, err = run_main(capsys, "labels", "--fixture", "dgx-a100-mixed", "--mig-strategy", "single")
    assert code == 0 and "MIG-INVALID" in out
    assert "more than one MIG device type present on node" in err


def test_over_long_value_is_reported_not_printed(capsys, tmp_path):
    node = tmp_path / "node.yaml"
    node.write_text("gpus: [{name: '" + "Very Long GPU Name " * 4 + "', memory_mib: 1, compute_capability: [9, 0]}]\n")
    code, out, err = run_main(capsys, "labels", "--fixture", str(node))
    assert code == 0 and "gpu.product" not in out
    assert "not publishing nvidia.com/gpu.product" in err


def test_a_machine_type_file_the_user_names_beats_the_fixtures_machine_type(tmp_path):
    """flag > environment > config file > fixture > default, for the one fact a fixture also gives."""
    flag, env, file = (tmp_path / n for n in ("flag.txt", "env.txt", "file.txt"))
    for path in (flag, env, file):
        path.write_text(f"Box {path.stem}\n")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"flags: {{gfd: {{machineTypeFile: {file}}}}}\n")
    base = ["labels", "--fixture", "dgx-a100-mixed", "--no-timestamp"]  # the fixture says NVIDIA DGX A100

    def machine(*extra: str, env_vars: dict | None = None) -> str:
        out = run(*base, *extra, env=env_vars).stdout
        return next(line for line in out.splitlines() if line.startswith("nvidia.com/gpu.machine=")).split("=")[1]

    assert machine() == "NVIDIA-DGX-A100"
    assert machine("--config-file", str(cfg)) == "Box-file"
    assert machine("--config-file", str(cfg), env_vars={"GFD_MACHINE_TYPE_FILE": str(env)}) == "Box-env"
    assert machine("--config-file", str(cfg), "--machine-type-file", str(flag),
                   env_vars={"GFD_MACHINE_TYPE_FILE": str(env)}) == "Box-flag"
