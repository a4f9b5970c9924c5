"""MIG placement rules for fixtures: which GPU instances fit on a GPU, and which compute
instances fit in a GPU instance.

Owns ``layout_problem`` (one rule for the fixture parser and the tests' hypothesis strategies) and
``place_instances``, which turns a fixture's device list into GPU-instance and compute-instance
slots. Pure: no pynvml, no files.
"""

from __future__ import annotations

from collections.abc import Sequence

from mig_labeler.gpu_models import GiProfile, GpuModel

Slot = tuple[int, int]  # (GPU instance slot, compute instance slot within it)


def layout_problem(model: GpuModel, instances: Sequence[tuple[str, GiProfile]]) -> str | None:
    """Why these GPU instances (name, GPU instance profile) cannot be on one GPU of the model, or
    None: per profile no more than its instanceCount; GPU-instance slices within the GPU's, which
    is its maximum MIG device count (7 on A100/H100/B200/GB200, 4 on A30), not the largest profile
    in the table (for B200 and GB200 that stops at 2g: the spec has no numbers for 3g and up);
    memory in eighths of the GPU within 8 (1g.5gb takes 1, 3g.20gb 4, 7g.40gb 8, as in the MIG
    user guide's placement tables). One entry per GPU instance, however many compute instances
    it holds."""
    counts: dict[str, int] = {}
    for _, gi in instances:
        counts[gi.name] = counts.get(gi.name, 0) + 1
        if counts[gi.name] > gi.max_count:
            return f"{model.key} holds at most {gi.max_count} {gi.name}"
    slices = max([model.max_mig_devices, *(p.attributes.slices_gi for p in model.profiles)])
    used = sum(gi.attributes.slices_gi for _, gi in instances)
    eighths = sum(-(-8 * gi.attributes.memory_mib // model.memory_mib) for _, gi in instances)
    if used > slices or eighths > 8:
        layout = " + ".join(name for name, _ in instances)
        return (f"{layout} does not fit on one {model.key} ({slices} compute slices, 8 memory eighths; "
                f"this needs {used} and {eighths})")
    return None


def place_instances(devices: Sequence[tuple[str, GiProfile, int, object]]) -> tuple[list[Slot], str | None]:
    """Slots for (name, GPU instance profile, compute-instance slices, group) per device, and the
    first placement problem or None. A device whose group is None is a GPU instance of its own
    (compute instance 0); devices with the same group share one GPU instance, as ``nvidia-smi mig
    -cci`` creates them: one GPU instance profile for all, compute-instance slices within its
    slices (three 1c.3g.20gb fill a 3g.20gb; a fourth does not fit)."""
    slots: list[Slot] = []
    groups: dict[object, tuple[int, GiProfile, int]] = {}  # group -> (GI slot, profile, slices used)
    next_gi = 0
    for name, gi, ci_slices, group in devices:
        if group is None:
            slots.append((next_gi, 0))
            next_gi += 1
            continue
        if group not in groups:
            groups[group] = (next_gi, gi, 0)
            next_gi += 1
        gi_slot, profile, used = groups[group]
        if profile.name != gi.name:
            return slots, f"{name} cannot share GPU instance {group!r} with a {profile.name}"
        if used + ci_slices > gi.attributes.slices_gi:
            return slots, (f"GPU instance {group!r} ({gi.name}) has {gi.attributes.slices_gi} compute slices; "
                           f"adding {name} needs {used + ci_slices}")
        ci_slot = sum(1 for s in slots if s[0] == gi_slot)
        slots.append((gi_slot, ci_slot))
        groups[group] = (gi_slot, profile, used + ci_slices)
    return slots, None


def gpu_instances(devices: Sequence[tuple[str, GiProfile]], slots: Sequence[Slot]) -> list[tuple[str, GiProfile]]:
    """One (name, profile) per GPU instance: the first device placed in it names it."""
    seen: dict[int, tuple[str, GiProfile]] = {}
    for (name, gi), (gi_slot, _) in zip(devices, slots, strict=True):
        seen.setdefault(gi_slot, (name, gi))
    return list(seen.values())
