"""The node-restriction ValidatingAdmissionPolicy, evaluated with cel-python over a matrix of
admission requests (request, object, oldObject) as the API server would: matchConditions first,
then variables, then every validation; a false result or an evaluation error denies
(failurePolicy: Fail). Each case states why it is allowed or which validation denies it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mig_labeler.label_names import MIG_KEY_PATTERN, OWNABLE_KEYS, value_error

from .conftest import labels_of
from .strategies import node_fixtures

ROOT = Path(__file__).resolve().parents[1]
POLICY_FILE = ROOT / "manifests" / "components" / "node-restriction" / "policy.yaml"
SA = "system:serviceaccount:mig-labeler:mig-labeler"
NODE = "gpu-node-1"
ENV = celpy.Environment()

# which validation (by position in the policy) a denial comes from
OPERATION, OWN_NODE, LABELS_ONLY, OWN_KEYS = "operation", "own-node", "labels-only", "own-keys"
VALIDATION_NAMES = [OPERATION, OWN_NODE, LABELS_ONLY, OWN_KEYS]


def load_policy() -> dict[str, Any]:
    docs = list(yaml.safe_load_all(POLICY_FILE.read_text()))
    return next(d for d in docs if d["kind"] == "ValidatingAdmissionPolicy")


POLICY = load_policy()


def evaluate(expression: str, activation: dict[str, Any]) -> Any:
    return ENV.program(ENV.compile(expression)).evaluate(activation)


def admit(request: dict[str, Any], obj: dict[str, Any] | None, old: dict[str, Any] | None) -> list[str]:
    """The names of the validations that deny the request; [] = allowed."""
    spec = POLICY["spec"]
    activation = celpy.json_to_cel({"request": request, "object": obj, "oldObject": old})
    for condition in spec.get("matchConditions", []):
        if not bool(evaluate(condition["expression"], activation)):
            return []  # not this policy's business
    variables: dict[Any, Any] = {}
    for variable in spec.get("variables", []):
        activation["variables"] = celpy.celtypes.MapType(variables)
        try:
            variables[celpy.celtypes.StringType(variable["name"])] = evaluate(variable["expression"], activation)
        except celpy.CELEvalError as e:  # only a validation that uses it fails; keep the error
            variables[celpy.celtypes.StringType(variable["name"])] = e
    activation["variables"] = celpy.celtypes.MapType(variables)
    denied = []
    for name, validation in zip(VALIDATION_NAMES, spec["validations"], strict=True):
        try:
            ok = evaluate(validation["expression"], activation)
        except celpy.CELEvalError:
            ok = False
        if not (isinstance(ok, celpy.celtypes.BoolType) and bool(ok)):
            denied.append(name)
    return denied


def node(labels: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Node",
                           "metadata": {"name": NODE, "resourceVersion": "7",
                                        "labels": {"kubernetes.io/hostname": NODE} | (labels or {})},
                           "spec": {"podCIDR": "10.244.1.0/24"}}
    for path, value in extra.items():
        section, _, field = path.partition("__")
        obj[section][field] = value
    return obj


def request(operation: str = "UPDATE", name: str = NODE, username: str = SA, node_name: str | None = NODE,
            sub_resource: str = "") -> dict[str, Any]:
    user: dict[str, Any] = {"username": username}
    if node_name is not None:
        user["extra"] = {"authentication.kubernetes.io/node-name": [node_name]}
    return {"operation": operation, "name": name, "subResource": sub_resource, "userInfo": user}


OURS = {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB", "nvidia.com/mig-3g.20gb.count": "4",
        "nvidia.com/mig.strategy": "mixed"}
OPERATOR = {"nvidia.com/mig.config": "all-balanced", "nvidia.com/mig.config.state": "success",
            "nvidia.com/gpu.deploy.client": "true", "nvidia.com/device-plugin.config": "a100"}


def with_managed_fields(obj: dict[str, Any], managers: list[str]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    obj["metadata"]["managedFields"] = [{"manager": m, "operation": "Update", "fieldsType": "FieldsV1",
                                         "fieldsV1": {"f:metadata": {"f:labels": {}}}} for m in managers]
    return obj


BEFORE = node(OURS | OPERATOR)
CASES: list[tuple[str, dict[str, Any], dict[str, Any] | None, dict[str, Any] | None, list[str]]] = [
    # -- allowed: everything the labeler really does
    ("first publish on a fresh node", request(), node(OURS), node(), []),
    ("publish beside the operator's labels", request(), BEFORE, node(OPERATOR), []),
    ("change one of our values", request(), node(OURS | OPERATOR | {"nvidia.com/mig-3g.20gb.count": "2"}), BEFORE,
     []),
    ("remove a stale MIG label (strategy change)", request(),
     node({k: v for k, v in (OURS | OPERATOR).items() if not k.startswith("nvidia.com/mig-")}), BEFORE, []),
    ("remove every label we own", request(), node(OPERATOR), BEFORE, []),
    ("add every fixed key we may own", request(), node(OPERATOR | dict.fromkeys(OWNABLE_KEYS, "x")),
     node(OPERATOR), []),
    ("odd MIG profiles: +me, -me, c-prefix, +gfx", request(),
     node({"nvidia.com/mig-1g.10gb.me.count": "1", "nvidia.com/mig-1g.10gb-me.memory": "9856",
           "nvidia.com/mig-1c.3g.20gb.product": "x", "nvidia.com/mig-1g.24gb.gfx.ci": "1"}), node(), []),
    ("take other managers' claims (managedFields only)", request(), with_managed_fields(BEFORE, []),
     with_managed_fields(BEFORE, ["nfd-master"]), []),
    ("a no-op", request(), BEFORE, BEFORE, []),
    ("someone else (the kubelet) is not matched", request(username="system:node:gpu-node-1"),
     node(metadata__annotations={"x": "y"}), node(), []),
    # -- denied: another Node, or no node name in the token
    ("another node", request(name="gpu-node-2"), node(OURS), node(), [OWN_NODE]),
    ("token without the node-name extra", request(node_name=None), node(OURS), node(), [OWN_NODE]),
    ("token bound to another node", request(node_name="gpu-node-9"), node(OURS), node(), [OWN_NODE]),
    # -- denied: anything but labels
    ("taint the node", request(), node(OURS, spec__taints=[{"key": "x", "effect": "NoSchedule"}]), node(OURS),
     [LABELS_ONLY]),
    ("cordon the node", request(), node(OURS, spec__unschedulable=True), node(OURS), [LABELS_ONLY]),
    ("change podCIDR", request(), node(OURS, spec__podCIDR="10.0.0.0/8"), node(OURS), [LABELS_ONLY]),
    ("add an annotation", request(), node(OURS, metadata__annotations={"a": "b"}), node(OURS), [LABELS_ONLY]),
    ("change an annotation", request(), node(OURS, metadata__annotations={"a": "c"}),
     node(OURS, metadata__annotations={"a": "b"}), [LABELS_ONLY]),
    ("add a finalizer", request(), node(OURS, metadata__finalizers=["x/y"]), node(OURS), [LABELS_ONLY]),
    ("add an owner reference", request(), node(OURS, metadata__ownerReferences=[{"name": "x"}]), node(OURS),
     [LABELS_ONLY]),
    # -- denied: labels we do not own
    *[(f"add {key}", request(), node(OURS | {key: "v"}), node(OURS), [OWN_KEYS]) for key in (
        "nvidia.com/mig.config", "nvidia.com/mig.config.state", "nvidia.com/gpu.deploy.dcgm",
        "nvidia.com/gpu.deploy.client", "nvidia.com/device-plugin.config", "nvidia.com/gpu.workload.config",
        "nvidia.com/vgpu.type", "kubernetes.io/hostname-x", "node-role.kubernetes.io/control-plane",
        "example.com/anything", "nvidia.com/mig-3g.20gb.evil")],
    *[(f"change {key}", request(), node(OURS | OPERATOR | {key: "changed"}), BEFORE, [OWN_KEYS]) for key in OPERATOR],
    *[(f"remove {key}", request(), node({k: v for k, v in (OURS | OPERATOR).items() if k != key}), BEFORE,
       [OWN_KEYS]) for key in OPERATOR],
    ("change kubernetes.io/hostname", request(), node(OURS, metadata__labels={"kubernetes.io/hostname": "evil"}),
     node(OURS), [OWN_KEYS]),
    # -- denied: not an update of the Node object
    ("create a node", request(operation="CREATE"), node(OURS), None, [OPERATION, LABELS_ONLY, OWN_KEYS]),
    ("delete a node", request(operation="DELETE"), None, node(OURS), [OPERATION, LABELS_ONLY, OWN_KEYS]),
    ("write node status", request(sub_resource="status"), node(OURS), node(OURS), [OPERATION]),
    # -- several at once
    ("another node's taints and labels", request(name="gpu-node-2"),
     node({"example.com/x": "1"}, spec__taints=[{"key": "x"}]), node(), [OWN_NODE, LABELS_ONLY, OWN_KEYS]),
]


@pytest.mark.parametrize(("why", "req", "obj", "old", "denied_by"), CASES, ids=[c[0] for c in CASES])
def test_the_policy_allows_what_the_labeler_does_and_denies_the_rest(why, req, obj, old, denied_by):
    assert admit(req, obj, old) == denied_by, why


def test_the_matrix_covers_both_outcomes():
    allowed = sum(1 for c in CASES if not c[4])
    assert allowed >= 10 and len(CASES) - allowed >= 30


def test_the_committed_policy_is_generated_from_the_code():
    """make admission-policy writes it from label_names; a hand edit or a new key must regenerate."""
    import sys

    sys.path.insert(0, str(ROOT))
    from tools.gen_admission_policy import CHART_OUT, chart_template, component

    assert POLICY_FILE.read_text() == component()
    assert CHART_OUT.read_text() == chart_template()
    variables = {v["name"]: v["expression"] for v in POLICY["spec"]["variables"]}
    assert set(evaluate(variables["ownableKeys"], {})) == OWNABLE_KEYS
    assert evaluate(variables["migKeyPattern"], {}) == MIG_KEY_PATTERN


def test_the_policy_uses_no_optional_syntax_or_kubernetes_only_functions():
    text = POLICY_FILE.read_text()
    assert ".?" not in text and "orValue" not in text
    for name in ("isSorted", "sum(", "indexOf", "lastIndexOf", "isURL", "url(", "quantity(", "authorizer"):
        assert name not in text, name


def test_every_node_writing_entry_point_but_core_carries_the_policy_and_its_binding():
    from tools.manifests_check import entry_points, render

    for entry in entry_points():
        kinds = {o["kind"] for o in render(entry)}
        has_policy = {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} <= kinds
        assert has_policy == (entry.name not in ("core", "nodefeature", "file")), entry.name


@settings(max_examples=40)
@given(node_fixtures(), st.sampled_from(["none", "single", "mixed"]), node_fixtures(),
       st.sampled_from(["none", "single", "mixed"]))
def test_any_publish_or_relabel_the_labeler_computes_is_allowed(doc, strategy, next_doc, next_strategy):
    """From a node with the operator's labels, through our labels for one layout, to another's."""
    first = {k: v for k, v in labels_of(doc, strategy, no_timestamp=False).items() if value_error(v) is None}
    second = {k: v for k, v in labels_of(next_doc, next_strategy).items() if value_error(v) is None}
    assert admit(request(), node(OPERATOR | first), node(OPERATOR)) == []
    assert admit(request(), node(OPERATOR | second), node(OPERATOR | first)) == []
