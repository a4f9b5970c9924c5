"""YAML parsing with libyaml when PyYAML has it (``yaml.CSafeLoader``, in the wheels we install,
several times faster than the pure-Python loader), else the pure ``SafeLoader``: same safe
constructors, the same ``yaml.YAMLError`` on bad input. Every YAML this package reads goes through
here (config files, kubeconfigs, fixtures, the files ``check`` reads)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text: str) -> Any:
    return yaml.load(text, Loader=Loader)  # noqa: S506 - a safe loader (CSafeLoader or SafeLoader)


def load_all(text: str) -> Iterator[Any]:
    return yaml.load_all(text, Loader=Loader)  # noqa: S506 - a safe loader
