"""Which device-plugin config a node uses, as NVIDIA's config-manager picks it.

Owns: ``choose_config`` (NVIDIA/k8s-device-plugin ``cmd/config-manager``'s ``updateConfigName``:
the node's label value names a config file of the directory; no value: the default config; no
default: the fallback strategies in order, ``named`` (a config called ``default``), ``single``
(the only config), ``empty`` (no config file at all); a name that does not exist is an error) and
``NodeConfigs``, the settings that drive it (config-manager's flag names and defaults). Pure: the
directory is listed by ``text_files.config_names``; the Node is read by the daemon.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from mig_labeler.errors import ConfigError

LABEL = "nvidia.com/device-plugin.config"  # config-manager's DefaultConfigLabel
NAMED_FALLBACK = "default"  # config-manager's NamedConfigFallback
STRATEGIES = ("named", "single", "empty")
DEFAULT_STRATEGIES = ("named", "single")  # the device-plugin chart's config.fallbackStrategies
EMPTY = ""  # the empty config: no config file, as config-manager links /dev/null


@dataclass(frozen=True, slots=True)
class NodeConfigs:
    """A directory of named configs (the mounted multi-key ConfigMap) and how a node picks one."""

    directory: str
    label: str = LABEL
    default: str = ""
    fallbacks: tuple[str, ...] = DEFAULT_STRATEGIES


def parse_fallbacks(text: str, where: str = "--fallback-strategies") -> tuple[str, ...]:
    """A comma-separated list, as urfave/cli reads a StringSlice from a flag or variable."""
    found = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in found if s not in STRATEGIES]
    if unknown:  # config-manager fails at its first fallback it does not know; we say so at start
        raise ConfigError(f"{where}: unknown fallback strategy {unknown[0]!r}: use named, single or empty")
    return found


def choose_config(value: str, available: Collection[str], default: str, fallbacks: Sequence[str]) -> str:
    """The config's name (``EMPTY``: no config file) for a node whose label has ``value`` ("" when
    it has none). ``ConfigError`` when config-manager would fail: no configs at all, a value or a
    default naming none of them, every fallback failing."""
    if not available:
        raise ConfigError("no device-plugin configs to choose from (the config directory is empty)")
    names = ", ".join(sorted(available)[:8])
    if value:
        if value not in available:
            raise ConfigError(f"the node's label names config {value!r}, which does not exist (there are: {names})")
        return value
    if default:
        if default not in available:
            raise ConfigError(f"the default config {default!r} does not exist (there are: {names})")
        return default
    for fallback in fallbacks:
        if fallback == "named" and NAMED_FALLBACK in available:
            return NAMED_FALLBACK
        if fallback == "single" and len(available) == 1:
            return next(iter(available))
        if fallback == "empty":
            return EMPTY
    raise ConfigError(f"the node names no config, there is no default, and every fallback ({', '.join(fallbacks)}) "
                      f"failed (there are: {names})")
