"""Node selection as the scheduler evaluates it (``nodeSelector``, required node affinity: terms
ORed, expressions ANDed), and the problems of each label requirement with one fix. Pure."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from mig_labeler.check.index import NodeIndex
from mig_labeler.check.model import ERROR, WARNING, Problem
from mig_labeler.gpu_models import gpu_models
from mig_labeler.label_names import PREFIX, key_error, product_value, sanitise, trim_edges, value_error

# nvidia.com/ keys other tools own (mig-manager, the GPU Operator, the device plugin): syntax only.
OTHER_TOOLS = ("nvidia.com/mig.config", "nvidia.com/gpu.deploy.", "nvidia.com/device-plugin.config",
               "nvidia.com/gpu.workload.config")


def required_terms(spec: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    required = _dig(spec, ("affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution"))
    if not isinstance(required, Mapping):
        return None
    terms = required.get("nodeSelectorTerms")
    return [t for t in terms if isinstance(t, Mapping)] if isinstance(terms, list) else []


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    return all(labels.get(str(k)) == _text(v) for k, v in selector.items())


def terms_match(terms: list[Mapping[str, Any]] | None, labels: Mapping[str, str]) -> bool:
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


def selector_problems(selector: Any, at: str, nodes: NodeIndex) -> list[Problem]:
    if not isinstance(selector, Mapping):
        return [Problem("invalid-node-selector", ERROR, at, "nodeSelector must be a map of label keys to values")]
    problems = []
    for key, raw in selector.items():
        where = f"{at}['{key}']"
        problems += _pair_problems(str(key), _text(raw), where, nodes, require_value=True)
    return problems


def affinity_problems(terms: list[Mapping[str, Any]] | None, at: str, nodes: NodeIndex) -> list[Problem]:
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


def _dig(obj: Any, path: Sequence[str]) -> Any:
    for part in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(part)
    return obj


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)
