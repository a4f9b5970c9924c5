"""Per-node device-plugin configs, as NVIDIA's config-manager picks them: the rules against its
code (cmd/config-manager updateConfigName), and a running daemon following the node's label."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import click
import pytest
from prometheus_client import CollectorRegistry

from mig_labeler.cli.commands import run
from mig_labeler.cli.config_from_options import GivenOptions
from mig_labeler.daemon.root import Daemon, build_daemon
from mig_labeler.errors import ConfigError
from mig_labeler.node_configs import choose_config, parse_fallbacks

from .conftest import WAIT_LIMIT, wait_for_passes, wait_until

NODE = "gpu-node-1"
LABEL = "nvidia.com/device-plugin.config"


# (label value, configs in the directory, default, fallbacks) -> the name (""= the empty config), or the error
@pytest.mark.parametrize(("value", "available", "default", "fallbacks", "chosen"), [
    ("a100", {"a100", "any"}, "any", ("named", "single"), "a100"),  # the label wins over the default
    ("", {"a100", "any"}, "any", ("named", "single"), "any"),  # no label: the default
    ("", {"a100", "default"}, "", ("named", "single"), "default"),  # no default: a config called default
    ("", {"only"}, "", ("named", "single"), "only"),  # ... else the only one
    ("", {"a", "b"}, "", ("named", "single", "empty"), ""),  # ... else the empty config
    ("", {"a", "b"}, "", ("single", "named"), ConfigError),  # every fallback failed
    ("h100", {"a100", "any"}, "any", ("named", "single"), ConfigError),  # a label naming nothing is an error
    ("", {"a100"}, "any", ("named", "single"), ConfigError),  # so is a default naming nothing
    ("", set(), "", ("empty",), ConfigError),  # no configs at all: config-manager fails before anything
])
def test_the_config_is_chosen_as_config_manager_chooses_it(value, available, default, fallbacks, chosen):
    if chosen is ConfigError:
        with pytest.raises(ConfigError):
            choose_config(value, available, default, fallbacks)
    else:
        assert choose_config(value, available, default, fallbacks) == chosen


def test_an_unknown_fallback_strategy_is_refused_at_start():
    assert parse_fallbacks("named, single,empty") == ("named", "single", "empty")
    with pytest.raises(ConfigError, match="unknown fallback strategy 'first'"):
        parse_fallbacks("named,first")


TIME_SLICED = ("version: v1\nsharing:\n  timeSlicing:\n    resources:\n      - name: nvidia.com/gpu\n"
               "        replicas: {}\n")


@pytest.fixture
def configs(tmp_path):
    """The device-plugin chart's config.map as the kubelet mounts it: one file per key, ..data."""
    directory = tmp_path / "configs"
    data = tmp_path / "configs" / "..2026_12_03_01"
    data.mkdir(parents=True)
    for name, replicas in (("any", 4), ("a100", 2)):
        (data / name).write_text(TIME_SLICED.format(replicas))
        (directory / name).symlink_to(f"..data/{name}")
    (directory / "..data").symlink_to(data.name)
    return directory


def given(*args: str) -> GivenOptions:
    with click.Context(run) as ctx:
        run.parse_args(ctx, list(args))
        return GivenOptions.of(ctx)


def sharing_labels(kube_api) -> dict[str, str]:
    live = kube_api.labels(NODE)
    return {k: live.get(k, "") for k in ("nvidia.com/gpu.replicas", "nvidia.com/gpu.product",
                                         "nvidia.com/gpu.sharing-strategy")}


@contextmanager
def running(kubeconfig: str, configs) -> Iterator[Daemon]:
    """``run`` as the chart deploys it with two configs (default: any), watching, first pass done."""
    options = given("--node-name", NODE, "--kubeconfig", kubeconfig, "--fixture", "a30-mig-off", "--no-timestamp",
                    "--config-file-srcdir", str(configs), "--default-config", "any", "--sleep-interval", "1h")
    daemon = build_daemon(options.read(), options, registry=CollectorRegistry(), watch=True, watch_backoff=0.01)
    daemon.start_up()
    thread = threading.Thread(target=daemon.run_forever, daemon=True)
    thread.start()
    try:
        wait_for_passes(daemon, 1)
        yield daemon
    finally:
        daemon.stop.request()
        thread.join(WAIT_LIMIT)
    assert not thread.is_alive()


def test_a_node_follows_its_device_plugin_config_label_and_back(kube_api, kubeconfig, configs):
    with running(kubeconfig, configs) as daemon:
        before = sharing_labels(kube_api)
        assert before == {"nvidia.com/gpu.replicas": "4", "nvidia.com/gpu.product": "NVIDIA-A30-SHARED",
                          "nvidia.com/gpu.sharing-strategy": "time-slicing"}
        kube_api.edit_labels(NODE, {LABEL: "a100"}, manager="kubectl")
        wait_until(lambda: kube_api.labels(NODE).get("nvidia.com/gpu.replicas") == "2")  # one pass, the watch woke it
        after = sharing_labels(kube_api)
        assert after["nvidia.com/gpu.product"] == "NVIDIA-A30-SHARED"
        assert daemon.metrics.registry.get_sample_value("mig_labeler_device_plugin_config", {"config": "a100"}) == 1
        changed = [e for e in kube_api.events if e["reason"] == "DevicePluginConfigChanged"]
        assert changed and changed[0]["message"].startswith("mig-labeler: device-plugin config any → a100")
        kube_api.edit_labels(NODE, {LABEL: None}, manager="kubectl")
        wait_until(lambda: kube_api.labels(NODE).get("nvidia.com/gpu.replicas") == "4")  # back to the default
        assert sharing_labels(kube_api) == before


