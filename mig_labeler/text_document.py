"""Text documents as we accept them: UTF-8 (``decode_text``), and YAML or JSON parsed with libyaml
when PyYAML has it. Pure: bytes or text in, a document or our error out; ``text_files`` reads files.

YAML parsing with libyaml when PyYAML has it (``yaml.CSafeLoader``, in the wheels we install,
several times faster than the pure-Python loader), else the pure ``SafeLoader``: same safe
constructors, the same ``yaml.YAMLError`` on bad input. Every YAML this package reads goes through
here (config files, kubeconfigs, fixtures, the files ``check`` reads)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import yaml

from mig_labeler.errors import ConfigError

Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text: str) -> Any:
    return yaml.load(text, Loader=Loader)  # noqa: S506 - a safe loader (CSafeLoader or SafeLoader)


def load_all(text: str) -> Iterator[Any]:
    return yaml.load_all(text, Loader=Loader)  # noqa: S506 - a safe loader


def load_document(text: str, what: str, error: type[ConfigError] = ConfigError, as_json: bool | None = None) -> Any:
    """One YAML or JSON document (JSON when ``as_json``, or when None and it starts with ``{``);
    a parse error is one ``error`` naming ``what`` (``config file /etc/x.yaml``) and the first
    line of the reason."""
    try:
        if as_json if as_json is not None else text.lstrip().startswith("{"):
            return json.loads(text)
        return load(text)
    except RecursionError:
        raise error(f"{what} is nested too deeply") from None
    except (ValueError, yaml.YAMLError) as e:
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise error(f"{what} is not valid YAML or JSON: {first}") from None


def decode_text(data: bytes, what: str, error: type[ConfigError] = ConfigError) -> str:
    """Files we read must be UTF-8, as YAML and JSON require; say where they are not. The one
    place for it: config files, fixtures (``error=FixtureError``), kubeconfigs, workload files."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{what} is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})") from None


def duplicate_key(text: str) -> str | None:
    """The first mapping key given twice in the YAML ``text`` (``line 7: 'all-balanced'``), or None.
    PyYAML keeps the last silently; Go's YAML decoders (mig-parted's) refuse the document. A
    document that does not parse has no duplicate here: ``load_document`` says what is wrong."""
    try:
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (yaml.YAMLError, RecursionError, ValueError):
        return None
    seen: set[int] = set()
    todo = [root] if root is not None else []
    while todo:
        node = todo.pop()
        if id(node) in seen:  # an alias: the same node again
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in keys:
                        return f"line {key.start_mark.line + 1}: {key.value!r}"
                    keys.add(key.value)
                todo += [key, value]
        elif isinstance(node, yaml.SequenceNode):
            todo += node.value
    return None
