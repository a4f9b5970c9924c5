"""Typed access to a fixture's fields: every field is checked, so a wrong type or an unknown key is
one ``FixtureError`` naming the entry, never a traceback. Pure helpers for ``fixture``.
"""

from __future__ import annotations

from typing import Any

from mig_labeler.errors import FixtureError


def int_field(raw: Any, where: str, lo: int = 0, hi: int = 2**63 - 1) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not lo <= raw <= hi:
        raise FixtureError(f"{where} must be an integer from {lo} to {hi}, not {raw!r}")
    return raw


def str_field(raw: Any, where: str) -> str:
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise FixtureError(f"{where} must be a string, not {raw!r}")
    return str(raw)


def mapping_field(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise FixtureError(f"{where} must be a mapping, not {raw!r}")
    return raw


def list_field(raw: Any, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise FixtureError(f"{where} must be a list, not {raw!r}")
    return raw


def error_name(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw.startswith("NVML_ERROR_"):
        raise FixtureError(f"{where} {raw!r} is not an NVML_ERROR_* name")
    return raw


KNOWN_KEYS = {
    "": {"driver_version", "cuda_driver_version", "machine_type", "gpus", "init_error", "faults", "vgpu",
         "missing_symbols"},
    "gpu": {"model", "count", "mig", "mig_mode", "name", "memory_mib", "compute_capability", "mig_capable",
            "pci_class", "pci_device_id", "pci_subsystem_id", "uuid", "fabric", "off_bus"},
    "mig": {"profile", "attributes", "gi"},
    "attributes": {"memory_mib", "multiprocessors", "engines"},
    "engines": {"copy", "decoder", "encoder", "jpeg", "ofa"},
    "mig_mode": {"current", "pending"},
    "fabric": {"cluster_uuid", "clique_id", "state", "status"},
    "vgpu": {"host_driver_version", "host_driver_branch"},
    "fault": {"call", "gpu", "error", "from_pass", "until_pass"},
}


def known_keys(raw: dict, kind: str, where: str) -> dict:
    """A key the format does not have is a typo (``mig_devices`` for ``mig``): refused, naming it."""
    unknown = sorted(str(k) for k in raw if k not in KNOWN_KEYS[kind])
    if unknown:
        place = f"{where} has" if where else "has"
        raise FixtureError(f"{place} unknown key {unknown[0]!r} (known: {', '.join(sorted(KNOWN_KEYS[kind]))})")
    return raw
