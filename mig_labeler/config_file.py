"""The device-plugin/GFD config file format (gfd-reference §4.1): text in, ``FileSettings`` or
``ConfigError`` out.

Owns: ``parse_config_file``, the sharing block (``parse_sharing``) and the warnings a valid file
earns (unknown keys, a hidden time-slicing block, repeated resources). Pure: the file is read by
``text_files``; the YAML is parsed by ``text_document``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from mig_labeler import text_document
from mig_labeler.config import (
    GO_MAX_INT,
    NO_SHARING,
    MigStrategy,
    SharedResource,
    Sharing,
    parse_duration,
    parse_mig_strategy,
)
from mig_labeler.errors import ConfigError
from mig_labeler.label_names import PREFIX


@dataclass(frozen=True, slots=True)
class FileSettings:
    """What a config file sets; None means "not set in the file"."""

    mig_strategy: MigStrategy | None = None
    fail_on_init_error: bool | None = None
    oneshot: bool | None = None
    no_timestamp: bool | None = None
    sleep_interval: float | None = None
    machine_type_file: str | None = None
    use_node_feature_api: bool | None = None  # flags.useNodeFeatureAPI: true selects the nodefeature sink
    output_file: str | None = None  # flags.gfd.outputFile: the file sink's path only, never a mode switch
    sharing: Sharing = NO_SHARING
    warnings: tuple[str, ...] = ()  # accepted, but probably not what the author meant


def _require_bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, not {value!r}")
    return value


def _resource_name(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw:
        raise ConfigError(f"{where}.name must be a non-empty string")
    name = raw if "/" in raw else PREFIX + raw
    prefix, _, short = name.partition("/")
    if len(name) > 63 or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", short):
        raise ConfigError(
            f"{where}.name {raw!r} is not a valid resource name (write mig-1g.10gb.me, not mig-1g.10gb+me)"
        )
    if prefix + "/" != PREFIX:
        raise ConfigError(f"{where}.name {raw!r} must be in the nvidia.com/ namespace")
    return name


def _parse_sharing_block(block: Any, kind: str) -> Sharing:
    where = f"sharing.{'mps' if kind == 'mps' else 'timeSlicing'}"
    if not isinstance(block, dict):
        raise ConfigError(f"{where} must be a mapping")
    rename_by_default = _require_bool(block.get("renameByDefault", False), f"{where}.renameByDefault")
    entries = block.get("resources")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}.resources must be a non-empty list")
    resources = []
    for i, entry in enumerate(entries):
        at = f"{where}.resources[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{at} must be a mapping with name and replicas")
        name = _resource_name(entry.get("name"), at)
        replicas = entry.get("replicas")
        if isinstance(replicas, bool) or not isinstance(replicas, int) or not 2 <= replicas <= GO_MAX_INT:
            raise ConfigError(f"{at}.replicas must be an integer from 2 to {GO_MAX_INT}, not {replicas!r}")
        resources.append(SharedResource(name, replicas, renamed=rename_by_default))
    return Sharing(kind, tuple(resources))


def parse_sharing(raw: Any) -> Sharing:
    if raw is None:
        return NO_SHARING
    if not isinstance(raw, dict):
        raise ConfigError("sharing must be a mapping")
    # Both blocks must be valid (the device plugin decodes both); an MPS block then hides the
    # time-slicing block, as in GFD.
    time_slicing = None if raw.get("timeSlicing") is None else _parse_sharing_block(raw["timeSlicing"], "time-slicing")
    if raw.get("mps") is not None:
        return _parse_sharing_block(raw["mps"], "mps")
    return time_slicing or NO_SHARING


def _load_document(text: str, source: str) -> dict[str, Any]:
    doc = text_document.load_document(text, f"config file {source}")
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"config file {source} must hold a mapping at the top level")
    return doc


def parse_config_file(text: str, source: str = "<config>") -> FileSettings:
    doc = _load_document(text, source)
    version = doc.get("version", "v1")
    if version != "v1":
        raise ConfigError(f"config file {source}: unknown version {version!r} (only v1 is supported)")
    flags = doc.get("flags") or {}
    if not isinstance(flags, dict) or not isinstance(flags.get("gfd") or {}, dict):
        raise ConfigError(f"config file {source}: flags and flags.gfd must be mappings")
    gfd = flags.get("gfd") or {}
    try:
        settings = _file_settings(flags, gfd, doc.get("sharing"))
    except ConfigError as e:
        raise ConfigError(f"config file {source}: {e}") from None
    return replace(settings, warnings=tuple(f"config file {source}: {w}" for w in config_warnings(doc)))


# Keys of the device-plugin/GFD config format (gfd-reference §4.1). GFD ignores unknown keys
# silently; we accept them too (one file serves the device plugin, whose keys we do not use) but
# warn, because a misspelt key such as `migstrategy` otherwise changes nothing without a word.
_KNOWN = {
    "": {"version", "flags", "sharing", "resources", "imex"},
    "flags": {"migStrategy", "failOnInitError", "useNodeFeatureAPI", "deviceDiscoveryStrategy", "gfd", "plugin",
              "mpsRoot", "nvidiaDriverRoot", "nvidiaDevRoot", "gdrcopyEnabled", "gdsEnabled", "mofedEnabled"},
    "flags.gfd": {"oneshot", "noTimestamp", "sleepInterval", "outputFile", "machineTypeFile"},
    "sharing": {"timeSlicing", "mps"},
    "sharing.block": {"renameByDefault", "failRequestsGreaterThanOne", "resources"},
    "sharing.resource": {"name", "replicas", "rename", "devices"},
}


def config_warnings(doc: dict[str, Any]) -> list[str]:
    """What a valid file says that is probably a mistake: unknown keys, an MPS block that hides a
    time-slicing block, a resource listed twice (the first entry wins, as in GFD)."""
    warnings = _unknown_keys(doc, "", "")
    flags = doc.get("flags") or {}
    warnings += _unknown_keys(flags, "flags", "flags.")
    warnings += _unknown_keys(flags.get("gfd") or {}, "flags.gfd", "flags.gfd.")
    sharing = doc.get("sharing") or {}
    warnings += _unknown_keys(sharing, "sharing", "sharing.")
    if sharing.get("mps") is not None and sharing.get("timeSlicing") is not None:
        warnings.append("sharing has both mps and timeSlicing; mps is used and timeSlicing is ignored, as in GFD")
    for kind in ("timeSlicing", "mps"):
        block = sharing.get(kind) or {}
        warnings += _unknown_keys(block, "sharing.block", f"sharing.{kind}.")
        seen: set[str] = set()
        repeats: list[str] = []
        for i, entry in enumerate(block.get("resources") or []):
            warnings += _unknown_keys(entry, "sharing.resource", f"sharing.{kind}.resources[{i}].")
            name = _resource_name(entry.get("name"), f"sharing.{kind}.resources[{i}]")
            if name in seen:
                repeats.append(f"resources[{i}] repeats {name}")
            seen.add(name)
        if repeats:  # one line however many: a generated file can repeat an entry thousands of times
            more = f" and {len(repeats) - 3} more" if len(repeats) > 3 else ""
            warnings.append(f"sharing.{kind}: {', '.join(repeats[:3])}{more}; the first entry of each is used")
    return _summarised(warnings)


MAX_WARNINGS = 20


def _summarised(warnings: list[str]) -> list[str]:
    """At most MAX_WARNINGS lines: a file with 200,000 unknown keys must not log 200,000 lines."""
    if len(warnings) <= MAX_WARNINGS:
        return warnings
    return [*warnings[:MAX_WARNINGS], f"... and {len(warnings) - MAX_WARNINGS} more warnings about this file"]


def _unknown_keys(section: dict[str, Any], kind: str, where: str) -> list[str]:
    return [f"unknown key {where}{k} is ignored" for k in section if k not in _KNOWN[kind]]


def _optional(section: dict[str, Any], key: str, where: str) -> bool | None:
    return None if section.get(key) is None else _require_bool(section[key], where)


def _optional_str(section: dict[str, Any], key: str, where: str) -> str | None:
    value = section.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where} must be a string")
    return value


def _file_settings(flags: dict[str, Any], gfd: dict[str, Any], sharing: Any) -> FileSettings:
    strategy = flags.get("migStrategy")
    interval = gfd.get("sleepInterval")
    if interval is not None and not isinstance(interval, str):
        raise ConfigError(f"flags.gfd.sleepInterval must be a duration string such as 60s, not {interval!r}")
    output = _optional_str(gfd, "outputFile", "flags.gfd.outputFile")
    return FileSettings(
        mig_strategy=None if strategy is None else parse_mig_strategy(str(strategy)),
        fail_on_init_error=_optional(flags, "failOnInitError", "flags.failOnInitError"),
        oneshot=_optional(gfd, "oneshot", "flags.gfd.oneshot"),
        no_timestamp=_optional(gfd, "noTimestamp", "flags.gfd.noTimestamp"),
        sleep_interval=None if interval is None else parse_duration(interval, "flags.gfd.sleepInterval"),
        machine_type_file=_optional_str(gfd, "machineTypeFile", "flags.gfd.machineTypeFile"),
        use_node_feature_api=_optional(flags, "useNodeFeatureAPI", "flags.useNodeFeatureAPI"),
        output_file=None if output is None else (output or "-"),  # GFD: "" is standard output
        sharing=parse_sharing(sharing),
    )
