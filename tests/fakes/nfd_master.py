"""A fake nfd-master: what Node Feature Discovery does with NodeFeature objects and features.d files.

As nfd-master's ``updateNodeObject`` does it (NFD v0.14+): the labels of every NodeFeature whose
``nfd.node.kubernetes.io/node-name`` label names the node, plus the node's local-source files,
are the labels NFD wants; it writes them with a JSON patch (an Update: it owns what it changes),
removes the labels it set before (listed in the node annotation
``nfd.node.kubernetes.io/feature-labels``, sorted, comma-separated) that are no longer wanted,
whoever else claims them, and records the new list in that annotation. ``sync`` is one
reconciliation, called by the test when it means "nfd-master has run".
"""

from __future__ import annotations

from pathlib import Path

from .kube_api import NFD_FEATURE_LABELS, NFD_NODE_NAME, FakeKubeApi


class FakeNfdMaster:
    def __init__(self, api: FakeKubeApi, features_d: Path | None = None) -> None:
        self.api = api
        self.features_d = features_d  # the node's local-source directory (one node per test)

    def wanted(self, node: str) -> dict[str, str]:
        labels: dict[str, str] = {}
        if self.features_d is not None and self.features_d.is_dir():
            for path in sorted(self.features_d.iterdir()):
                if path.is_file() and not path.name.startswith("."):  # NFD skips hidden files
                    for line in path.read_text().splitlines():
                        if line.strip() and not line.startswith("#"):
                            key, sep, value = line.strip().partition("=")
                            labels[key] = value if sep else "true"
        for (_, _), stored in sorted(self.api.nodefeatures.items()):
            obj = stored.to_json()
            if obj["metadata"]["labels"].get(NFD_NODE_NAME) == node:
                labels.update(obj["spec"]["labels"])
        return labels

    def sync(self, node: str) -> None:
        with self.api.lock:
            stored = self.api.nodes[node]
            wanted = self.wanted(node)
            before = set(filter(None, stored.annotations.get(NFD_FEATURE_LABELS, "").split(",")))
            labels = {k: v for k, v in stored.labels.items() if k not in before - set(wanted)}
            labels.update(wanted)
            revision = stored.resource_version
            annotation = ",".join(sorted(wanted))
            changed = stored.annotations.get(NFD_FEATURE_LABELS, "") != annotation
            if wanted:
                stored.annotations[NFD_FEATURE_LABELS] = annotation
            else:
                stored.annotations.pop(NFD_FEATURE_LABELS, None)
            self.api._update_labels(stored, labels, "nfd-master")
            if changed and stored.resource_version == revision:  # only the annotation changed
                stored.resource_version = self.api._next_revision()
                self.api._record("MODIFIED", stored)
