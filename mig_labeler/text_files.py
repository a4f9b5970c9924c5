"""Our input files, read from disk: a config file, a mig-parted config.

Owns: reading a file a ConfigMap may hold as bounded text (unreadable, larger than 1 MiB: read no
further, a 68 MB file is not a config; not UTF-8: one ``ConfigError``), and handing it to its
pure parser (``config_file``, ``mig_parted``). The one room of the core that opens files.
"""

from __future__ import annotations

import os

from mig_labeler.config_file import FileSettings, parse_config_file
from mig_labeler.errors import ConfigError
from mig_labeler.mig_parted import MigPartedConfig, parse_mig_parted
from mig_labeler.text_document import decode_text

MAX_CONFIGMAP_BYTES = 1 << 20  # a ConfigMap holds at most 1 MiB


def read_text_file(path: str, what: str) -> str:
    """A file a ConfigMap may hold (our config, a mig-parted config), as text."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIGMAP_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"cannot read {what} {path}: {e.strerror or e}") from e
    if len(data) > MAX_CONFIGMAP_BYTES:
        raise ConfigError(f"{what} {path} is larger than 1 MiB, the most a ConfigMap holds: not a {what}?")
    return decode_text(data, f"{what} {path}")


def load_config_file(path: str | None) -> FileSettings:
    """The device-plugin/GFD config file (``--config-file``); no path: nothing set."""
    if not path:
        return FileSettings()
    return parse_config_file(read_text_file(path, "config file"), path)


def load_mig_parted(path: str) -> MigPartedConfig:
    """A mig-parted config file (``--mig-parted-config``)."""
    return parse_mig_parted(read_text_file(path, "mig-parted config"), path)


def config_names(directory: str) -> set[str]:
    """The configs in a directory of them, as config-manager lists them: every file except the
    ``..data`` entries of a mounted ConfigMap, and no directories. Unreadable: ``ConfigError``."""
    try:
        entries = list(os.scandir(directory))
    except OSError as e:
        raise ConfigError(f"cannot read the config directory {directory}: {e.strerror or e}") from e
    return {e.name for e in entries if not e.name.startswith("..") and not e.is_dir()}