def test_a_label_naming_no_config_keeps_the_last_good_labels_with_a_gauge_and_one_event(kube_api, kubeconfig,
                                                                                         configs):
    with running(kubeconfig, configs) as daemon:
        before = sharing_labels(kube_api)
        kube_api.edit_labels(NODE, {LABEL: "h100"}, manager="kubectl")
        wait_until(lambda: daemon.metrics.registry.get_sample_value("mig_labeler_device_plugin_config_valid") == 0)
        done = daemon.passes_done
        daemon.wake.set()
        wait_for_passes(daemon, done + 1)
        assert sharing_labels(kube_api) == before
        missing = [e for e in kube_api.events if e["reason"] == "DevicePluginConfigMissing"]
        assert len(missing) == 1 and "names config 'h100', which does not exist" in missing[0]["message"]
        kube_api.edit_labels(NODE, {LABEL: "a100"}, manager="kubectl")
        wait_until(lambda: kube_api.labels(NODE).get("nvidia.com/gpu.replicas") == "2")
        assert daemon.metrics.registry.get_sample_value("mig_labeler_device_plugin_config_valid") == 1


def test_oneshot_uses_the_nodes_config(capsys, kube_api, kubeconfig, configs):
    from .test_cli import run_main

    kube_api.edit_labels(NODE, {LABEL: "a100"}, manager="kubectl")
    code, _, err = run_main(capsys, "run", "--oneshot", "--node-name", NODE, "--kubeconfig", kubeconfig, "--fixture",
                            "a30-mig-off", "--config-file-srcdir", str(configs), "--default-config", "any")
    assert code == 0, err
    assert kube_api.labels(NODE)["nvidia.com/gpu.replicas"] == "2"


def test_config_file_and_a_config_directory_are_one_or_the_other(capsys, configs):
    from .test_cli import run_main

    code, _, err = run_main(capsys, "run", "--oneshot", "--config-file", str(configs / "any"),
                            "--config-file-srcdir", str(configs), "--output-file", "-", "--fixture", "a30-mig-off")
    assert code == 2 and "--config-file and --config-file-srcdir name two sources" in err


def test_diff_plans_against_the_nodes_config(capsys, kube_api, kubeconfig, configs):
    from .test_cli import run_main

    args = ["--node-name", NODE, "--kubeconfig", kubeconfig, "--fixture", "a30-mig-off", "--config-file-srcdir",
            str(configs), "--default-config", "any"]
    assert run_main(capsys, "run", "--oneshot", *args)[0] == 0
    kube_api.edit_labels(NODE, {LABEL: "a100"}, manager="kubectl")
    code, out, _ = run_main(capsys, "diff", *args)
    assert code == 0 and "~ nvidia.com/gpu.replicas: '4' -> '2'" in out.splitlines()


def test_the_kustomize_overlay_renders_per_node_configs_that_the_cli_runs(tmp_path):
    from .test_chart import ROOT, render

    objects = render(ROOT / "manifests" / "overlays" / "per-node-configs")
    ds = next(o for o in objects if o["kind"] == "DaemonSet")
    args = ds["spec"]["template"]["spec"]["containers"][0]["args"]
    config_map = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "mig-labeler-config")
    for key, text in config_map["data"].items():
        (tmp_path / key).write_text(text)
    options = given(*[a.replace("/etc/mig-labeler", str(tmp_path)) for a in args[1:]])
    configs = options.read().node_configs
    assert configs is not None
    for label, replicas in (("time-sliced", [("nvidia.com/gpu", 4)]), ("", [])):
        name = choose_config(label, {p.name for p in tmp_path.iterdir()}, configs.default, configs.fallbacks)
        shared = options.read_with(str(tmp_path / name)).sharing.resources
        assert [(r.name, r.replicas) for r in shared] == replicas


def test_an_edit_of_the_mounted_configs_reaches_the_labels_without_a_restart(kube_api, kubeconfig, configs):
    """The kubelet swaps the ConfigMap mount's ..data link: the node's config is read again."""
    with running(kubeconfig, configs):
        assert kube_api.labels(NODE)["nvidia.com/gpu.replicas"] == "4"
        new = configs / "..2026_12_03_02"
        new.mkdir()
        for name, replicas in (("any", 8), ("a100", 2)):
            (new / name).write_text(TIME_SLICED.format(replicas))
        (configs / "..data_tmp").symlink_to(new.name)
        (configs / "..data_tmp").replace(configs / "..data")
        wait_until(lambda: kube_api.labels(NODE).get("nvidia.com/gpu.replicas") == "8")
