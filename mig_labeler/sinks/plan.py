"""Pure planning of a label update: what to add, change, adopt and remove in a sink.

Owns: ``plan_update`` and ``LabelPlan``, in the style of NFD's ``createPatches`` and
cosmicpython's ``determine_actions``. No I/O. Removal is only ever planned for keys recorded as
ours (the server-side-apply field manager's keys), so labels written by mig-manager, the GPU
operator or an admin are never touched (labels.md, "Ownership").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass

from mig_labeler.label_names import PREFIX, TIMESTAMP_KEY


@dataclass(frozen=True, slots=True)
class LabelPlan:
    desired: dict[str, str]
    add: dict[str, str]
    change: dict[str, tuple[str, str]]  # key → (live, desired)
    adopt: tuple[str, ...]  # right value already live, but not yet recorded as ours
    remove: dict[str, str]  # key → live value; only keys we own

    @property
    def empty(self) -> bool:
        return not (self.add or self.change or self.adopt or self.remove)

    def summary(self) -> str:
        parts = [f"{len(self.add)} added", f"{len(self.change)} changed", f"{len(self.remove)} removed"]
        if self.adopt:
            parts.append(f"{len(self.adopt)} adopted")
        return ", ".join(parts)

    @property
    def only_timestamp(self) -> bool:
        """Nothing but ``gfd.timestamp`` changes (every restart): not worth an Event."""
        keys = set(self.add) | set(self.change) | set(self.remove) | set(self.adopt)
        return keys <= {TIMESTAMP_KEY}

    def describe(self, limit: int = 6) -> str:
        """What changes, in words short enough for an Event: label groups added and removed (a
        MIG profile's keys as ``mig-3g.20gb.*``), changed values (``gpu.product → …``), adoptions.
        At most ``limit`` items per part; ``gfd.timestamp`` is left out."""
        parts = []
        for verb, keys in (("removed", self.remove), ("added", self.add)):
            groups = _groups(k for k in keys if k != TIMESTAMP_KEY)
            if groups:
                parts.append(f"{verb} {_first(groups, limit)}")
        changed = [f"{_short(k)} → {new}" for k, (_, new) in self.change.items() if k != TIMESTAMP_KEY]
        if changed:
            parts.append(_first(changed, limit))
        if self.adopt:
            parts.append(f"took ownership of {len(self.adopt)} label{'s' if len(self.adopt) != 1 else ''} "
                         "already right")
        return "; ".join(parts) or "gfd.timestamp only"

    def lines(self) -> list[str]:
        """Human-readable diff, sorted by key: ``+`` add, ``~`` change, ``-`` remove, ``*`` adopt."""
        rows = [(k, f"+ {k}={v}") for k, v in self.add.items()]
        rows += [(k, f"~ {k}: {old!r} -> {new!r}") for k, (old, new) in self.change.items()]
        rows += [(k, f"- {k} (was {old!r})") for k, old in self.remove.items()]
        rows += [(k, f"* {k}={self.desired[k]} (already set; mig-labeler takes ownership)") for k in self.adopt]
        return [line for _, line in sorted(rows)]




def _short(key: str) -> str:
    return key.removeprefix(PREFIX)


def _groups(keys: Iterable[str]) -> list[str]:
    """A MIG profile's keys become one ``mig-<profile>.*``; other keys stay as they are."""
    found: list[str] = []
    for key in sorted(keys):
        short = _short(key)
        match = re.match(r"(mig-[^.]+(?:\.[^.]+)*?)\.(count|product|replicas|sharing-strategy|memory|multiprocessors"
                         r"|slices\.gi|slices\.ci|engines\.[a-z]+)$", short)
        name = f"{match.group(1)}.*" if match else short
        if name not in found:
            found.append(name)
    return found


def _first(items: list[str], limit: int) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def plan_update(live: Mapping[str, str], owned: Set[str], desired: Mapping[str, str],
                shared: Set[str] = frozenset()) -> LabelPlan:
    """``shared``: keys we own that other managers own too. A key with the right value is adopted
    unless we already own it alone: a shared key would survive our dropping it later."""
    add = {k: v for k, v in sorted(desired.items()) if k not in live}
    change = {k: (live[k], v) for k, v in sorted(desired.items()) if k in live and live[k] != v}
    adopt = tuple(sorted(k for k, v in desired.items() if live.get(k) == v and (k not in owned or k in shared)))
    remove = {k: live[k] for k in sorted(owned) if k not in desired and k in live}
    return LabelPlan(dict(desired), add, change, adopt, remove)


def observed_changes(plan: LabelPlan, before: Mapping[str, str], after: Mapping[str, str],
                     adopted: Set[str]) -> LabelPlan:
    """What the API server's answer shows really happened to the keys the plan touched (another
    writer's changes in between are not ours to report). ``adopted``: planned adoptions that we
    now own alone."""
    touched = set(plan.desired) | set(plan.remove)
    add = {k: after[k] for k in sorted(touched) if k in after and k not in before}
    change = {k: (before[k], after[k]) for k in sorted(touched) if k in after and k in before and before[k] != after[k]}
    remove = {k: before[k] for k in sorted(touched) if k in before and k not in after}
    return LabelPlan(dict(plan.desired), add, change, tuple(k for k in plan.adopt if k in adopted), remove)
