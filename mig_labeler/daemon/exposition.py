"""The Prometheus text format that ``/metrics`` serves, as ``prometheus_client.generate_latest`` writes it.

Owns: ``render`` and ``CONTENT_TYPE``. Why not the client's own function: its module,
``prometheus_client.exposition``, imports urllib.request, wsgiref and gzip for the push gateway
and the client's own servers: 0.7 MiB of the node daemon's memory for one loop
(``deferred_imports``). ``render`` is that loop, for metric and label names in the classic
character set (every name ``Metrics`` registers; a test checks them); the tests compare its
output with ``generate_latest``'s, byte for byte, on the daemon's own registry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mig_labeler.deferred_imports import load

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# The client's family types in the text format: the suffix of the family's name, and the type written.
_TEXT_TYPE = {"counter": ("_total", "counter"), "info": ("_info", "gauge"), "stateset": ("", "gauge"),
              "gaugehistogram": ("", "histogram"), "unknown": ("", "untyped")}
# OpenMetrics-only samples: each written after its family, as a gauge family of its own.
_OPENMETRICS_ONLY = ("_created", "_gsum", "_gcount")


def render(registry: CollectorRegistry) -> bytes:
    number: Callable[[float], str] = load("prometheus_client.utils").floatToGoString  # Go's float format
    out: list[str] = []
    for metric in registry.collect():
        suffix, text_type = _TEXT_TYPE.get(metric.type, ("", metric.type))
        _family(out, metric.name + suffix, text_type, metric.documentation)
        apart: dict[str, list[str]] = {}
        for sample in metric.samples:
            kind = next((k for k in _OPENMETRICS_ONLY if sample.name == metric.name + k), None)
            line = _line(sample, number)
            if kind is None:
                out.append(line)
            else:
                apart.setdefault(kind, []).append(line)
        for kind, lines in sorted(apart.items()):
            _family(out, metric.name + kind, "gauge", metric.documentation)
            out.extend(lines)
    return "".join(out).encode("utf-8")


def _family(out: list[str], name: str, text_type: str, documentation: str) -> None:
    help_text = documentation.replace("\\", r"\\").replace("\n", r"\n")
    out.append(f"# HELP {name} {help_text}\n")
    out.append(f"# TYPE {name} {text_type}\n")


def _line(sample: Any, number: Callable[[float], str]) -> str:
    labels = ",".join(f'{key}="{_label_value(value)}"' for key, value in sorted(sample.labels.items()))
    series = f"{sample.name}{{{labels}}}" if labels else sample.name
    stamp = "" if sample.timestamp is None else f" {int(float(sample.timestamp) * 1000):d}"  # milliseconds
    return f"{series} {number(sample.value)}{stamp}\n"


def _label_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
