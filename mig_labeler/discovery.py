"""Where the node's facts come from: real NVML or a fixture, plus the DMI machine type.

Owns: choosing ``pynvml`` or ``FakeNvml`` (``--fixture``) and reading the machine-type file. It
is part of the read shell; the NVML call sequence itself lives in ``nvml_reader``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mig_labeler.config import DEFAULT_MACHINE_TYPE_FILE
from mig_labeler.fake_nvml import FakeNvml
from mig_labeler.nvml_reader import ReaderCache, read_topology
from mig_labeler.topology import NodeTopology


@dataclass
class TopologySource:
    nvml: Any
    machine_type_file: str | None  # None: not given by the user
    fake: FakeNvml | None = None
    cache: ReaderCache = field(default_factory=ReaderCache)

    def read(self) -> NodeTopology:
        topology = read_topology(self.nvml, cache=self.cache)
        return replace(topology, machine_type=self.machine_type())

    def machine_type(self) -> str | None:
        """A file the user named wins (flag > env > config file > fixture > default); else a
        fixture's ``machine_type`` stands in for the DMI file (fixtures.md); else the DMI file."""
        if self.machine_type_file is not None:
            return read_machine_type(self.machine_type_file)
        if self.fake is not None:
            return self.fake.fixture.machine_type
        return read_machine_type(DEFAULT_MACHINE_TYPE_FILE)


def open_source(fixture: str | None, machine_type_file: str | None) -> TopologySource:
    if fixture:
        fake = FakeNvml(fixture)
        return TopologySource(fake, machine_type_file, fake)
    import pynvml  # noqa: PLC0415 - loaded only when real NVML is wanted

    return TopologySource(pynvml, machine_type_file)


def read_machine_type(path: str) -> str | None:
    """GFD: unreadable (or the flag empty) → None, labelled ``unknown``; whitespace trimmed."""
    if not path:
        return None
    try:
        return Path(path).read_text(errors="replace").strip()
    except OSError:
        return None
