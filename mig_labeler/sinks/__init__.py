"""Sinks, the last stage: where a validated label map goes. One module per sink behind ``Sink``.

- ``node``: server-side apply to the Node (the default).
- ``nodefeature``: an NFD ``NodeFeature`` object that nfd-master turns into Node labels.
- ``file``: an NFD local-source features.d file.

Owns: the interface the loop knows (``Sink``, ``SinkResult``) and ``handoff_labels``, the rule
that lets a mode switch leave no orphan labels. The pass builds nothing: ``daemon.outputs`` builds the sinks.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Protocol

from mig_labeler.sinks.plan import LabelPlan


@dataclass(frozen=True, slots=True)
class SinkResult:
    sink: str
    plan: LabelPlan  # what the sink set out to do
    outcome: LabelPlan | None = None  # what it did; None: nothing was written
    held: str = ""  # why nothing was written although something differed (the GPU Operator's pause)

    @property
    def wrote(self) -> bool:
        return self.outcome is not None


class Sink(Protocol):
    name: str
    feeds_nfd: bool  # nfd-master writes these labels to the Node (see handoff_labels)

    def publish(self, labels: Mapping[str, str]) -> SinkResult:
        """Make the sink hold exactly ``labels``; zero writes when it already does. Raises a
        ``MigLabelerError`` (transient ones are retried by the loop's policy)."""
        ...


class Retirable(Protocol):
    """A sink the loop can empty when it is *not* selected: what a mode switch leaves behind."""

    name: str

    def retire(self) -> SinkResult | None:
        """Remove what mig-labeler left in this sink while it was selected, and nothing else;
        None when there is nothing of ours."""
        ...


def handoff_labels(desired: Mapping[str, str], live: Mapping[str, str], owned: Set[str],
                   nfd_managed: Set[str]) -> dict[str, str]:
    """What a sink that feeds nfd-master publishes after a switch away from the node sink.

    Labels our field manager still owns on the Node but no longer wants (``owned`` minus
    ``desired``) would be orphans: without Node patch rights we cannot remove them, and nfd-master
    removes only labels it set itself (listed in its ``feature-labels`` annotation). So they are
    published once more, at their live values, until nfd-master has taken them over; then they
    are left out, and nfd-master removes them. Pure."""
    extra = {k: live[k] for k in sorted(owned) if k in live and k not in desired and k not in nfd_managed}
    return {**desired, **extra}
