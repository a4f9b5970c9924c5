"""The three sinks (node, nodefeature, file) through the real code paths: the CLI and the daemon's
pass, the real kubernetes client against the fake API server, real files in tmp directories, and
a fake nfd-master for what NFD does with our output. Mode switches both ways leave no orphans."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from mig_labeler.config import DEFAULT_OUTPUT_FILE, MigStrategy
from mig_labeler.labels.desired import labels_for_topology
from mig_labeler.sinks.file import FileSink, parse, render

from .conftest import FOREIGN, make_daemon, reload_with, reloadable_daemon, write_kubeconfig
from .fakes.kube_api import NFD_FEATURE_LABELS
from .fakes.nfd_master import FakeNfdMaster
from .test_cli_kube import run_main

NODE = "gpu-node-1"
NS = "mig-labeler"
NF_NAME = f"nvidia-features-for-{NODE}"


@pytest.fixture
def no_kube(monkeypatch, tmp_path):
    """No Kubernetes configuration anywhere: no KUBECONFIG, no ~/.kube, no NODE_NAME, no pod."""
    for name in ("KUBECONFIG", "NODE_NAME", "KUBERNETES_SERVICE_HOST", "MIG_LABELER_SINKS", "GFD_OUTPUT_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def ours(labels: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if k not in FOREIGN}


# -- file ---------------------------------------------------------------------------------------
def test_output_file_alone_selects_the_file_sink_and_needs_no_kubernetes(capsys, no_kube, tmp_path):
    path = tmp_path / "features.d" / "gfd"
    path.parent.mkdir()
    code, _, err = run_main(capsys, "run", "--oneshot", "--output-file", str(path), "--fixture", "dgx-a100-mixed",
                            "--mig-strategy", "mixed", "--no-timestamp")
    assert code == 0, err
    code, expected, _ = run_main(capsys, "labels", "--fixture", "dgx-a100-mixed", "--mig-strategy", "mixed",
                                 "--no-timestamp")
    assert path.read_text() == expected  # sorted key=value lines, exactly what `labels` prints
    assert path.read_text().splitlines() == sorted(path.read_text().splitlines())
    assert "nvidia.com/mig-3g.20gb.count=4" in path.read_text()
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".") and p.name != ".gfd.mig-labeler"] == []


def test_an_unwritable_directory_is_one_line_at_start_up(capsys, no_kube, tmp_path):
    code, _, err = run_main(capsys, "run", "--output-file", str(tmp_path / "missing" / "gfd"), "--fixture",
                            "dgx-a100-mixed")
    assert code == 2
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1:] == [f"mig-labeler: error: cannot write the features file "
                                             f"{tmp_path}/missing/gfd: "
                                        f"directory {tmp_path}/missing does not exist (mount NFD's features.d there, "
                                        "or choose --output-file)"]


def test_dash_writes_to_standard_output(capsys, no_kube):
    code, out, err = run_main(capsys, "run", "--oneshot", "--output-file", "-", "--fixture", "a30-mig-off",
                              "--no-timestamp")
    assert code == 0, err
    assert parse(out)["nvidia.com/gpu.product"] == "NVIDIA-A30"


def test_the_file_is_rewritten_only_when_it_changes_and_kept_on_exit(kube_api, tmp_path):
    path = tmp_path / "gfd"
    daemon = make_daemon(kube_api, "dgx-a100-mixed", node_name=None, sinks=("file",), output_file=str(path))
    assert daemon.kube is None  # no Kubernetes at all
    first = daemon.run_pass()
    inode, mtime = path.stat().st_ino, path.stat().st_mtime_ns
    second = daemon.run_pass()
    assert first.wrote and not second.wrote and second.ok
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (inode, mtime)
    thread = threading.Thread(target=daemon.run_forever)
    thread.start()
    daemon.wait_for_passes(1, timeout=30)
    daemon.stop.request()
    thread.join(30)
    assert not thread.is_alive() and path.exists()  # GFD deletes it here, and the labels vanish (#796)
    assert kube_api.log == []


def test_a_failing_file_sink_never_blocks_the_node_sink(kube_api, tmp_path):
    blocked = tmp_path / "features.d"
    blocked.mkdir()
    daemon = make_daemon(kube_api, "dgx-a100-mixed", sinks=("file", "node"), output_file=str(blocked / "gfd"))
    (blocked / "gfd").mkdir()  # the path turned into a directory after start-up: the write fails
    result = daemon.run_pass()
    assert not result.ok and "file sink: cannot read the features file" in result.error
    assert result.kind == "sink_error"
    assert [r.sink for r in result.results] == ["node"] and result.results[0].wrote
    assert ours(kube_api.labels(NODE))["nvidia.com/mig.strategy"] == "mixed"
    metrics = daemon.metrics.publish
    assert metrics.labels(sink="file", result="error")._value.get() == 1
    assert metrics.labels(sink="node", result="written")._value.get() == 1


def test_retire_removes_only_a_file_we_wrote(tmp_path):
    ours_path, gfds_path = tmp_path / "a" / "gfd", tmp_path / "b" / "gfd"
    ours_path.parent.mkdir()
    gfds_path.parent.mkdir()
    FileSink(str(ours_path)).publish({"nvidia.com/gpu.count": "8"})
    gfds_path.write_text("nvidia.com/gpu.count=8\n")  # GFD's own file: no marker
    assert FileSink(str(ours_path)).retire() is not None and not ours_path.exists()
    assert not (ours_path.parent / ".gfd.mig-labeler").exists()
    assert FileSink(str(gfds_path)).retire() is None and gfds_path.exists()
    FileSink(str(ours_path)).publish({"nvidia.com/gpu.count": "8"})
    ours_path.write_text("nvidia.com/gpu.count=4\n")  # someone rewrote it since: not ours any more
    assert FileSink(str(ours_path)).retire() is None and ours_path.exists()


def test_render_and_parse_round_trip_as_nfd_reads_it():
    labels = {"nvidia.com/b": "2", "nvidia.com/a": "x=y", "nvidia.com/c": ""}
    assert render(labels) == "nvidia.com/a=x=y\nnvidia.com/b=2\nnvidia.com/c=\n"
    assert parse(render(labels)) == labels
    assert parse("# comment\nnvidia.com/flag\n") == {"nvidia.com/flag": "true"}


# -- nodefeature --------------------------------------------------------------------------------
def test_nodefeature_sink_writes_the_object_gfd_writes_and_never_the_node(kube_api):
    kube_api.add_pod(NS, "mig-labeler-abcde")
    kube_api.forbidden |= {("patch", "nodes"), ("update", "nodes")}  # the nodefeature overlay's RBAC
    daemon = make_daemon(kube_api, "dgx-a100-mixed", sinks=("nodefeature",), namespace=NS,
                         pod_name="mig-labeler-abcde")
    first = daemon.run_pass()
    assert first.ok and first.wrote, first.error
    obj = kube_api.nodefeature(NS, NF_NAME)
    assert obj is not None
    assert obj["metadata"]["labels"] == {"nfd.node.kubernetes.io/node-name": NODE}
    assert obj["spec"]["labels"]["nvidia.com/mig.strategy"] == "mixed"
    assert [(o["kind"], o["name"], o.get("controller")) for o in obj["metadata"]["ownerReferences"]] == [
        ("DaemonSet", "mig-labeler", True), ("Pod", "mig-labeler-abcde", None)]
    assert [m["manager"] for m in obj["metadata"]["managedFields"]] == ["mig-labeler"]
    writes = len(kube_api.writes())
    assert not daemon.run_pass().wrote and len(kube_api.writes()) == writes  # zero writes when unchanged
    assert [w for w in kube_api.writes() if w.resource == "nodes"] == []
    assert ours(kube_api.labels(NODE)) == {}


def test_an_apply_that_creates_needs_create_and_says_so(kube_api):
    # a Role with nodefeatures get/patch but no create: the first apply creates, and kube-apiserver
    # authorizes that as create (403 with an empty reason, as a real v1.24 server answered)
    kube_api.forbidden |= {("create", "nodefeatures")}
    daemon = make_daemon(kube_api, "dgx-a100-mixed", sinks=("nodefeature",), namespace=NS)
    result = daemon.run_pass()
    assert not result.ok and kube_api.nodefeature(NS, NF_NAME) is None
    wanted = "forbidden: the service account needs RBAC verb 'patch nodefeatures.nfd.k8s-sigs.io (and create)'"
    assert str(result.error).endswith(wanted), result.error


def test_a_restarted_pod_repoints_the_owner_references_which_needs_delete(kube_api):
    # OwnerReferencesPermissionEnforcement (OpenShift; checked on a real v1.24 server with the plugin
    # on): creating may set owners, changing them later needs delete on the NodeFeature
    for pod in ("mig-labeler-old", "mig-labeler-new"):
        kube_api.add_pod(NS, pod)
    first = make_daemon(kube_api, "a30-mig-off", sinks=("nodefeature",), namespace=NS, pod_name="mig-labeler-old")
    assert first.run_pass().wrote
    kube_api.forbidden |= {("delete", "nodefeatures")}
    restarted = make_daemon(kube_api, "a30-mig-off", sinks=("nodefeature",), namespace=NS, pod_name="mig-labeler-new")
    result = restarted.run_pass()
    assert not result.ok and "changing ownerReferences needs RBAC verb 'delete nodefeatures.nfd.k8s-sigs.io'" \
        in str(result.error) and "run without POD_NAME" in str(result.error)
    owners = [o["name"] for o in kube_api.nodefeature(NS, NF_NAME)["metadata"]["ownerReferences"]]
    assert owners == ["mig-labeler", "mig-labeler-old"]  # rejected by admission: nothing changed
    kube_api.forbidden.discard(("delete", "nodefeatures"))  # the nodefeature overlay grants it
    assert restarted.run_pass().wrote
    owners = [o["name"] for o in kube_api.nodefeature(NS, NF_NAME)["metadata"]["ownerReferences"]]
    assert owners == ["mig-labeler", "mig-labeler-new"]


def test_nodefeature_drops_labels_that_are_no_longer_wanted(kube_api, tmp_path):
    daemon, command_line = reloadable_daemon(kube_api, "dgx-a100-mixed", sinks=("nodefeature",), namespace=NS)
    daemon.run_pass()
    reload_with(daemon, command_line, mig_strategy=MigStrategy.SINGLE)
    result = daemon.run_pass()
    labels = kube_api.nodefeature(NS, NF_NAME)["spec"]["labels"]
    assert result.wrote and labels["nvidia.com/mig.strategy"] == "single"
    assert not any(k.startswith("nvidia.com/mig-") for k in labels)


def test_without_nfds_crd_start_up_fails_with_one_line(capsys, kube_api, tmp_path):
    kube_api.nfd_installed = False
    kubeconfig = str(write_kubeconfig(tmp_path / "kubeconfig", kube_api.url))
    code, _, err = run_main(capsys, "run", "--oneshot", "--use-node-feature-api=true", "--node-name", NODE,
                            "--kubeconfig", kubeconfig, "--fixture", "a30-mig-off")
    assert code == 1
    lines = err.strip().splitlines()
    assert lines[-1].startswith("mig-labeler: error: the NodeFeature API is not installed "
                                "(CRD nodefeatures.nfd.k8s-sigs.io, nfd.k8s-sigs.io/v1alpha1): install Node Feature "
                                "Discovery first")
    assert all("Traceback" not in line for line in lines)


def test_a_crd_removed_while_running_fails_that_sink_only(kube_api):
    daemon = make_daemon(kube_api, "a30-mig-off", sinks=("nodefeature", "node"), namespace=NS)
    kube_api.nfd_installed = False
    result = daemon.run_pass()
    assert not result.ok and "nodefeature sink: the NodeFeature API is gone" in result.error
    assert ours(kube_api.labels(NODE))["nvidia.com/gpu.product"] == "NVIDIA-A30"


@pytest.mark.parametrize(("value", "sinks"), [("true", ("nodefeature",)), ("1", ("nodefeature",)),
                                              ("T", ("nodefeature",)), ("false", ("node",)), ("0", ("node",))])
def test_use_node_feature_api_takes_go_booleans(monkeypatch, value, sinks):
    import click

    from mig_labeler.cli.commands import run
    from mig_labeler.cli.config_from_options import build_config

    monkeypatch.setenv("USE_NODE_FEATURE_API", value)
    with click.Context(run) as ctx:
        run.parse_args(ctx, ["--node-name", NODE])
        assert build_config(ctx).sinks == sinks


def config_from(args: list[str], tmp_path: Path, file_text: str | None = None):
    import click

    from mig_labeler.cli.commands import run
    from mig_labeler.cli.config_from_options import build_config

    if file_text is not None:
        (tmp_path / "config.yaml").write_text(file_text)
        args = [*args, "--config-file", str(tmp_path / "config.yaml")]
    with click.Context(run) as ctx:
        run.parse_args(ctx, ["--node-name", NODE, *args])
        return build_config(ctx)


API_IN_FILE = "version: v1\nflags:\n  useNodeFeatureAPI: true\n"
GFD_EXAMPLE = "version: v1\nflags:\n  gfd:\n    outputFile: /var/lib/features.d/gfd\n"


@pytest.mark.parametrize(("args", "text", "sinks", "path"), [
    ([], API_IN_FILE, ("nodefeature",), DEFAULT_OUTPUT_FILE),  # flags.useNodeFeatureAPI as GFD reads it
    (["--use-node-feature-api", "false"], API_IN_FILE, ("node",), DEFAULT_OUTPUT_FILE),  # flag > file
    ([], GFD_EXAMPLE, ("node",), "/var/lib/features.d/gfd"),  # outputFile alone sets the path, no switch
    (["--sink", "file"], GFD_EXAMPLE, ("file",), "/var/lib/features.d/gfd"),
    (["--output-file", "/x/gfd"], GFD_EXAMPLE, ("file",), "/x/gfd"),  # flag > file, and the flag selects
    (["--sink", "file"], "version: v1\nflags:\n  gfd:\n    outputFile: ''\n", ("file",), "-"),  # GFD: stdout
])
def test_the_config_files_gfd_output_settings(tmp_path, args, text, sinks, path):
    config = config_from(args, tmp_path, text)
    assert (config.sinks, config.output_file) == (sinks, path)


@pytest.mark.parametrize(("text", "message"), [
    ("version: v1\nflags:\n  useNodeFeatureAPI: 'yes'\n", "flags.useNodeFeatureAPI must be true or false"),
    ("version: v1\nflags:\n  gfd:\n    outputFile: 7\n", "flags.gfd.outputFile must be a string"),
])
def test_bad_gfd_output_settings_in_the_config_file_are_one_line(capsys, kube_api, tmp_path, text, message):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    code, _, err = run_main(capsys, "labels", "--fixture", "a30-mig-off", "--config-file", str(path))
    assert code == 2 and message in err and "Traceback" not in err, err


def test_a_reload_never_switches_output_modes(kube_api, tmp_path, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="mig_labeler")
    daemon, command_line = reloadable_daemon(kube_api, "a30-mig-off")
    assert daemon.config.sinks == ("node",)
    command_line.config = config_from([], tmp_path, API_IN_FILE)  # the config file now selects nodefeature
    daemon.wake.request_reload()
    daemon.reload()
    assert daemon.config.sinks == ("node",) and [s.name for s in daemon.outputs.selected] == ["node"]
    said = "selects the sinks nodefeature; output modes change only on a restart, so the running sinks stay: node"
    assert any(said in r.getMessage() for r in caplog.records)
    assert daemon.run_pass().ok and kube_api.nodefeature(NS, NF_NAME) is None


def test_sinks_from_the_environment_are_comma_separated(monkeypatch):
    import click

    from mig_labeler.cli.commands import run
    from mig_labeler.cli.config_from_options import build_config
    from mig_labeler.errors import ConfigError

    monkeypatch.setenv("MIG_LABELER_SINKS", "nodefeature,file")
    with click.Context(run) as ctx:
        run.parse_args(ctx, ["--node-name", NODE])
        config = build_config(ctx)
        assert config.sinks == ("nodefeature", "file") and config.output_file == DEFAULT_OUTPUT_FILE
    monkeypatch.setenv("MIG_LABELER_SINKS", "node,nfd")
    with click.Context(run) as ctx, pytest.raises(ConfigError, match="unknown sink 'nfd'"):
        run.parse_args(ctx, [])
        build_config(ctx)


# -- switching modes leaves no orphans ---------------------------------------------------------
@pytest.mark.parametrize("nfd_sink", ["nodefeature", "file"])
def test_switch_from_node_to_an_nfd_sink_hands_every_label_over(kube_api, tmp_path, nfd_sink):
    """Node mode wrote labels with our field manager; the NFD mode has no Node patch rights. Labels
    it still wants pass to nfd-master; one it no longer wants (the MIG layout changed during the
    switch) is published once more until nfd-master owns it, then dropped, so nfd-master removes it."""
    features_d = tmp_path / "features.d"
    features_d.mkdir()
    nfd = FakeNfdMaster(kube_api, features_d)
    before = make_daemon(kube_api, "dgx-a100-mixed", strategy="mixed")
    assert before.run_pass().wrote
    old = ours(kube_api.labels(NODE))
    switched_at = len(kube_api.log)
    kube_api.forbidden |= {("patch", "nodes"), ("update", "nodes")}
    after = make_daemon(kube_api, "dgx-a100-7x1g", strategy="mixed", sinks=(nfd_sink,), namespace=NS,
                        output_file=str(features_d / "gfd"))
    assert after.run_pass().ok
    after.wake.event.clear()
    nfd.sync(NODE)  # nfd-master takes every label over, the leftovers included
    assert ours(kube_api.labels(NODE)) == old | nfd.wanted(NODE)
    leftovers = set(old) - set(_desired(after))
    assert leftovers and leftovers <= set(kube_api.nodes[NODE].annotations[NFD_FEATURE_LABELS].split(","))
    after.node.node_changed(after.kube.read_node(NODE))  # as the watch delivers nfd-master's update:
    assert after.wake.event.is_set()  # the drop happens now, not at the next interval
    assert after.run_pass().ok  # nfd-master owns them now: they are left out
    nfd.sync(NODE)
    assert ours(kube_api.labels(NODE)) == _desired(after)  # no orphan: exactly what NFD mode wants
    assert not after.run_pass().wrote  # and it stays put
    assert [r for r in kube_api.log[switched_at:] if r.resource == "nodes" and r.method != "GET"] == []


def test_switch_from_nodefeature_to_node_deletes_our_nodefeature(kube_api):
    nfd = FakeNfdMaster(kube_api)
    before = make_daemon(kube_api, "dgx-a100-mixed", sinks=("nodefeature",), namespace=NS)
    before.run_pass()
    nfd.sync(NODE)
    after = make_daemon(kube_api, "dgx-a100-mixed", namespace=NS, namespace_known=True)
    assert after.run_pass().ok
    assert kube_api.nodefeature(NS, NF_NAME) is None
    nfd.sync(NODE)  # nfd-master removes the labels it had set, ours among them ...
    after.run_pass()  # ... and the node sink writes them back (the watch wakes this pass in a cluster)
    nfd.sync(NODE)
    assert ours(kube_api.labels(NODE)) == _desired(after)
    assert NFD_FEATURE_LABELS not in kube_api.nodes[NODE].annotations
    assert kube_api.nodes[NODE].owners[("mig-labeler", "Apply")] == set(_desired(after))


def test_switch_from_file_to_node_removes_our_file(kube_api, tmp_path):
    path = tmp_path / "gfd"
    before = make_daemon(kube_api, "a30-mig-off", node_name=None, sinks=("file",), output_file=str(path))
    before.run_pass()
    after = make_daemon(kube_api, "a30-mig-off", output_file=str(path))
    assert after.run_pass().ok and not path.exists()
    assert ours(kube_api.labels(NODE))["nvidia.com/gpu.product"] == "NVIDIA-A30"


def test_a_nodefeature_someone_else_wrote_is_not_ours_to_delete(kube_api):
    import yaml

    body = {"apiVersion": "nfd.k8s-sigs.io/v1alpha1", "kind": "NodeFeature",
            "metadata": {"name": NF_NAME, "namespace": NS}, "spec": {"labels": {"nvidia.com/x": "1"}}}
    with kube_api.lock:
        kube_api.apply_object(NS, NF_NAME, yaml.safe_load(yaml.safe_dump(body)), "gpu-feature-discovery", True)
    make_daemon(kube_api, "a30-mig-off", namespace=NS, namespace_known=True).run_pass()
    assert kube_api.nodefeature(NS, NF_NAME) is not None


def _desired(daemon) -> dict[str, str]:
    """What the daemon wants now."""
    return labels_for_topology(daemon.source.read(), daemon.config, daemon.settings.started_at).labels


def test_no_temp_files_are_left_behind(tmp_path):
    sink = FileSink(str(tmp_path / "gfd"))
    for count in range(3):
        sink.publish({"nvidia.com/gpu.count": str(count)})
    assert sorted(os.listdir(tmp_path)) == [".gfd.mig-labeler", "gfd"]
    assert Path(tmp_path / "gfd").read_text() == "nvidia.com/gpu.count=2\n"


@pytest.mark.parametrize("body", ["404 page not found\n", "[]", '"text"', "null"])
def test_a_404_that_names_no_object_is_not_an_object_not_found(body):
    from kubernetes.client.exceptions import ApiException

    from mig_labeler.kube.errors import ObjectNotFound, translate_api_exception

    error = ApiException(status=404, reason="Not Found")
    error.body = body
    translated = translate_api_exception(error, "GET", "nodefeatures", NF_NAME)
    assert translated.status == 404 and not isinstance(translated, ObjectNotFound)


@pytest.mark.parametrize(("before", "after", "owned", "wakes"), [
    (set(), {"nvidia.com/gpu.count", "nvidia.com/mig-1g.5gb.count"}, {"nvidia.com/mig-1g.5gb.count"}, True),
    ({"nvidia.com/gpu.count"}, {"nvidia.com/gpu.count"}, {"nvidia.com/gpu.count"}, False),  # nothing new
    (set(), {"feature.node.kubernetes.io/cpu-model.id"}, {"nvidia.com/gpu.count"}, False),  # not ours
    ({"nvidia.com/gpu.count", "nvidia.com/x"}, {"nvidia.com/gpu.count"}, {"nvidia.com/x"}, False),  # removed
])
def test_the_watch_wakes_a_handoff_pass_only_when_nfd_master_takes_over_our_labels(before, after, owned, wakes):
    from mig_labeler.gpu_operator import handoff_trigger

    assert (handoff_trigger(frozenset(before), frozenset(after), frozenset(owned)) is not None) == wakes


def test_node_mode_looks_for_an_earlier_nodefeature_only_where_one_could_be(kube_api):
    """No NodeFeature GET in a namespace that is only the fallback (a workstation run), and none
    at all without NFD's API: discovery first, which needs no RBAC."""
    make_daemon(kube_api, "a30-mig-off").run_pass()
    assert not [r for r in kube_api.log if "nodefeatures" in r.path or r.path.startswith("/apis/nfd")]
    kube_api.nfd_installed = False
    kube_api.log.clear()
    make_daemon(kube_api, "a30-mig-off", namespace=NS, namespace_known=True).run_pass()
    assert [r.path for r in kube_api.log if "nfd" in r.path] == ["/apis/nfd.k8s-sigs.io/v1alpha1"]
