"""The README and docs/ stay right for a newcomer: links resolve, the GFD flag table is generated
from the flags the CLI accepts, paths named in them exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tools.gen_gfd_table import block

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """GitHub's header anchors: lowercase, punctuation dropped, spaces to dashes."""
    found = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_relative_link_and_anchor_resolves(page):
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{page.name}: {target}"


def test_the_readme_lists_every_gfd_flag_as_the_cli_accepts_it():
    assert block() in (ROOT / "README.md").read_text(), "run python tools/gen_gfd_table.py"


@pytest.mark.parametrize("page", [*PAGES, *sorted((ROOT / "examples").glob("*.yaml"))], ids=lambda p: p.name)
def test_repository_paths_named_in_the_docs_exist(page):
    for named in re.findall(r"(?<![\w/.-])((?:manifests|deployments|examples|tests|tools|bench|mig_labeler)/[\w./-]+)",
                            page.read_text()):
        path = named.rstrip(".")
        assert (ROOT / path).exists(), f"{page.name} names {path}"
