"""A CycloneDX 1.5 SBOM of the image's Python contents, from the locked set (requirements.lock).

``python -m tools.sbom [OUT]`` (``make sbom``; the release workflow runs the same command and
attests the result to the image with cosign) writes mig-labeler itself and every locked package
that the image's Python (3.11, Linux) installs, each with its package URL and the SHA-256 hashes the
lock allows for its files. The lock's environment markers decide which packages the image gets, as
pip decides them in the Dockerfile.
"""

from __future__ import annotations

import json
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

from packaging.markers import Marker

from mig_labeler import __version__
from tools.lock import LOCK, ROOT, entries

IMAGE_PYTHON = {"python_version": "3.11", "python_full_version": "3.11.2", "sys_platform": "linux",
                "platform_system": "Linux", "os_name": "posix", "implementation_name": "cpython",
                "platform_python_implementation": "CPython", "platform_machine": "x86_64"}
def components(lock_text: str) -> list[dict]:
    found = []
    for pin in entries(lock_text):
        if pin.marker and not Marker(pin.marker).evaluate(IMAGE_PYTHON):
            continue
        purl = f"pkg:pypi/{pin.name}@{pin.version}"
        found.append({"type": "library", "bom-ref": purl, "name": pin.name, "version": pin.version, "purl": purl,
                      "hashes": [{"alg": "SHA-256", "content": h} for h in pin.hashes]})
    return found


def sbom(lock_text: str, timestamp: datetime | None = None) -> dict:
    me = {"type": "application", "bom-ref": f"pkg:pypi/mig-labeler@{__version__}", "name": "mig-labeler",
          "version": __version__, "purl": f"pkg:pypi/mig-labeler@{__version__}",
          "licenses": [{"license": {"id": "Apache-2.0"}}]}
    parts = components(lock_text)
    return {
        "bomFormat": "CycloneDX", "specVersion": "1.5", "serialNumber": f"urn:uuid:{uuid.uuid4()}", "version": 1,
        "metadata": {"timestamp": (timestamp or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                     "tools": {"components": [{"type": "application", "name": "mig-labeler tools/sbom.py"}]},
                     "component": me},
        "components": parts,
        "dependencies": [{"ref": me["bom-ref"], "dependsOn": [p["bom-ref"] for p in parts]}],
    }


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "sbom.cdx.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = sbom(LOCK.read_text())
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}: CycloneDX 1.5, mig-labeler {__version__} and {len(doc['components'])} locked packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
