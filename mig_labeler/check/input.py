"""The edges of ``mig-labeler check``: reading workload files, building nodes from fixtures, saved
labels or the live cluster. The only module of the package that reads anything.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mig_labeler import text_document
from mig_labeler.check.autoscalers import AutoscalerResult, check_autoscaler, is_autoscaler
from mig_labeler.check.index import NodeIndex
from mig_labeler.check.model import Node, Result, Workload
from mig_labeler.check.resources import is_gpu_resource
from mig_labeler.check.rules import check
from mig_labeler.check.selection import selected_keys
from mig_labeler.check.workloads import objects, workloads
from mig_labeler.config import Config, MigStrategy, Sharing, parse_mig_strategy
from mig_labeler.errors import ConfigError, NodeNotFound
from mig_labeler.gpu_operator import runs_dra_driver
from mig_labeler.labels.advertised import advertised_resources
from mig_labeler.text_document import decode_text
from mig_labeler.text_files import load_config_file

STRATEGY_SUFFIXES = {s.value for s in MigStrategy} | {"dra"}  # dra: a DRA node (docs/dra.md)


def read_workloads(files: Sequence[str]) -> tuple[list[Workload], list[str], list[AutoscalerResult]]:
    """Pod templates, the objects that hold none, and the checks of autoscalers on GPU metrics.
    Input with none of these is an error: a wrong path or an empty file must not pass."""
    found: list[Workload] = []
    skipped: list[str] = []
    autoscalers: list[AutoscalerResult] = []
    names = _expand(files)
    for name in names:
        for index, doc in enumerate(_documents(name), start=1):
            if doc is None:
                continue
            if not isinstance(doc, dict) or "kind" not in doc:
                raise ConfigError(f"{name}: document {index} is not a Kubernetes object (no kind)")
            more, passed = workloads(doc, f"{name}#{index}")
            found += more
            for obj in objects(doc):
                checked = check_autoscaler(obj, f"{name}#{index}") if is_autoscaler(obj) else None
                if checked is not None:
                    autoscalers.append(checked)
            skipped += [f"{name}#{index}: {s}" for s in passed
                        if not any(s == f"{a.kind}/{a.name}" for a in autoscalers)]
    if not found and not autoscalers:
        where = ", ".join(names) or ", ".join(files)
        raise ConfigError(f"no workloads found in {where}: no Pod, Deployment, Job or other pod template"
                          + (f" (only {', '.join(skipped[:3])})" if skipped else ""))
    return found, skipped, autoscalers


def _expand(files: Sequence[str]) -> list[str]:
    """A directory stands for its .yaml, .yml and .json files, sorted (as kubectl -f does)."""
    out: list[str] = []
    for name in files:
        path = Path(name)
        if name != "-" and path.is_dir():
            out += sorted(str(p) for p in path.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
        else:
            out.append(name)
    return out


def _documents(name: str) -> list[Any]:
    try:
        data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read {name}: {e.strerror or e}") from e
    text = decode_text(data, name)
    docs: list[Any] = []
    index = 0
    try:
        if text.lstrip().startswith(("{", "[")):
            return [json.loads(text)]
        for index, doc in enumerate(text_document.load_all(text), start=1):  # noqa: B007 - index for the message
            docs.append(doc)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{name}: not valid JSON: {e.msg} (line {e.lineno})") from None
    except (yaml.YAMLError, RecursionError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"{name}: document {index + 1} is not valid YAML: {first}") from None
    return docs


@dataclass(frozen=True)
class NodeSources:
    """Where ``check`` takes its nodes from: one of fixtures and predictions, saved labels, or the
    live cluster (as the command line gave them)."""

    fixtures: Sequence[str] = ()
    gpus: Sequence[str] = ()
    mig_config: str | None = None
    mig_parted_file: str | None = None
    label_files: Sequence[str] = ()
    node_names: Sequence[str] = ()
    all_nodes: bool = False
    selector: str | None = None
    mig_strategy: str | None = None
    config_file: str | None = None
    kubeconfig: str | None = None
    timeout: float = 30.0
    context: str | None = None

    def __post_init__(self) -> None:
        """Exactly one source; a mix is a ``ConfigError`` before anything is read."""
        if sum(bool(x) for x in (self.fixtures or self.gpus, self.label_files, self.node_names or self.all_nodes)) != 1:
            raise ConfigError("give the nodes one way: --fixture and --gpu, --labels, or --node/--nodes")
        if self.selector and not self.all_nodes:
            raise ConfigError("-l/--selector goes with --nodes")
        if self.mig_config and not self.gpus:
            raise ConfigError("--mig-config goes with --gpu MODEL[:COUNT]")


def nodes_from(given: NodeSources) -> list[Node]:
    if given.label_files:
        return label_nodes(given.label_files)
    if given.node_names or given.all_nodes:
        return cluster_nodes(given.kubeconfig, list(given.node_names), given.selector, given.timeout,
                             given.context)
    strategy = parse_mig_strategy(given.mig_strategy or "none")
    sharing = load_config_file(given.config_file).sharing
    return (fixture_nodes(given.fixtures, strategy, sharing)
            + predicted_nodes(given.gpus, given.mig_config, given.mig_parted_file, strategy, sharing))


def fixture_nodes(specs: Sequence[str], strategy: MigStrategy, sharing: Sharing) -> list[Node]:
    from mig_labeler.sources import open_source  # noqa: PLC0415 - fake NVML only for fixtures

    nodes: list[Node] = []
    taken: set[str] = set()
    for spec in specs:
        path, _, suffix = spec.rpartition(":")
        if path and suffix not in STRATEGY_SUFFIXES and not Path(spec).exists():
            raise ConfigError(f"--fixture {spec}: unknown MIG strategy {suffix!r} after ':' (use none, single, "
                              "mixed, or dra for a DRA node)")
        if not path or suffix not in STRATEGY_SUFFIXES:
            path, suffix = spec, ""
        dra = suffix == "dra"
        node_strategy = MigStrategy.NONE if dra else parse_mig_strategy(suffix) if suffix else strategy
        name = Path(path).name.removesuffix(".yaml").removesuffix(".json")
        if suffix:
            name = f"{name}:{suffix}"
        config = Config(mig_strategy=node_strategy, sharing=sharing, no_timestamp=True,
                        resource_api="dra" if dra else "device-plugin")
        nodes.append(_simulated_node(_unique(name, taken), open_source(path, None), config))
    return nodes


def predicted_nodes(gpus: Sequence[str], mig_config: str | None, mig_parted_file: str | None,
                    strategy: MigStrategy, sharing: Sharing) -> list[Node]:
    """``--gpu MODEL[:COUNT]`` nodes that do not exist yet, partitioned by ``--mig-config`` from
    ``--mig-parted-config``: the same path as ``labels --gpu`` (the layout placed on the model's
    GPUs, read through the fake NVML)."""
    from mig_labeler.sources import open_predicted_source  # noqa: PLC0415 - fake NVML only for predictions
    from mig_labeler.text_files import load_mig_parted  # noqa: PLC0415

    mig_parted = load_mig_parted(mig_parted_file) if mig_parted_file else None
    nodes: list[Node] = []
    taken: set[str] = set()
    config = Config(mig_strategy=strategy, sharing=sharing, no_timestamp=True, mig_parted=mig_parted)
    for gpu in gpus:
        name = gpu + (f"+{mig_config}" if mig_config else "")
        nodes.append(_simulated_node(_unique(name, taken), open_predicted_source(gpu, mig_config, mig_parted), config))
    return nodes


def _simulated_node(name: str, source: Any, config: Config) -> Node:
    """The labels the daemon would publish for this source (validated, as labels_for_topology
    gives them) and the resources its device plugin would advertise."""
    from mig_labeler.labels.desired import labels_for_topology  # noqa: PLC0415

    topology = source.read()
    dra = config.resource_api == "dra"  # no device plugin: nothing advertised
    return Node(name, labels_for_topology(topology, config, 0).labels,
                {} if dra else advertised_resources(topology, config), dra)


def label_nodes(files: Sequence[str]) -> list[Node]:
    from mig_labeler.labels.advertised import resources_from_labels  # noqa: PLC0415

    nodes: list[Node] = []
    taken: set[str] = set()
    for name in files:
        docs = _documents(name)
        doc = docs[0] if len(docs) == 1 else None
        if not isinstance(doc, dict) or not doc:
            raise ConfigError(f"{name}: expected one node's labels (labels -o json) or a map of node names to them")
        fleet = doc if all(isinstance(v, dict) for v in doc.values()) else {Path(name).stem: doc}
        for node, labels in fleet.items():
            if not all(isinstance(v, str) for v in labels.values()):
                raise ConfigError(f"{name}: the labels of {node} must all be strings")
            dra = runs_dra_driver(labels)
            nodes.append(Node(_unique(str(node), taken), dict(labels), {} if dra else resources_from_labels(labels),
                              dra))
    return nodes


def cluster_nodes(kubeconfig: str | None, names: list[str], selector: str | None, timeout: float,
                  context: str | None = None) -> list[Node]:
    """Within ``timeout`` seconds, retries included (each logged)."""
    from mig_labeler.kube.connection import connect  # noqa: PLC0415 - only for the live cluster
    from mig_labeler.kube.retry import api_retry_policy  # noqa: PLC0415

    client = connect(kubeconfig, within=timeout, context=context)
    try:
        found = api_retry_policy(deadline=timeout)(client.node_objects, names, selector)
    except NodeNotFound as e:
        raise NodeNotFound(str(e).replace("check --node-name / NODE_NAME", "check --node")) from None
    finally:
        client.close()
    nodes = []
    for obj in found:
        meta = obj.get("metadata") or {}
        allocatable = (obj.get("status") or {}).get("allocatable") or {}
        resources = {k: _count(v) for k, v in allocatable.items() if is_gpu_resource(k)}
        labels = dict(meta.get("labels") or {})
        nodes.append(Node(str(meta.get("name")), labels, resources, runs_dra_driver(labels)))
    if not nodes:
        raise ConfigError("no nodes matched" + (f" the selector {selector!r}" if selector else ""))
    return nodes


def _count(value: Any) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name-2``, ``name-3``... when taken; the result joins ``taken``."""
    candidate, i = name, 2
    while candidate in taken:
        candidate, i = f"{name}-{i}", i + 1
    taken.add(candidate)
    return candidate


def run_checks(found: Sequence[Workload], nodes: Sequence[Node]) -> list[Result]:
    """Against nodes grouped by the labels the workloads select on: a pool of identical GPU nodes
    is checked once per workload, not once per node."""
    index = NodeIndex(nodes, selected_keys(w.pod_spec for w in found))
    answers: dict[str, Result] = {}  # one check per distinct pod template: replicas of one spec agree
    results = []
    for workload in found:
        key = _what_check_reads(workload)
        if key not in answers:
            answers[key] = check(workload, index)
        same = answers[key]
        results.append(Result(workload, same.matching, same.problems, same.excluded))
    return results


def _what_check_reads(workload: Workload) -> str:
    """The parts of a pod template the check reads (selection, tolerations, GPU resources): pods
    that differ only in images, commands or names get the same answer."""
    spec = workload.pod_spec

    def containers(group: str) -> list[Any]:
        items = spec.get(group) or []
        return [[c.get("resources"), c.get("restartPolicy")] if isinstance(c, dict) else c for c in items]

    parts = [workload.spec_path, spec.get("nodeSelector"), spec.get("affinity"), spec.get("tolerations"),
             containers("containers"), containers("initContainers")]
    return json.dumps(parts, sort_keys=True, default=str)
