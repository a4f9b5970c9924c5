"""Shared test helpers: fakes at the library boundary, real code above them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mig_labeler.config import Config, MigStrategy, parse_sharing
from mig_labeler.discovery import TopologySource
from mig_labeler.fake_nvml import FakeNvml
from mig_labeler.fixture import parse_fixture
from mig_labeler.labels import compute_labels
from mig_labeler.topology import NodeTopology

FIXTURES = Path(__file__).parent / "fixtures"
BUNDLED = Path(__file__).parents[1] / "mig_labeler" / "fixtures"
STARTED_AT = 1_700_000_000


def fixture_path(name: str) -> Path:
    for folder in (FIXTURES, BUNDLED):
        path = folder / f"{name}.yaml"
        if path.exists():
            return path
    raise FileNotFoundError(name)


def fake_from(doc_or_name: Any) -> FakeNvml:
    if isinstance(doc_or_name, str):
        return FakeNvml(fixture_path(doc_or_name))
    return FakeNvml(parse_fixture(doc_or_name))


def read(doc_or_name: Any) -> NodeTopology:
    fake = fake_from(doc_or_name)
    source = TopologySource(fake, "", fake)
    return source.read()


def make_config(strategy: str = "none", sharing: Any = None, **overrides: Any) -> Config:
    overrides.setdefault("no_timestamp", True)
    return Config(mig_strategy=MigStrategy(strategy), sharing=parse_sharing(sharing), **overrides)


def labels_of(doc_or_name: Any, strategy: str = "none", sharing: Any = None, **overrides: Any) -> dict[str, str]:
    return compute_labels(read(doc_or_name), make_config(strategy, sharing, **overrides), STARTED_AT)


def write_fixture(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


