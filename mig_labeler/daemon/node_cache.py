"""The freshest state of our Node, fed by the watch, a GET and our own apply, and since when the
labels it is told to follow have held their values.

Owns: keeping the newer of two states (by resourceVersion), the deletion the watch reported (a
state read before it never brings the Node back; its return is newer), since-when for the
``tracked`` label keys, and the lock that guards them across the watch thread and the loop.
Knows nothing about passes, pauses or what the labels mean.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection

from mig_labeler.kube.node_state import NodeState


class NodeCache:
    def __init__(self, tracked: Collection[str] = (), clock: Callable[[], float] = time.time) -> None:
        self.lock = threading.Lock()
        self.node: NodeState | None = None
        self.deleted_version: int | None = None  # resourceVersion of the deletion the watch reported
        self.deleted = False  # the watch reported the Node deleted and it has not come back yet
        self.tracked = tuple(tracked)
        self.clock = clock
        self._held: dict[str, tuple[str, float]] = {}  # tracked key → (value, held since)

    def held(self) -> dict[str, tuple[str, float]]:
        """For each tracked label on the Node: (value, since when we have seen it hold that value).
        After a restart that is the restart: the API server keeps no time of a label's last change
        (an Update manager's managedFields time moves only when the set of fields it owns changes,
        not when one of their values does), so this never claims more than we saw."""
        with self.lock:
            return dict(self._held)

    def _track(self, node: NodeState) -> None:
        now = self.clock()
        for key in self.tracked:
            value = node.labels.get(key)
            if value is None:
                self._held.pop(key, None)
            elif key not in self._held or self._held[key][0] != value:
                self._held[key] = (value, now)

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
            self._track(node)
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
