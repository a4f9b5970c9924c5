"""requirements.lock: every runtime dependency of mig-labeler pinned, with the hashes of its files.

``python -m tools.lock`` (``make lock``) resolves ``[project.dependencies]`` of pyproject.toml with
uv (``uv pip compile --universal --generate-hashes``: one lock for every platform and Python the
package supports) and writes requirements.lock, headed by a digest of what it was resolved from.
``python -m tools.lock --check`` (a test runs it) fails when pyproject.toml's dependencies or
``requires-python`` changed since, when a dependency is missing from the lock or pinned outside its
range, or when a pin has no hash. The image installs from this file with ``--require-hashes``.

Why hashed requirements and not ``uv.lock``: the image's build stage has only pip, which enforces
hashes natively; a uv.lock would need uv inside the image build for the same guarantee.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
DIGEST_LINE = "# resolved from pyproject.toml: sha256 "
UV = "uv==0.13.9"


def source_digest(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """What the lock depends on: the dependencies (normalized) and requires-python."""
    project = tomllib.loads(pyproject.read_text())["project"]
    what = {"dependencies": sorted(str(Requirement(d)) for d in project["dependencies"]),
            "requires-python": project.get("requires-python", "")}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Pin:
    name: str  # canonical (PEP 503)
    version: str
    marker: str  # the environment marker after ';', "" for every environment
    hashes: list[str]


PIN = re.compile(r"(?P<name>[A-Za-z0-9._-]+)==(?P<version>[^\s;\\]+)\s*(?:;\s*(?P<marker>[^\\\n]+))?")


def entries(text: str) -> list[Pin]:
    """Every pin of a hashed requirements file, in order."""
    found = []
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        head = PIN.match(block)
        if head:
            found.append(Pin(canonicalize_name(head.group("name")), head.group("version"),
                             (head.group("marker") or "").strip(), re.findall(r"--hash=sha256:([0-9a-f]{64})", block)))
    return found


def pins(text: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of every pin in a hashed requirements file."""
    return {pin.name: (pin.version, pin.hashes) for pin in entries(text)}


def problems(pyproject: Path = ROOT / "pyproject.toml", lock: Path = LOCK) -> list[str]:
    if not lock.exists():
        return [f"{lock.name} is missing: run make lock"]
    text = lock.read_text()
    said = next((line[len(DIGEST_LINE):].strip() for line in text.splitlines() if line.startswith(DIGEST_LINE)), None)
    found = []
    if said != source_digest(pyproject):
        found.append(f"{lock.name} was not resolved from this pyproject.toml's dependencies (changed since): "
                     "run make lock")
    pinned = pins(text)
    for dependency in tomllib.loads(pyproject.read_text())["project"]["dependencies"]:
        requirement = Requirement(dependency)
        name = canonicalize_name(requirement.name)
        if name not in pinned:
            found.append(f"{requirement.name} is a dependency but {lock.name} does not pin it")
        elif not requirement.specifier.contains(pinned[name][0], prereleases=True):
            found.append(f"{lock.name} pins {requirement.name}=={pinned[name][0]}, outside {requirement.specifier}")
    found += [f"{lock.name} pins {name}=={version} without a hash" for name, (version, hashes) in pinned.items()
              if not hashes]
    return found


def write_lock() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "venv", f"{tmp}/uv"], check=True)
        subprocess.run([f"{tmp}/uv/bin/pip", "install", "--quiet", UV], check=True)
        requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
        lowest = re.search(r"\d+\.\d+", requires)
        subprocess.run([f"{tmp}/uv/bin/uv", "pip", "compile", "--quiet", "pyproject.toml", "--universal",
                        "--generate-hashes", "--no-header", "--python-version", lowest.group(0) if lowest else "3.10",
                        "-o", f"{tmp}/requirements.lock"], check=True, cwd=ROOT)
        body = Path(f"{tmp}/requirements.lock").read_text()
    LOCK.write_text(f"# Runtime dependencies of mig-labeler, pinned with hashes (make lock writes this file;\n"
                    f"# the image installs it with --require-hashes; a test fails when it is stale).\n"
                    f"{DIGEST_LINE}{source_digest()}\n{body}")


def main() -> int:
    if sys.argv[1:] == ["--check"]:
        found = problems()
        for line in found:
            print(f"lock: {line}", file=sys.stderr)
        return 1 if found else 0
    write_lock()
    print(f"wrote {LOCK.relative_to(ROOT)}: {len(pins(LOCK.read_text()))} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
