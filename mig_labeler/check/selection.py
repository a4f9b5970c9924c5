"""Node selection as the scheduler evaluates it (``nodeSelector``, required node affinity: terms
ORed, expressions ANDed), and the problems of each label requirement with one fix. Pure."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from mig_labeler.check.index import NodeIndex
from mig_labeler.check.model import ERROR, WARNING, Problem
from mig_labeler.check.workloads import dig
from mig_labeler.gpu_models import gpu_models
from mig_labeler.label_names import PREFIX, key_error, product_value, sanitise, trim_edges, value_error

# nvidia.com/ keys other tools own (mig-manager, the GPU Operator, the device plugin): syntax only.
OTHER_TOOLS = ("nvidia.com/mig.config", "nvidia.com/gpu.deploy.", "nvidia.com/device-plugin.config",
               "nvidia.com/gpu.workload.config")


def selected_keys(specs: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every label key the pod specs' nodeSelector and required node affinity name."""
    keys: set[str] = set()
    for spec in specs:
        selector = spec.get("nodeSelector")
        if isinstance(selector, Mapping):
            keys.update(str(k) for k in selector)
        for term in required_terms(spec) or []:
            keys.update(str(e.get("key", "")) for e in term.get("matchExpressions") or [] if isinstance(e, Mapping))
    return keys


def required_terms(spec: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    required = dig(spec, ("affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution"))
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
    if any(_term_matches(t, g.node.labels) for t in terms or [] for g in nodes.groups):
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
    """One label requirement: valid syntax always; for our keys, a key and value some node has.
    One problem per requirement, with one fix, and the fix is a value a node has: applying it
    makes the next run pass this requirement."""
    reason = key_error(key)
    if reason:
        return [Problem("invalid-label-key", ERROR, where, f"{key!r} is not a valid label key: {reason}")]
    ours = key.startswith(PREFIX) and not key.startswith(OTHER_TOOLS) and bool(nodes.nodes)
    have = sorted(nodes.values.get(key, ())) if ours else []
    if value is not None and value_error(value):
        nearest = nearest_valid_value(value)
        fix = _best_value(nearest, key, have) if have else nearest
        return [Problem("invalid-label-value", ERROR, where,
                        f"the API server rejects the value {value!r}: {value_error(value)}",
                        f"use {fix!r}" if fix else "")]
    if not ours:
        return []
    if key not in nodes.values:
        close = difflib.get_close_matches(key, sorted(nodes.values), n=1, cutoff=0.75)
        return [Problem("no-such-label-key", ERROR, where, f"no node has the label {key}",
                        f"did you mean {close[0]}?" if close else "no node has a similar label")]
    if value is None or not require_value or value in nodes.values[key]:
        return []
    single = [v for v in have if v.startswith(f"{value}-MIG-")]
    if key.endswith("gpu.product") and single:
        return [Problem("no-such-label-value", ERROR, where,
                        f"no node has {key}={value}: the nodes with that GPU use the single MIG strategy, where "
                        f"gpu.product names the MIG profile ({', '.join(single[:4])})",
                        f"select {single[0]} and request nvidia.com/gpu, or label those nodes with the mixed "
                        "strategy")]
    known = key.endswith(".product") and value in known_products()
    why = " (a real product name, but no node here has that GPU)" if known else ""
    guess = did_you_mean(value, key, have)
    if _sharing_requirement(key, value):
        return [Problem("no-such-label-value", ERROR, where, f"no node has {key}={value} (they have: "
                        f"{', '.join(have[:6])})", "nodes get sharing labels only from a sharing config: for "
                        "--fixture nodes pass it with --config-file (the device plugin's config.yaml)")]
    more = ", ..." if len(have) > 6 else ""
    return [Problem("no-such-label-value", ERROR, where,
                    f"no node has {key}={value}{why} (they have: {', '.join(have[:6])}{more})",
                    f"did you mean {guess}?" if guess else "no node has a similar value: see the values above")]


def _sharing_requirement(key: str, value: str) -> bool:
    return key.endswith((".sharing-strategy", ".replicas")) and value not in ("none", "1") or value.endswith("-SHARED")


def _best_value(nearest: str, key: str, have: Sequence[str]) -> str:
    """For an invalid value: the sanitised spelling when a node has it, else the closest value a
    node has, else the sanitised spelling."""
    if nearest in have:
        return nearest
    return did_you_mean(nearest, key, have) or nearest


def nearest_valid_value(value: str) -> str:
    """GFD's sanitising (spaces become '-', other characters dropped), edges trimmed, at most 63."""
    return trim_edges(sanitise(value)[:63])


def did_you_mean(value: str, key: str, node_values: Sequence[str]) -> str | None:
    """The closest value a node has (never a value no node has): a fuzzy match, then the same
    without the ``NVIDIA-`` prefix (the usual slip: ``A100-SXM4-40GB-MIG-3g.20gb``). Cached:
    thousands of workloads share a few wrong values."""
    return _did_you_mean(value, tuple(node_values))


@cache
def _did_you_mean(value: str, node_values: tuple[str, ...]) -> str | None:
    candidates = [c for c in node_values if c != value]
    wanted = nearest_valid_value(value) or value
    matches = difflib.get_close_matches(wanted, candidates, n=1, cutoff=0.6)
    if not matches:
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


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def exclusion_reason(selector: Any, terms: list[Mapping[str, Any]] | None, labels: Mapping[str, str]) -> str:
    """Why a node is left out: the first requirement it fails, in the pod's own words."""
    if isinstance(selector, Mapping):
        for key, raw in selector.items():
            want, have = _text(raw), labels.get(str(key))
            if have != want:
                shown = f"{have!r}" if have is not None else "no such label"
                return f"nodeSelector {key}={want}: it has {shown}"
    for i, term in enumerate(terms or []):
        for expr in term.get("matchExpressions") or []:
            if isinstance(expr, Mapping) and not expression_matches(expr, labels):
                key = str(expr.get("key", ""))
                have = labels.get(key)
                values = [_text(v) for v in expr.get("values") or []]
                shown = f"{have!r}" if have is not None else "no such label"
                return (f"node affinity term {i}: {key} {expr.get('operator')} {values}: it has {shown}"
                        if len(terms or []) > 1 else f"node affinity: {key} {expr.get('operator')} {values}: "
                        f"it has {shown}")
    return "no node affinity term matches it"
