"""The freshest state of our Node, fed by the watch, a GET and our own apply.

Owns: keeping the newer of two states (by resourceVersion), the deletion the watch reported (a
state read before it never brings the Node back; its return is newer), and the lock that guards
them across the watch thread and the loop. Knows nothing about passes, pauses or labels.
"""

from __future__ import annotations

import threading

from mig_labeler.node_state import NodeState


class NodeCache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.node: NodeState | None = None
        self.deleted_version: int | None = None  # resourceVersion of the deletion the watch reported
        self.deleted = False  # the watch reported the Node deleted and it has not come back yet

    def latest(self) -> NodeState | None:
        with self.lock:
            return self.node

    def remember(self, node: NodeState) -> NodeState | None:
        """Keep the newer of the cached and the given state; returns the one it replaced (None
        when there was none, or when ``node`` is older and was not kept)."""
        with self.lock:
            previous = self.node
            if previous is not None and version(node) < version(previous):
                return None
            if previous is None and self.deleted_version is not None and version(node) <= self.deleted_version:
                return None
            self.node = node
            return previous

    def forget(self, deleted: NodeState) -> None:
        """The watch reported the Node deleted."""
        with self.lock:
            self.node = None
            self.deleted_version = version(deleted) or None  # 0: not a number, no ordering to go by
            self.deleted = True

    def back(self) -> bool:
        """True once, when the Node returns after a deletion."""
        with self.lock:
            was, self.deleted = self.deleted, False
            return was


def version(node: NodeState) -> int:
    try:
        return int(node.resource_version)
    except ValueError:
        return 0
