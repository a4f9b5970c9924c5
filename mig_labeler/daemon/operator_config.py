"""Which mig-parted config mig-manager applies on this node, resolved as the GPU Operator does.

Owns: ``--mig-parted-configmap NAMESPACE/auto``. mig-manager (v0.14+, GPU Operator 26.3+) uses, in
this order: the custom config the ClusterPolicy names (``spec.migManager.config.name``: the operator
then sets CONFIG_FILE); else the config it generates from the hardware at start and publishes as
the ConfigMap ``<node>-mig-config`` (key ``config.yaml``); else, when generation finds no MIG
profiles, ``default-mig-parted-config`` (mounted as ``config-default.yaml``). ``resolve`` follows
that order through the API (the ClusterPolicy ``cluster-policy`` by name; no ClusterPolicy or no
CRD: no custom config) and says which source it used. ``candidates``: the ConfigMaps to watch, so
that a change of any of them resolves again (mig-manager's per-node ConfigMap is owned by its pod:
a restarted mig-manager deletes and recreates it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tenacity import Retrying

from mig_labeler.errors import ApiError, ConfigError
from mig_labeler.kube.client import KubeClient
from mig_labeler.kube.errors import ObjectNotFound

AUTO = "auto"
DEFAULT_CONFIGMAP = "default-mig-parted-config"
CLUSTER_POLICY = "cluster-policy"  # the name the GPU Operator's Helm chart gives its one ClusterPolicy
CLUSTER_POLICY_PATH = f"/apis/nvidia.com/v1/clusterpolicies/{CLUSTER_POLICY}"
KEY = "config.yaml"


@dataclass(frozen=True, slots=True)
class Resolved:
    name: str  # the ConfigMap
    source: str  # custom | generated | default

    def describe(self, namespace: str) -> str:
        what = {"custom": "the custom config the ClusterPolicy names",
                "generated": "the config mig-manager generated for this node",
                "default": "the operator's default, used when mig-manager finds no profiles to generate from"}
        return f"ConfigMap {namespace}/{self.name}, {what[self.source]}"


def generated_name(node: str) -> str:
    return f"{node}-mig-config"


def custom_name(policy: dict[str, Any] | None) -> str | None:
    """``spec.migManager.config.name`` of the ClusterPolicy, as the operator reads it."""
    spec = (policy or {}).get("spec")
    manager = spec.get("migManager") if isinstance(spec, dict) else None
    config = manager.get("config") if isinstance(manager, dict) else None
    name = config.get("name") if isinstance(config, dict) else None
    return name if isinstance(name, str) and name else None


def resolve(kube: KubeClient, retry: Retrying, namespace: str, node: str | None) -> tuple[Resolved, dict[str, Any]]:
    """The ConfigMap mig-manager uses for ``node`` now, and the ConfigMap itself."""
    try:
        policy = retry(kube.get_object, CLUSTER_POLICY_PATH, "clusterpolicies", CLUSTER_POLICY)
    except ApiError as e:
        if e.status not in (403, 404):
            raise
        if e.status == 404:  # "404 page not found": no ClusterPolicy CRD, so no GPU Operator to name a config
            policy = None
        else:
            raise ConfigError(f"cannot read the ClusterPolicy {CLUSTER_POLICY} (--mig-parted-configmap "
                              f"{namespace}/{AUTO}): {e}. Grant get on clusterpolicies.nvidia.com named "
                              f"{CLUSTER_POLICY} (manifests/components/mig-parted-operator)") from None
    custom = custom_name(policy)
    order = [Resolved(custom, "custom")] if custom else []
    if node and not custom:
        order.append(Resolved(generated_name(node), "generated"))
    if not custom:
        order.append(Resolved(DEFAULT_CONFIGMAP, "default"))
    for choice in order:
        obj = read_configmap(kube, retry, namespace, choice.name, f"--mig-parted-configmap {namespace}/{AUTO}",
                             f"Grant get and watch on configmaps in {namespace} "
                             "(manifests/components/mig-parted-operator)")
        if obj is not None:
            return choice, obj
    names = ", ".join(c.name for c in order)
    raise ConfigError(f"none of the ConfigMaps mig-manager would use exists in {namespace} ({names}): is the "
                      "GPU Operator's MIG manager deployed there?")


def read_configmap(kube: KubeClient, retry: Retrying, namespace: str, name: str, option: str,
                   grant: str) -> dict[str, Any] | None:
    """A mig-parted ConfigMap, None when it does not exist. No right to read it is a wrong setup:
    one line naming ``option`` and what to ``grant`` (ConfigError, exit 2 at start-up)."""
    try:
        obj: dict[str, Any] = retry(kube.read_configmap, namespace, name)
    except ObjectNotFound:
        return None
    except ApiError as e:
        if e.status != 403:
            raise
        raise ConfigError(f"cannot read ConfigMap {namespace}/{name} ({option}): {e}. {grant}") from None
    return obj


def candidates(node: str | None, resolved: Resolved) -> list[str]:
    """Every ConfigMap whose change can change the answer (the custom one, while it is named)."""
    names = [resolved.name] if resolved.source == "custom" else []
    if node:
        names.append(generated_name(node))
    names.append(DEFAULT_CONFIGMAP)
    return list(dict.fromkeys(names))
