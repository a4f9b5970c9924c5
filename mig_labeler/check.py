"""``mig-labeler check``: can a GPU workload land on these nodes, and if not, why not. Pure.

Owns: finding pod templates in Kubernetes objects, evaluating ``nodeSelector`` and required node
affinity exactly as the scheduler does (terms ORed, expressions ANDed), GPU extended resources as
the API server validates them and the scheduler counts them, and problems with stable codes and
fixes. Reading files, fixtures and the cluster stays in the CLI; this module gets plain data.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache
from typing import Any

from mig_labeler.gpu_models import gpu_models
from mig_labeler.label_names import PREFIX, key_error, product_value, sanitise, trim_edges, value_error

ERROR, WARNING = "error", "warning"
GPU_TAINT = "nvidia.com/gpu"
# nvidia.com/ keys other tools own (mig-manager, the GPU Operator, the device plugin): syntax only.
OTHER_TOOLS = ("nvidia.com/mig.config", "nvidia.com/gpu.deploy.", "nvidia.com/device-plugin.config",
               "nvidia.com/gpu.workload.config")
POD_SPEC_PATHS = {"Pod": ("spec",), "PodTemplate": ("template", "spec"),
                  "CronJob": ("spec", "jobTemplate", "spec", "template", "spec")}


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    labels: Mapping[str, str]
    resources: Mapping[str, int]  # GPU extended resources advertised (allocatable)


@dataclass(frozen=True, slots=True)
class Problem:
    code: str
    severity: str
    path: str
    message: str
    suggestion: str = ""

    def as_json(self) -> dict[str, str]:
        return {"code": self.code, "severity": self.severity, "path": self.path, "message": self.message,
                "suggestion": self.suggestion}


@dataclass(frozen=True, slots=True)
class Workload:
    kind: str
    name: str
    source: str  # file and document index, for messages
    spec_path: str  # where the pod spec is inside the object, e.g. spec.template.spec
    pod_spec: Mapping[str, Any]


@dataclass
class Result:
    workload: Workload
    nodes_matching: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return bool(self.nodes_matching) and not any(p.severity == ERROR for p in self.problems)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.workload.name, "kind": self.workload.kind, "source": self.workload.source,
                "fits": self.fits, "nodes_matching": self.nodes_matching,
                "problems": [p.as_json() for p in self.problems]}


# -- finding pod templates --------------------------------------------------------------------------
def workloads(doc: Any, source: str) -> tuple[list[Workload], list[str]]:
    """Every pod template in one parsed document (``List`` objects unpacked), and the objects that
    hold none (reported as skipped)."""
    found: list[Workload] = []
    skipped: list[str] = []
    for obj in _objects(doc):
        kind = str(obj.get("kind") or "?")
        name = str((obj.get("metadata") or {}).get("name") or "?")
        path = POD_SPEC_PATHS.get(kind, ("spec", "template", "spec"))
        spec = _dig(obj, path)
        if isinstance(spec, Mapping) and isinstance(spec.get("containers"), list):
            found.append(Workload(kind, name, source, ".".join(path), spec))
        else:
            skipped.append(f"{kind}/{name}")
    return found, skipped


def _objects(doc: Any) -> Iterator[Mapping[str, Any]]:
    if not isinstance(doc, Mapping):
        return
    if str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
        for item in doc["items"]:
            yield from _objects(item)
    else:
        yield doc


def _dig(obj: Any, path: Sequence[str]) -> Any:
    for part in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(part)
    return obj


# -- the check --------------------------------------------------------------------------------------
class NodeIndex:
    """The label keys and values of a node set, built once for many workloads (1,000 x 1,000 in
    under 2 s, make bench)."""

    def __init__(self, nodes: Sequence[Node]) -> None:
        self.nodes = nodes
        self.values: dict[str, set[str]] = {}
        for node in nodes:
            for key, value in node.labels.items():
                self.values.setdefault(key, set()).add(value)


def check(workload: Workload, nodes: Sequence[Node] | NodeIndex) -> Result:
    index = nodes if isinstance(nodes, NodeIndex) else NodeIndex(nodes)
    nodes = index.nodes
    result = Result(workload)
    spec, at = workload.pod_spec, workload.spec_path
    selector = spec.get("nodeSelector") or {}
    terms = _required_terms(spec)
    result.problems += _selector_problems(selector, f"{at}.nodeSelector", index)
    required = f"{at}.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
    result.problems += _affinity_problems(terms, required, index)
    demand, resource_problems = _demand(spec, at)
    result.problems += resource_problems
    placed = [n for n in nodes if _selector_matches(selector, n.labels) and _terms_match(terms, n.labels)]
    if not placed and not any(p.severity == ERROR for p in result.problems):
        result.problems.append(Problem("selector-excludes-all-nodes", ERROR, f"{at}.nodeSelector",
                                       f"each part of the node selection matches some of the {len(nodes)} nodes, "
                                       "but together they rule out every one",
                                       "drop or relax one of the requirements"))
    result.problems += _resource_problems(demand, placed, at)
    if demand and not _tolerates_gpu_taint(spec):
        result.problems.append(Problem("missing-gpu-toleration", WARNING, f"{at}.tolerations",
                                       f"no toleration for the {GPU_TAINT} taint: GPU nodes tainted with it "
                                       "(as the GPU Operator and most clouds do) will not take this pod",
                                       f"add tolerations: [{{key: {GPU_TAINT}, operator: Exists, "
                                       "effect: NoSchedule}]"))
    result.nodes_matching = [n.name for n in placed if all(n.resources.get(r, 0) >= q for r, q in demand.items())]
    return result


# -- node selection ---------------------------------------------------------------------------------
def _required_terms(spec: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    required = _dig(spec, ("affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution"))
    if not isinstance(required, Mapping):
        return None
    terms = required.get("nodeSelectorTerms")
    return [t for t in terms if isinstance(t, Mapping)] if isinstance(terms, list) else []


def _selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    return all(labels.get(str(k)) == _text(v) for k, v in selector.items())


def _terms_match(terms: list[Mapping[str, Any]] | None, labels: Mapping[str, str]) -> bool:
    """Terms are ORed, a term's expressions ANDed; a term with no expressions matches nothing."""
    if terms is None:
        return True
    return any(_term_matches(t, labels) for t in terms)


