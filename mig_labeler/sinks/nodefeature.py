"""The nodefeature sink: an NFD ``NodeFeature`` object that nfd-master turns into Node labels
(GFD's default output since v0.19, gfd-reference §6.2).

Owns: the object (``nfd.k8s-sigs.io/v1alpha1``, ``nvidia-features-for-<node>`` in our namespace,
``metadata.labels`` exactly ``{nfd.node.kubernetes.io/node-name: <node>}``, ``spec.labels`` our
map), written with server-side apply under our field manager and zero writes when nothing
changed; owner references to our DaemonSet and Pod (looked up once by ``--pod-name``, as GFD);
the start-up check that NFD's CRD is installed; and ``retire``, which deletes the object after a
switch to another sink (only if our field manager wrote it). Needs no Node rights at all.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from mig_labeler.errors import ApiError
from mig_labeler.kube.client import KubeClient
from mig_labeler.kube.node_state import FIELD_MANAGER
from mig_labeler.sinks import SinkResult
from mig_labeler.sinks.plan import plan_update

log = logging.getLogger("mig_labeler")

GROUP_VERSION = "nfd.k8s-sigs.io/v1alpha1"
RESOURCE = "nodefeatures"
NODE_NAME_LABEL = "nfd.node.kubernetes.io/node-name"
CRD = f"{RESOURCE}.nfd.k8s-sigs.io"
INSTALL_NFD = ("install Node Feature Discovery first (helm install nfd "
               "oci://registry.k8s.io/nfd/charts/node-feature-discovery -n node-feature-discovery "
               "--create-namespace), or use --sink node")


class NodeFeatureApiMissing(ApiError):
    """NFD's NodeFeature CRD is not installed (exit 1; not retried)."""


def object_name(node: str) -> str:
    return f"nvidia-features-for-{node}"


class NodeFeatureSink:
    name = "nodefeature"
    feeds_nfd = True

    def __init__(self, kube: KubeClient, node_name: str, namespace: str, pod_name: str | None = None) -> None:
        self.kube = kube
        self.node_name = node_name
        self.namespace = namespace
        self.pod_name = pod_name
        self.owners: list[dict[str, Any]] | None = None  # looked up on first use
        self.path = f"/apis/{GROUP_VERSION}/namespaces/{namespace}/{RESOURCE}/{object_name(node_name)}"

    def check(self) -> NodeFeatureSink:
        """At start-up: one line naming the CRD when NFD is not installed."""
        try:
            served = self.kube.served_resources(GROUP_VERSION)
        except ApiError as e:
            log.warning("could not check for NFD's NodeFeature API at start-up (%s); the loop will retry", e)
            return self
        if served is None or RESOURCE not in served:
            raise NodeFeatureApiMissing(f"the NodeFeature API is not installed (CRD {CRD}, {GROUP_VERSION}): "
                                        f"{INSTALL_NFD}", 404)
        return self

    def publish(self, labels: Mapping[str, str]) -> SinkResult:
        current = self._get()
        live = _spec_labels(current or {})
        plan = plan_update(live, set(live), labels)
        body = self._body(labels)
        if current is not None and self._same(current, body):
            return SinkResult(self.name, plan)
        self.kube.apply_object(self.path, RESOURCE, object_name(self.node_name), body)
        return SinkResult(self.name, plan, plan)

    def retire(self) -> SinkResult | None:
        """Delete our NodeFeature (nfd-master then removes its labels from the Node); one that our
        field manager never wrote is not ours and stays. Discovery first (it needs no RBAC):
        without NFD's API there is nothing to look for."""
        served = self.kube.served_resources(GROUP_VERSION)
        if served is None or RESOURCE not in served:
            return None
        try:
            current = self._get()
        except NodeFeatureApiMissing:
            return None  # no NFD, so nothing of ours there
        if current is None or not any(m.get("manager") == FIELD_MANAGER
                                      for m in (current.get("metadata") or {}).get("managedFields") or []):
            return None
        uid = str((current.get("metadata") or {}).get("uid") or "")
        live = _spec_labels(current)
        if not self.kube.delete_object(self.path, RESOURCE, object_name(self.node_name), uid):
            return None
        plan = plan_update(live, set(live), {})
        return SinkResult(self.name, plan, plan)

    def _get(self) -> dict[str, Any] | None:
        try:
            return self.kube.get_object(self.path, RESOURCE, object_name(self.node_name))
        except ApiError as e:
            if e.status == 404:  # a 404 that names no object: the type itself is not served
                raise NodeFeatureApiMissing(f"the NodeFeature API is gone (CRD {CRD}): {INSTALL_NFD}", 404) from None
            raise

    def _body(self, labels: Mapping[str, str]) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": object_name(self.node_name), "namespace": self.namespace,
                                    "labels": {NODE_NAME_LABEL: self.node_name}}
        owners = self._owners()
        if owners:
            metadata["ownerReferences"] = owners
        return {"apiVersion": GROUP_VERSION, "kind": "NodeFeature", "metadata": metadata,
                "spec": {"features": {}, "labels": dict(labels)}}

    def _owners(self) -> list[dict[str, Any]]:
        """Our DaemonSet (the controller) and our Pod, as GFD sets them: the object is garbage
        collected with the DaemonSet. A failed lookup is a warning and no owners."""
        if self.owners is not None:
            return self.owners
        self.owners = []
        if not self.pod_name:
            return self.owners
        path = f"/api/v1/namespaces/{self.namespace}/pods/{self.pod_name}"
        try:
            pod = self.kube.get_object(path, "pods", self.pod_name)
        except ApiError as e:
            log.warning("cannot read pod %s/%s for the NodeFeature's owner references (%s); writing it without "
                        "owners", self.namespace, self.pod_name, e)
            return self.owners
        meta = (pod or {}).get("metadata") or {}
        daemonset = next((o for o in meta.get("ownerReferences") or [] if o.get("kind") == "DaemonSet"), None)
        if pod is None or daemonset is None:
            return self.owners
        self.owners = [
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": daemonset["name"], "uid": daemonset["uid"],
             "controller": True},
            {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]},
        ]
        return self.owners

    @staticmethod
    def _same(current: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
        """Do the fields we apply already hold these values? (Other managers' fields are theirs.)"""
        meta, want = current.get("metadata") or {}, body["metadata"]
        labels = meta.get("labels") or {}
        owners = [(o.get("kind"), o.get("uid")) for o in meta.get("ownerReferences") or []]
        return (all(labels.get(k) == v for k, v in want["labels"].items())
                and all((o["kind"], o["uid"]) in owners for o in want.get("ownerReferences", []))
                and _spec_labels(current) == body["spec"]["labels"])


def _spec_labels(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict((obj.get("spec") or {}).get("labels") or {})
