"""The machine type: the DMI product name GFD labels as ``nvidia.com/gpu.machine``."""

from __future__ import annotations

from pathlib import Path


def read_machine_type(path: str) -> str | None:
    """GFD: unreadable (or the flag empty) → None, labelled ``unknown``; whitespace trimmed."""
    if not path:
        return None
    try:
        return Path(path).read_text(errors="replace").strip()
    except OSError:
        return None
