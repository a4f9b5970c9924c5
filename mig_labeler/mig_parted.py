"""The mig-parted config format (version v1), as NVIDIA/mig-parted's ``api/spec/v1`` parses it.

Owns: ``parse_mig_parted`` (text in, a frozen ``MigPartedConfig`` or ``ConfigError`` out) and the
selection rule mig-manager applies: for a GPU, the first entry of the named config whose
``device-filter`` (PCI device IDs ``0xDDDDVVVV``, optionally ``:0xSSSSVVVV`` for the subsystem) and
``devices`` (``all`` or indices) select it. The same rules as mig-parted's ``UnmarshalJSON``:
``version: v1`` required, ``mig-configs`` the only other key, at least one config and one entry
each, ``devices`` and ``mig-enabled`` required, ``mig-devices`` required when enabled and empty
when not, counts not negative and not all zero, profile names in go-nvlib's grammar, no other key.
Pure: the file is read by ``text_files.load_mig_parted``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from mig_labeler import text_document
from mig_labeler.errors import ConfigError

# No NVIDIA GPU has more than 7 compute slices (A100, A30 4, H100, H200, B200, GB200: the shared
# spec's mig-profiles.json), and every MIG device takes at least one.
MAX_MIG_DEVICES = 7

# go-nvlib's MIG profile grammar: [<C>c.]<G>g.<GB>gb[+me|+me.all|+gfx|-me]
PROFILE = re.compile(r"^(?:[1-9][0-9]*c\.)?[1-9][0-9]*g\.[1-9][0-9]*gb(?:\+me|\+me\.all|\+gfx|-me)?$")


@dataclass(frozen=True, slots=True)
class DeviceId:
    device: int
    vendor: int
    subsystem: tuple[int, int] | None = None  # (device, vendor) of the subsystem, when the filter names one

    def matches(self, pci_device_id: int, pci_subsystem_id: int | None = None) -> bool:
        """mig-parted's DeviceID.Matches against NVML's pciDeviceId (device << 16 | vendor) and
        pciSubSystemId (the same layout): a filter that names a subsystem needs all four to match."""
        if (pci_device_id >> 16, pci_device_id & 0xFFFF) != (self.device, self.vendor):
            return False
        if self.subsystem is None:
            return True
        return pci_subsystem_id is not None and (pci_subsystem_id >> 16, pci_subsystem_id & 0xFFFF) == self.subsystem


@dataclass(frozen=True, slots=True)
class MigPartedEntry:
    device_filter: tuple[DeviceId, ...]  # empty: every device
    devices: tuple[int, ...] | None  # None: all
    mig_enabled: bool
    mig_devices: tuple[tuple[str, int], ...]  # (profile, count), in the file's order

    def selects(self, index: int, pci_device_id: int | None, pci_subsystem_id: int | None = None) -> bool:
        if self.devices is not None and index not in self.devices:
            return False
        if not self.device_filter:
            return True
        return pci_device_id is not None and any(f.matches(pci_device_id, pci_subsystem_id)
                                                 for f in self.device_filter)

    def layout(self) -> list[str]:
        """The MIG devices the entry asks for, one name each, in the file's order (counts are
        bounded by ``MAX_MIG_DEVICES`` when parsed)."""
        return [profile for profile, count in self.mig_devices for _ in range(count)]


@dataclass(frozen=True, slots=True)
class MigPartedConfig:
    configs: dict[str, tuple[MigPartedEntry, ...]]
    warnings: tuple[str, ...] = ()  # accepted, as mig-parted accepts it, but probably not what was meant
    source: str = ""  # where it was read (a file, a ConfigMap and which of the operator's), for messages

    def digest(self, name: str) -> str:
        """A short hash of what config ``name`` holds: which content a verification used."""
        return hashlib.sha256(repr(self.configs.get(name)).encode()).hexdigest()[:12]

    def entry_for(self, name: str, index: int, pci_device_id: int | None,
                  pci_subsystem_id: int | None = None) -> MigPartedEntry | None:
        """The first entry of config ``name`` that selects GPU ``index``, as mig-manager picks it."""
        return next((e for e in self.configs[name] if e.selects(index, pci_device_id, pci_subsystem_id)), None)


def mig_parted_from_configmap(obj: Any, namespace: str, name: str, key: str) -> MigPartedConfig:
    """The config in a ConfigMap as the API serves it (``data[key]``; ``binaryData`` is not read,
    as mig-manager reads a mounted file of text)."""
    where = f"ConfigMap {namespace}/{name}"
    data = obj.get("data") if isinstance(obj, dict) else None
    data = data if isinstance(data, dict) else {}
    if key not in data:
        has = ", ".join(sorted(str(k) for k in data)[:8]) or "no data keys"
        raise ConfigError(f"{where} has no key {key!r} (it has {has}): set --mig-parted-configmap-key")
    text = data[key]
    if not isinstance(text, str):
        raise ConfigError(f"{where} key {key!r} is not text")
    return parse_mig_parted(text, f"{where} key {key}")


def parse_mig_parted(text: str, where: str = "mig-parted config") -> MigPartedConfig:
    doc = text_document.load_document(text, where)
    try:
        parsed = _spec(doc)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    repeated = text_document.duplicate_key(text)
    if repeated is None:
        return parsed
    # mig-parted decodes with sigs.k8s.io/yaml's Unmarshal (not UnmarshalStrict): the last one wins
    # silently, so mig-manager applies it. The same here, said once.
    warning = f"{where}: {repeated} is given twice in one mapping; the last one is used, as mig-manager uses it"
    return MigPartedConfig(parsed.configs, (warning,))


def _spec(doc: Any) -> MigPartedConfig:
    if not isinstance(doc, dict):
        raise ConfigError("must be a mapping with version: v1 and mig-configs")
    if "version" not in doc:
        raise ConfigError("unable to parse with missing 'version' field")
    if doc["version"] != "v1":
        raise ConfigError(f"unknown version: {doc['version']!r} (mig-parted reads v1)")
    unexpected = sorted(str(k) for k in doc if k not in ("version", "mig-configs"))
    if unexpected:
        raise ConfigError(f"unexpected field: {unexpected[0]}")
    configs = doc.get("mig-configs")
    if not isinstance(configs, dict) or not configs:
        raise ConfigError("at least one entry in 'mig-configs' is required")
    parsed = {}
    for name, entries in configs.items():
        if not isinstance(entries, list) or not entries:
            raise ConfigError(f"at least one entry in {name!r} is required")
        parsed[str(name)] = tuple(_entry(e, f"mig-configs.{name}[{i}]") for i, e in enumerate(entries))
    return MigPartedConfig(parsed)


def _entry(raw: Any, where: str) -> MigPartedEntry:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping (devices, mig-enabled, mig-devices)")
    for required in ("devices", "mig-enabled"):
        if required not in raw:
            raise ConfigError(f"{where}: missing required field: {required}")
    unexpected = sorted(str(k) for k in raw if k not in ("device-filter", "devices", "mig-enabled", "mig-devices"))
    if unexpected:
        raise ConfigError(f"{where}: unexpected field: {unexpected[0]}")
    enabled = raw["mig-enabled"]
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where}.mig-enabled must be true or false, not {enabled!r}")
    devices = _devices(raw["devices"], where)
    mig_devices = _mig_devices(raw.get("mig-devices"), where) if "mig-devices" in raw else None
    if enabled and mig_devices is None:
        raise ConfigError(f"{where}: missing required field 'mig-devices' when 'mig-enabled' is true")
    if not enabled and mig_devices:
        raise ConfigError(f"{where}: MIG devices included when 'mig-enabled' is false")
    return MigPartedEntry(_filters(raw.get("device-filter"), where), devices, enabled, tuple(mig_devices or ()))


def _devices(raw: Any, where: str) -> tuple[int, ...] | None:
    if raw == "all":
        return None
    if isinstance(raw, list) and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in raw):
        return tuple(raw)
    raise ConfigError(f"{where}.devices must be 'all' or a list of GPU indices, not {raw!r}")


def _mig_devices(raw: Any, where: str) -> list[tuple[str, int]]:
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}.mig-devices must map profiles to counts, not {raw!r}")
    out = []
    for profile, count in raw.items():
        if not isinstance(profile, str) or not PROFILE.match(profile):
            raise ConfigError(f"{where}.mig-devices: invalid format for {profile!r} (a MIG profile such as "
                              "1g.10gb, 1g.10gb+me or 1c.3g.20gb)")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ConfigError(f"{where}.mig-devices: invalid count for {profile!r}: {str(count)[:40]!r}")
        if count > MAX_MIG_DEVICES:  # before anything is built from it: a typo of 1000000000 is not a layout
            shown = str(count) if count < 10**12 else f"a {len(str(count))}-digit number"
            raise ConfigError(f"{where}.mig-devices: {shown} × {profile} is more than any GPU holds (at most "
                              f"{MAX_MIG_DEVICES} MIG devices: every one takes at least one of at most "
                              f"{MAX_MIG_DEVICES} compute slices)")
        out.append((profile, count))
    if out and all(count == 0 for _, count in out):
        raise ConfigError(f"{where}.mig-devices: all counts for all MigProfiles are 0")
    return out


def _filters(raw: Any, where: str) -> tuple[DeviceId, ...]:
    if raw is None or raw == "":
        return ()
    values = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{where}.device-filter must be a PCI device ID or a list of them, not {raw!r}")
    return tuple(_device_id(v, where) for v in values)


def _device_id(text: str, where: str) -> DeviceId:
    """mig-parted's NewDeviceIDFromString: ``<devicevendor>[:<subdevicevendor>]``, each a number
    in any Go base (``0x20B010DE``)."""
    parts = text.split(":")
    if len(parts) > 2:
        raise ConfigError(f"{where}.device-filter: invalid DeviceID format {text!r}: expected '<devicevendor>' or "
                          "'<devicevendor>:<subdevicevendor>'")
    try:
        values = [int(p, 0) for p in parts]
    except ValueError:
        raise ConfigError(f"{where}.device-filter: {text!r} is not a PCI device ID such as 0x20B010DE") from None
    if any(not 0 <= v <= 0xFFFFFFFF for v in values):
        raise ConfigError(f"{where}.device-filter: {text!r} is out of range")
    sub = (values[1] >> 16, values[1] & 0xFFFF) if len(values) == 2 else None
    return DeviceId(values[0] >> 16, values[0] & 0xFFFF, sub)
