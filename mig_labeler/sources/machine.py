"""The machine type: the DMI product name GFD labels as ``nvidia.com/gpu.machine``."""

from __future__ import annotations

from pathlib import Path


def read_machine_type(path: str) -> str | None:
    """GFD: unreadable (or the flag empty) → None, labelled ``unknown``; whitespace trimmed."""
    return read_machine_type_checked(path)[0]


def read_machine_type_checked(path: str) -> tuple[str | None, str | None]:
    """The machine type, and why it could not be read (None when it could)."""
    if not path:
        return None, None
    try:
        return Path(path).read_text(errors="replace").strip(), None
    except IsADirectoryError:
        return None, "is a directory"
    except OSError as e:
        return None, e.strerror or str(e)
