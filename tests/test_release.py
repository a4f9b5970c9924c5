"""One version everywhere: the package, the chart's version and appVersion, and the image the
manifests and the chart deploy."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from mig_labeler import __version__

ROOT = Path(__file__).resolve().parents[1]


def test_package_chart_and_images_agree_on_the_version():
    chart = yaml.safe_load((ROOT / "deployments" / "helm" / "mig-labeler" / "Chart.yaml").read_text())
    assert chart["version"] == chart["appVersion"] == __version__
    images = set()
    for path in (ROOT / "manifests").rglob("*.yaml"):
        images |= set(re.findall(r"image: (ghcr\.io/mig-labeler/mig-labeler:\S+)", path.read_text()))
    assert images == {f"ghcr.io/mig-labeler/mig-labeler:{__version__}"}
    values = yaml.safe_load((ROOT / "deployments" / "helm" / "mig-labeler" / "values.yaml").read_text())
    assert values["image"]["repository"] == "ghcr.io/mig-labeler/mig-labeler" and values["image"]["tag"] == ""


def test_the_release_workflow_checks_the_tag_against_both_versions():
    text = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    assert "mig_labeler.__version__" in text and "Chart.yaml" in text
    assert "linux/amd64,linux/arm64" in text and "sbom: true" in text and "provenance:" in text


WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def test_every_action_is_pinned_by_commit_with_its_release_named():
    uses = [(path.name, line.strip()) for path in WORKFLOWS for line in path.read_text().splitlines()
            if re.match(r"\s*(- )?uses:", line)]
    assert uses
    loose = [u for u in uses if not re.search(r"uses: [\w./-]+@[0-9a-f]{40} # v\d", u[1])]
    assert loose == []


def test_the_release_signs_image_and_chart_keylessly_and_attests_the_sbom():
    text = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    assert "id-token: write" in text
    assert 'cosign sign --yes "${IMAGE}@${DIGEST}"' in text
    assert "cosign attest --yes --type cyclonedx --predicate dist/sbom.cdx.json" in text
    assert 'cosign sign --yes "${CHARTS}/mig-labeler@${digest}"' in text
    assert "python3 -m tools.sbom dist/sbom.cdx.json" in text and "python3 -m tools.lock --check" in text


def test_the_dockerfile_bases_are_pinned_by_digest_with_their_tags_named():
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith(("ARG BUILD_BASE=", "ARG BASE=")):
            image = line.split("=", 1)[1]
            assert re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", image), line
            assert lines[i - 1] == f"# {image.split('@')[0].removeprefix('docker.io/library/')}", lines[i - 1]


def test_the_sbom_lists_what_the_image_installs_from_the_lock():
    """The same generation the release runs (``make sbom``): CycloneDX 1.5, mig-labeler and every
    locked package the image's Python 3.11 on Linux gets, each with its package URL and hashes."""
    from tools import lock, sbom

    doc = sbom.sbom(lock.LOCK.read_text())
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.5"
    assert doc["metadata"]["component"]["version"] == __version__
    names = {c["name"] for c in doc["components"]}
    pinned = lock.pins(lock.LOCK.read_text())
    assert {"kubernetes", "urllib3", "nvidia-ml-py", "pydantic-core"} <= names <= set(pinned)
    assert "async-timeout" in pinned and "async-timeout" not in names  # Python < 3.11 only
    for component in doc["components"]:
        assert component["purl"] == f"pkg:pypi/{component['name']}@{pinned[component['name']][0]}"
        assert [h["content"] for h in component["hashes"]] == pinned[component["name"]][1]
