"""Sources, the first stage: where the node's facts come from.

Owns: ``TopologySource`` (real NVML, or the fake one with ``--fixture``; the machine-type file;
the PCI config space for vGPU; the PCI bus compared with NVML's GPUs). The NVML call sequence lives
in ``sources.nvml``, the vGPU scan in ``sources.vgpu``, the bus scan in ``sources.pci_bus``. The
simulated node (``simulated/``: fake NVML, fixtures, fake sysfs) is imported only when a fixture or
a prediction is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from mig_labeler.config import DEFAULT_MACHINE_TYPE_FILE
from mig_labeler.errors import AllGpusLost, NvmlUnavailable
from mig_labeler.sources.driver_root import LIBRARY_NOT_FOUND, load_from_driver_root
from mig_labeler.sources.machine import read_machine_type, read_machine_type_checked
from mig_labeler.sources.nvml import ReaderCache, read_topology
from mig_labeler.sources.pci_bus import gpus_on_bus, missing_from_nvml
from mig_labeler.sources.vgpu import read_vgpu
from mig_labeler.topology import NodeTopology, Vgpu

if TYPE_CHECKING:
    from mig_labeler.mig_parted import MigPartedConfig
    from mig_labeler.simulated.fake_nvml import FakeNvml

SYSFS = "/sys"


@dataclass
class TopologySource:
    nvml: Any
    machine_type_file: str | None  # None: not given by the user
    fake: FakeNvml | None = None
    sysfs: str = SYSFS  # the vGPU scan reads <sysfs>/bus/pci/devices
    cache: ReaderCache = field(default_factory=ReaderCache)
    driver_root: str | None = None  # where to look for libnvidia-ml.so.1 when the loader cannot find it
    warnings: list[str] = field(default_factory=list)  # what the last read could not use, for the user

    def read(self) -> NodeTopology:
        try:
            topology = read_topology(self.nvml, cache=self.cache)
        except NvmlUnavailable as e:
            if e.code != LIBRARY_NOT_FOUND or not self.driver_root or self.fake is not None:
                raise
            load_from_driver_root(self.nvml, self.driver_root)  # raises, naming the paths tried
            topology = read_topology(self.nvml, cache=self.cache)
        if topology.lost and not topology.gpus:
            raise AllGpusLost(topology.lost)
        missing = missing_from_nvml(gpus_on_bus(self.sysfs), topology.nvml_bus_ids)
        topology = replace(topology, machine_type=self.machine_type(), vgpu=self.vgpu(), missing_from_nvml=missing)
        self.warnings += [f"{gpu.describe()} is lost and left out of the labels ({gpu.error}); gpu.count still "
                          "counts it, gpu.healthy-count does not" for gpu in topology.lost]
        self.warnings += [f"the PCI bus shows NVIDIA GPU {address} (bound to the nvidia driver) but NVML does not "
                          "list it: fallen off the bus?" for address in topology.missing_from_nvml]
        return topology

    def vgpu(self) -> Vgpu | None:
        return read_vgpu(self.sysfs)

    def machine_type(self) -> str | None:
        """A file the user named wins (flag > env > config file > fixture > default); else a
        fixture's ``machine_type`` stands in for the DMI file (fixtures.md); else the DMI file.
        A file the user named that cannot be read is a warning; the default path stays quiet
        (a VM has no DMI product name, and GFD labels ``unknown`` there too)."""
        self.warnings = []
        if self.machine_type_file is not None:
            value, problem = read_machine_type_checked(self.machine_type_file)
            if problem:
                self.warnings.append(f"cannot read the machine type file {self.machine_type_file}: {problem}; "
                                     "nvidia.com/gpu.machine is unknown")
            return value
        if self.fake is not None:
            return self.fake.fixture.machine_type
        return read_machine_type(DEFAULT_MACHINE_TYPE_FILE)


def open_source(fixture: str | None, machine_type_file: str | None, driver_root: str | None = None) -> TopologySource:
    if fixture:  # the real pynvml binding over a fake libnvidia-ml answering from the fixture
        from mig_labeler.simulated.fake_sysfs import write_fake_sysfs
        from mig_labeler.simulated.nvml_library import FakeNvmlLibrary, bind

        library = FakeNvmlLibrary(fixture)
        return TopologySource(bind(library), machine_type_file, library.fake,
                              sysfs=str(write_fake_sysfs(library.fixture)))
    import pynvml  # loaded only when real NVML is wanted

    return TopologySource(pynvml, machine_type_file, driver_root=driver_root)


def open_predicted_source(gpu: str, mig_config: str | None, mig_parted: MigPartedConfig | None) -> TopologySource:
    """A node that does not exist yet (``labels --gpu MODEL:N --mig-config NAME``): the layout the
    mig-parted config describes, through the fake NVML, as any fixture."""
    from mig_labeler.simulated.fake_nvml import FakeNvml
    from mig_labeler.simulated.fake_sysfs import write_fake_sysfs
    from mig_labeler.simulated.predict import parse_gpu_spec, predicted_fixture

    model, count = parse_gpu_spec(gpu)
    if mig_config and mig_parted is None:  # the config mig-manager (GPU Operator 26.3+) generates for such a node
        from mig_labeler.simulated.predict import generated_for  # noqa: PLC0415

        mig_parted = generated_for(model, count)
    fake = FakeNvml(predicted_fixture(model, count, mig_config, mig_parted))
    return TopologySource(fake, None, fake, sysfs=str(write_fake_sysfs(fake.fixture)))
