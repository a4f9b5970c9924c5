"""A node that does not exist yet: N GPUs of a model, partitioned as a mig-parted config says.

Owns: ``predicted_fixture``, which turns (model, count, config name, mig-parted config) into a
node fixture: each GPU gets the layout of the first entry that selects it (device filter by the
model's PCI device ID, then ``devices``), as mig-manager picks it. The fixture then takes the
same path as any node: the placement rules refuse a layout the GPU cannot hold, the fake NVML
answers, the production reader reads, the label rules label. Without a config file, the config is
the one mig-manager generates for such a node (``generated_for``). Used by ``labels --gpu``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from mig_labeler.errors import ConfigError, FixtureError
from mig_labeler.gpu_models import gpu_models
from mig_labeler.mig_parted import MigPartedConfig
from mig_labeler.simulated.fixture import NodeFixture, parse_fixture

MAX_GPUS = 64


def parse_gpu_spec(text: str) -> tuple[str, int]:
    """``A100-SXM4-80GB:8`` → (model, 8); the count defaults to 1."""
    model, _, count = text.partition(":")
    if model not in gpu_models():
        raise ConfigError(f"--gpu {text}: unknown GPU model {model!r}{_did_you_mean(model)}; known: "
                          f"{', '.join(sorted(gpu_models()))}")
    if not count:
        return model, 1
    if not count.isdigit() or not 1 <= int(count) <= MAX_GPUS:
        raise ConfigError(f"--gpu {text}: the GPU count must be a number from 1 to {MAX_GPUS}, not {count!r}")
    return model, int(count)


def predicted_fixture(model_key: str, count: int, name: str | None, config: MigPartedConfig | None) -> NodeFixture:
    model = gpu_models()[model_key]
    gpus: list[dict[str, Any]] = []
    if name is None or config is None:  # no MIG config: whole GPUs, MIG off where it can be
        gpus = [{"model": model_key} for _ in range(count)]
    else:
        if name not in config.configs:
            raise ConfigError(f"{config.source or 'the mig-parted config'} has no config {name!r} (it has: "
                              f"{', '.join(sorted(config.configs))})")
        for index in range(count):
            entry = config.entry_for(name, index, model.pci_device_id)
            if entry is None:
                device = f"PCI device {model.pci_device_id:#010X}" if model.pci_device_id else "no known PCI device ID"
                raise ConfigError(f"{name}: no entry selects GPU {index} ({model_key}, {device}); mig-manager "
                                  "would refuse the config for this node")
            unmeasured = sorted(set(entry.layout()) & set(model.unmeasured_profiles))
            if unmeasured:
                raise ConfigError(f"{name}: {model_key} has the {', '.join(unmeasured)} profile, but the model table "
                                  "has no measured numbers for it (memory, multiprocessors, profile ID), so the "
                                  "labels of this layout cannot be predicted; mig-manager can still apply it")
            gpus.append({"model": model_key, "mig": entry.layout()} if entry.mig_enabled else {"model": model_key})
    try:
        return parse_fixture({"driver_version": "550.54.15", "cuda_driver_version": 12040, "gpus": gpus})
    except FixtureError as e:
        raise ConfigError(f"{name}: cannot be applied to {model_key} ({str(e).removeprefix('gpus[0]: ')}), "
                          "as mig-parted would refuse it") from None


def generated_for(model_key: str, count: int) -> MigPartedConfig:
    """What mig-manager generates on a node of ``count`` GPUs of the model (``generated_config``),
    read as any mig-parted config: for ``--mig-config`` without ``--mig-parted-config``."""
    from mig_labeler.mig_parted import parse_mig_parted  # noqa: PLC0415
    from mig_labeler.simulated.generated_config import generated_config, model_profiles  # noqa: PLC0415

    model = gpu_models()[model_key]
    doc = generated_config([model_profiles(model)] * count)
    where = f"the config mig-manager generates for {model_key}"
    return replace(parse_mig_parted(json.dumps(doc), where), source=where)


def _did_you_mean(given: str) -> str:
    """The model key for a name an SRE knows: a nvidia.com/gpu.product value (NVML's name with
    dashes, ``NVIDIA-H100-80GB-HBM3``, ``-SHARED`` or ``-MIG-…`` after it) or NVML's name; else
    the closest key."""
    import difflib  # noqa: PLC0415 - only on this error

    base = given.split("-MIG-", maxsplit=1)[0].removesuffix("-SHARED").replace(" ", "-").upper()
    by_product = {m.nvml_name.replace(" ", "-").upper(): key for key, m in gpu_models().items()}
    if base in by_product:
        key = by_product[base]
        return f" (did you mean {key}? its nvidia.com/gpu.product is {gpu_models()[key].nvml_name.replace(' ', '-')})"
    close = difflib.get_close_matches(given.upper(), [k.upper() for k in gpu_models()], n=1, cutoff=0.6)
    nearest = next((k for k in gpu_models() if close and k.upper() == close[0]), None)
    return f" (did you mean {nearest}?)" if nearest else ""
