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
