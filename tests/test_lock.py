"""requirements.lock agrees with pyproject.toml (tools/lock.py): the image installs it with
--require-hashes, so a dependency changed without ``make lock`` fails here, not in a release."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from tools import lock

ROOT = Path(__file__).resolve().parents[1]


def test_the_lock_pins_every_dependency_in_range_with_hashes_and_is_current():
    assert lock.problems() == []
    pinned = lock.pins(lock.LOCK.read_text())
    assert {"kubernetes", "nvidia-ml-py", "click", "pyyaml", "tenacity", "prometheus-client", "urllib3"} <= set(pinned)
    assert all(len(hashes) >= 1 for _, hashes in pinned.values())


def copies(tmp_path: Path) -> tuple[Path, Path]:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copy(lock.LOCK, tmp_path / "requirements.lock")
    return tmp_path / "pyproject.toml", tmp_path / "requirements.lock"


def test_a_dependency_changed_without_relocking_fails(tmp_path):
    pyproject, locked = copies(tmp_path)
    pyproject.write_text(pyproject.read_text().replace('"click>=8.1",', '"click>=8.1",\n    "rich>=13",'))
    found = lock.problems(pyproject, locked)
    assert any("not resolved from this pyproject.toml" in p for p in found)
    assert "rich is a dependency but requirements.lock does not pin it" in found


def test_a_range_the_pin_falls_outside_and_a_pin_without_hash_fail(tmp_path):
    pyproject, locked = copies(tmp_path)
    pyproject.write_text(pyproject.read_text().replace('"tenacity>=8.3"', '"tenacity>=99"'))
    text = re.sub(r"(click==\S+) \\\n(?:    --hash=sha256:[0-9a-f]+(?: \\)?\n)+", r"\1\n", locked.read_text())
    locked.write_text(text)
    found = lock.problems(pyproject, locked)
    assert any(p.startswith("requirements.lock pins tenacity==") and "outside >=99" in p for p in found)
    assert any(p.startswith("requirements.lock pins click==") and "without a hash" in p for p in found)
