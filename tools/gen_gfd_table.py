"""Write the README's table of GFD's flags from ``mig_labeler.cli.gfd_flags.GFD_FLAGS``, between the
``<!-- gfd-flags -->`` markers. ``tests/test_gfd_command_lines.py`` checks that the README holds
exactly what this prints, so the table cannot drift from the flags the CLI accepts.

    python tools/gen_gfd_table.py          # rewrite README.md
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mig_labeler.cli.gfd_flags import GFD_FLAGS  # noqa: E402

BEGIN, END = "<!-- gfd-flags: begin (tools/gen_gfd_table.py) -->", "<!-- gfd-flags: end -->"
VALUE = {"bool": "[=BOOL]", "string": "VALUE", "duration": "DURATION", "float": "QPS", "int": "N"}


def table() -> str:
    rows = ["| GFD flag | environment | GFD's default | mig-labeler | commands |", "|---|---|---|---|---|"]
    for f in GFD_FLAGS:
        names = ", ".join([f"`--{f.name}`", *(f"`-{a}`" if len(a) == 1 else f"`--{a}`" for a in f.aliases)])
        envs = ", ".join(f"`{e}`" for e in f.envvars)
        default = f"`{f.gfd_default}`" if f.gfd_default else "–"
        rows.append(f"| {names} {VALUE[f.kind]} | {envs} | {default} | {f.ours} | {', '.join(sorted(f.commands))} |")
    return "\n".join(rows)


def block() -> str:
    return f"{BEGIN}\n{table()}\n{END}"


def main() -> int:
    readme = ROOT / "README.md"
    text = readme.read_text()
    new = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block(), text, flags=re.S)
    readme.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