def _term_matches(term: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    expressions = term.get("matchExpressions") or []
    return bool(expressions) and all(expression_matches(e, labels) for e in expressions if isinstance(e, Mapping))


def expression_matches(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, op = str(expr.get("key", "")), expr.get("operator")
    values = [_text(v) for v in expr.get("values") or []]
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    if op in ("Gt", "Lt") and len(values) == 1:
        try:
            have, want = int(labels[key]), int(values[0])
        except (KeyError, ValueError):
            return False
        return have > want if op == "Gt" else have < want
    return False


def _selector_problems(selector: Any, at: str, nodes: NodeIndex) -> list[Problem]:
    if not isinstance(selector, Mapping):
        return [Problem("invalid-node-selector", ERROR, at, "nodeSelector must be a map of label keys to values")]
    problems = []
    for key, raw in selector.items():
        where = f"{at}['{key}']"
        problems += _pair_problems(str(key), _text(raw), where, nodes, require_value=True)
    return problems


def _affinity_problems(terms: list[Mapping[str, Any]] | None, at: str, nodes: NodeIndex) -> list[Problem]:
    """Terms are alternatives: a key or value no node has is an error only when no term matches
    any node; otherwise that alternative is merely dead (a warning)."""
    problems = _expression_problems(terms, at, nodes)
    if any(_term_matches(t, n.labels) for t in terms or [] for n in nodes.nodes):
        soft = ("no-such-label-key", "no-such-label-value")
        problems = [Problem(p.code, WARNING, p.path, f"{p.message}; this alternative matches nothing", p.suggestion)
                    if p.code in soft else p for p in problems]
    return problems


def _expression_problems(terms: list[Mapping[str, Any]] | None, at: str, nodes: NodeIndex) -> list[Problem]:
    problems: list[Problem] = []
    for i, term in enumerate(terms or []):
        for j, expr in enumerate(term.get("matchExpressions") or []):
            where = f"{at}.nodeSelectorTerms[{i}].matchExpressions[{j}]"
            key, op = str(expr.get("key", "")), expr.get("operator")
            values = [_text(v) for v in expr.get("values") or []]
            if op in ("Gt", "Lt"):
                if len(values) != 1 or not re.fullmatch(r"-?[0-9]+", values[0] if values else ""):
                    problems.append(Problem("invalid-label-value", ERROR, f"{where}.values",
                                            f"{op} needs exactly one integer value, not {values}"))
                problems += _pair_problems(key, None, where, nodes, require_value=False)
            elif op in ("In", "NotIn"):
                for value in values:
                    problems += _pair_problems(key, value, f"{where}.values", nodes, require_value=op == "In")
            else:
                problems += _pair_problems(key, None, where, nodes, require_value=False)
    return problems


def _pair_problems(key: str, value: str | None, where: str, nodes: NodeIndex,
                   require_value: bool) -> list[Problem]:
    """One label requirement: valid syntax always; for our keys, a key and value some node has."""
    reason = key_error(key)
    if reason:
        return [Problem("invalid-label-key", ERROR, where, f"{key!r} is not a valid label key: {reason}")]
    problems = []
    if value is not None and value_error(value):
        nearest = nearest_valid_value(value)
        problems.append(Problem("invalid-label-value", ERROR, where,
                                f"the API server rejects the value {value!r}: {value_error(value)}",
                                f"use {nearest!r}" if nearest else ""))
    if not key.startswith(PREFIX) or key.startswith(OTHER_TOOLS) or not nodes.nodes:
        return problems
    if key not in nodes.values:
        close = difflib.get_close_matches(key, sorted(nodes.values), n=1, cutoff=0.75)
        problems.append(Problem("no-such-label-key", ERROR, where, f"no node has the label {key}",
                                f"did you mean {close[0]}?" if close else ""))
        return problems
    if value is not None and require_value:
        if value not in nodes.values[key]:
            values = sorted(nodes.values[key])
            known = key.endswith(".product") and value in known_products()
            guess = None if known else did_you_mean(value, key, values)
            why = " (a real product name, but no selected node has that GPU)" if known else ""
            problems.append(Problem("no-such-label-value", ERROR, where,
                                    f"no node has {key}={value}{why} (they have: {', '.join(values[:6])}"
                                    f"{', ...' if len(values) > 6 else ''})",
                                    f"did you mean {guess}?" if guess else ""))
    return problems


def nearest_valid_value(value: str) -> str:
    """GFD's sanitising (spaces become '-', other characters dropped), edges trimmed, at most 63."""
    return trim_edges(sanitise(value)[:63])


def did_you_mean(value: str, key: str, node_values: Sequence[str]) -> str | None:
    """Fuzzy match over the values on the nodes and, for product keys, every model's product name
    (``A100-SXM-80GB`` → ``NVIDIA-A100-SXM4-80GB``)."""
    candidates = list(node_values)
    if key.endswith(".product"):
        candidates += list(known_products())
    candidates = [c for c in candidates if c != value]
    wanted = nearest_valid_value(value) or value
    matches = difflib.get_close_matches(wanted, candidates, n=1, cutoff=0.6)
    if not matches:  # a missing vendor prefix is the usual slip: compare without it
        bare = {c.removeprefix("NVIDIA-"): c for c in candidates}
        matches = [bare[m] for m in difflib.get_close_matches(wanted.removeprefix("NVIDIA-"), list(bare), n=1,
                                                               cutoff=0.6)]
    return matches[0] if matches else None


@cache
def known_products() -> tuple[str, ...]:
    """The product label values of every model in the table: full GPUs and every MIG profile."""
    out = []
    for model in gpu_models().values():
        base = product_value(model.nvml_name)
        out.append(base)
        out += [f"{base}-MIG-{p.name.replace('+', '.')}" for p in model.profiles]
    return tuple(sorted(set(out)))


# -- GPU resources ----------------------------------------------------------------------------------
def is_gpu_resource(name: str) -> bool:
    return name.startswith((PREFIX + "gpu", PREFIX + "mig-"))


def _demand(spec: Mapping[str, Any], at: str) -> tuple[dict[str, int], list[Problem]]:
    """Per GPU resource what the pod needs, as the scheduler counts it: the sum over app
    containers (and native sidecars), or the largest ordinary init container, whichever is more."""
    problems: list[Problem] = []
    app: dict[str, int] = {}
    init_peak: dict[str, int] = {}
    for group in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(group) or []):
            if not isinstance(container, Mapping):
                continue
            amounts, found = _container_gpus(container, f"{at}.{group}[{i}].resources")
            problems += found
            sidecar = group == "initContainers" and container.get("restartPolicy") == "Always"
            target = app if group == "containers" or sidecar else None
            for name, amount in amounts.items():
                if target is not None:
                    target[name] = target.get(name, 0) + amount
                else:
                    init_peak[name] = max(init_peak.get(name, 0), amount)
    demand = {n: max(app.get(n, 0), init_peak.get(n, 0)) for n in set(app) | set(init_peak)}
    return {n: q for n, q in demand.items() if q > 0}, problems


def _container_gpus(container: Mapping[str, Any], at: str) -> tuple[dict[str, int], list[Problem]]:
    resources = container.get("resources") or {}
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    problems: list[Problem] = []
    amounts: dict[str, int] = {}
    for name in sorted({str(k) for k in (*limits, *requests)}):
        if not is_gpu_resource(name):
            continue
        limit, request = _quantity(limits.get(name)), _quantity(requests.get(name))
        shown = limits.get(name) if name in limits else requests.get(name)
        where = f"{at}.{'limits' if name in limits else 'requests'}['{name}']"
        amount = limit if name in limits else request
        if amount is None or amount.denominator != 1 or amount < 0:
            whole = "1" if amount is None or amount <= 1 else str(int(amount) + 1)
            problems.append(Problem("fractional-gpu", ERROR, where,
                                    f"{name}: {shown} is not a whole number; the API server rejects it (GPUs are "
                                    "not divisible: share one with time-slicing or MPS replicas instead)",
                                    f"request {whole}, or configure sharing.timeSlicing replicas"))
            continue
        if name in requests and name not in limits:
            problems.append(Problem("requests-not-equal-limits", ERROR, where,
                                    f"{name} has a request but no limit; extended resources need a limit",
                                    f"set limits['{name}']: {requests[name]}"))
        elif name in requests and request != limit:
            problems.append(Problem("requests-not-equal-limits", ERROR, where,
                                    f"{name}: request {requests[name]} differs from limit {limits[name]}; extended "
                                    "resources cannot be overcommitted", "give only limits, or equal values"))
        amounts[name] = int(amount)
    return amounts, problems


_QUANTITY = re.compile(r"^([+-]?[0-9.]+)(m|k|M|G|Ki|Mi|Gi)?$")
_SUFFIX: dict[str | None, Fraction] = {
    None: Fraction(1), "m": Fraction(1, 1000), "k": Fraction(1000), "M": Fraction(10**6), "G": Fraction(10**9),
    "Ki": Fraction(1024), "Mi": Fraction(1024**2), "Gi": Fraction(1024**3)}


def _quantity(raw: Any) -> Fraction | None:
    if raw is None or isinstance(raw, bool):
        return None
    match = _QUANTITY.match(str(raw).strip())
    if not match:
        return None
    try:
        return Fraction(match.group(1)) * _SUFFIX[match.group(2)]
    except (ValueError, ZeroDivisionError):
        return None


def _resource_problems(demand: Mapping[str, int], placed: Sequence[Node], at: str) -> list[Problem]:
    problems = []
    for name, wanted in sorted(demand.items()):
        where = f"{at}.containers[*].resources.limits['{name}']"
        having = [n for n in placed if n.resources.get(name, 0) > 0]
        if not placed:
            continue
        if not having:
            unknown = _unknown_mig_profile(name, placed)
            if unknown:
                problems.append(Problem("mig-profile-unknown-for-model", ERROR, where, unknown,
                                        _profile_suggestion(placed)))
            else:
                problems.append(Problem("resource-not-advertised", ERROR, where,
                                        f"none of the {len(placed)} selected nodes advertises {name}",
                                        _resource_suggestion(name, placed)))
        elif all(n.resources[name] < wanted for n in having):
            most = max(n.resources[name] for n in having)
            problems.append(Problem("insufficient-resource", ERROR, where,
                                    f"the pod needs {wanted} {name}; the selected nodes have at most {most}",
                                    f"request at most {most}, or add nodes with more"))
    return problems


def _node_models(node: Node) -> list[str]:
    product = node.labels.get(PREFIX + "gpu.product", "")
    base = re.sub(r"-(MIG-.*|SHARED)$", "", product)
    return [m.key for m in gpu_models().values() if product_value(m.nvml_name) == base]


def _unknown_mig_profile(name: str, placed: Sequence[Node]) -> str:
    match = re.fullmatch(r"nvidia[.]com/mig-(.+?)(?:[.]shared)?", name)
    if not match:
        return ""
    profile = match.group(1)
    models = {k for n in placed for k in _node_models(n)}
    known = {p.name.replace("+", ".") for k in models for p in gpu_models()[k].profiles}
    if not models or profile in known:
        return ""
    return (f"no GPU on the selected nodes ({', '.join(sorted(models))}) has a MIG profile {profile}; "
            f"they have {', '.join(sorted(known))}")


def _profile_suggestion(placed: Sequence[Node]) -> str:
    offered = sorted({r for n in placed for r in n.resources if r.startswith(PREFIX + "mig-")})
    return f"request one of {', '.join(offered)}" if offered else ""


def _resource_suggestion(name: str, placed: Sequence[Node]) -> str:
    strategies = {n.labels.get(PREFIX + "mig.strategy", "none") for n in placed}
    if name.startswith(PREFIX + "mig-") and strategies <= {"single"}:
        profile = name.removeprefix(PREFIX + "mig-").removesuffix(".shared")
        return (f"these nodes use the single MIG strategy: request nvidia.com/gpu and select "
                f"nvidia.com/gpu.product ending in -MIG-{profile}")
    offered = sorted({r for n in placed for r in n.resources})
    if name == PREFIX + "gpu" and offered:
        return f"these nodes advertise {', '.join(offered)} (mixed strategy, every GPU in MIG mode): request one"
    if offered:
        return f"these nodes advertise {', '.join(offered)}"
    return "no selected node advertises any GPU resource: is the NVIDIA device plugin running there?"


def _tolerates_gpu_taint(spec: Mapping[str, Any]) -> bool:
    for toleration in spec.get("tolerations") or []:
        if not isinstance(toleration, Mapping):
            continue
        key, op = toleration.get("key"), toleration.get("operator", "Equal")
        if (key in (None, "") and op == "Exists") or key == GPU_TAINT:
            effect = toleration.get("effect")
            if effect in (None, "", "NoSchedule"):
                return True
    return False


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)
