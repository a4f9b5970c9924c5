"""GPU extended resources: what a pod asks for (as the API server validates and the scheduler
counts it) and whether the selected nodes advertise it. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

from mig_labeler.check.model import ERROR, Node, Problem
from mig_labeler.gpu_models import gpu_models
from mig_labeler.label_names import PREFIX, product_value

GPU_TAINT = "nvidia.com/gpu"


def is_gpu_resource(name: str) -> bool:
    return name.startswith((PREFIX + "gpu", PREFIX + "mig-"))


def gpu_demand(spec: Mapping[str, Any], at: str) -> tuple[dict[str, int], list[Problem]]:
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


def gpu_resource_problems(demand: Mapping[str, int], placed: Sequence[Node], at: str, count: int,
                          selected: bool = True) -> list[Problem]:
    """``placed``: one node per group of identical nodes, ``count`` nodes in all; ``selected``:
    they are what the selection places the pod on (False: the selection places it nowhere, and
    these are every node, so the request is still checked in the same run)."""
    problems = []
    which = f"{count} selected nodes" if selected else f"{count} nodes"
    for name, wanted in sorted(demand.items()):
        where = f"{at}.containers[*].resources.limits['{name}']"
        having = [n for n in placed if n.resources.get(name, 0) > 0]
        if not placed:
            continue
        if not having:
            if all(n.dra for n in placed):
                problems.append(Problem("resource-on-dra-node", ERROR, where,
                                        f"the {which} allocate GPUs through DRA: no device plugin advertises {name} "
                                        "there", DRA_FIX))
            elif unknown := _unknown_mig_profile(name, placed):
                problems.append(Problem("mig-profile-unknown-for-model", ERROR, where, unknown,
                                        _profile_suggestion(placed)))
            else:
                problems.append(Problem("resource-not-advertised", ERROR, where,
                                        f"none of the {which} advertises {name}",
                                        _resource_suggestion(name, placed)))
        elif all(n.resources[name] < wanted for n in having):
            most = max(n.resources[name] for n in having)
            problems.append(Problem("insufficient-resource", ERROR, where,
                                    f"the pod needs {wanted} {name}; the selected nodes have at most {most}",
                                    f"request at most {most}, or add nodes with more"))
    return problems


DRA_FIX = ("claim the device with a ResourceClaim of the DeviceClass gpu.nvidia.com (mig.nvidia.com for a MIG "
           "device), or map the extended resource to a DeviceClass (extendedResourceName, KEP-5004) where the "
           "cluster has it")


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


def tolerates_gpu_taint(spec: Mapping[str, Any]) -> bool:
    for toleration in spec.get("tolerations") or []:
        if not isinstance(toleration, Mapping):
            continue
        key, op = toleration.get("key"), toleration.get("operator", "Equal")
        if (key in (None, "") and op == "Exists") or key == GPU_TAINT:
            effect = toleration.get("effect")
            if effect in (None, "", "NoSchedule"):
                return True
    return False
