"""``make bench-check``: the figures README.md and docs/ publish, against ``make bench``'s own rows.

A published figure carries a marker right after it, invisible once rendered::

    | idle RSS | 38.6 MiB<!--bench:pod_idle_rss:0--> | ...

naming the bench row (its key in build/bench/results.json) and which of the row's numbers (0 for
the first) it publishes. The number just before the marker, with its unit, is compared with that
number of the row, converted to the same unit:

- a time (µs, ms, s) as a multiple of the calibration row measured in the same bench run, against
  the calibration figure the docs publish (docs/performance.md): a slower machine scales both;
  within a factor of 2 either way (a figure of a few milliseconds moves that much between runs on
  a shared machine; a stale one is usually off by far more);
- a ratio (``x``, ``×``): within 25 %; memory (KiB, MiB, MB, GB): within 10 %; a count: exact.

Exit 0 when every figure holds, 1 when one does not (each one line), 2 when there are no results
to compare with (run ``make bench`` first) or a marker names no row.

``--write`` (``make bench-publish``) instead writes the last run's numbers into the documents: each
marked figure becomes its row's number in the figure's own unit and precision, the calibration
figure included, so that a page publishes one run. The words around the figures (a target "missed",
a date) are for a person to read again.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "build" / "bench" / "results.json"
DOCUMENTS = ("README.md", "docs/*.md")
MARKER = re.compile(r"<!--\s*bench:(?P<key>[a-z0-9_]+):(?P<index>\d+)\s*-->")
UNIT = r"µs|us|ms|s|KiB|MiB|MB|GB|x|×|%"
# The number just before a marker, and its unit (the calibration figure has a unit too).
FIGURE = re.compile(rf"(?P<number>-?\d[\d,]*(?:\.\d+)?)\s*(?P<unit>{UNIT})?\s*$")
# The unit after a number, possibly after "/ other numbers" of its group (``1.43 / 2.7 ms``).
UNIT_AFTER = re.compile(rf"\s*(?:/\s*-?[\d,]+(?:\.\d+)?\s*)*({UNIT})(?![A-Za-z])")
# A number inside a bench row's value.
VALUE_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
TIME = {"µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
MEMORY = {"KiB": 1 / 1024, "MiB": 1.0, "MB": 1 / 1.048576, "GB": 1000 / 1.048576}
TIME_FACTOR, RATIO_TOLERANCE, MEMORY_TOLERANCE = 2.0, 0.25, 0.10
CALIBRATION = "calibration"


@dataclass(frozen=True)
class Figure:
    where: str  # file:line
    key: str
    index: int
    number: float
    unit: str


def figures(text: str, where: str) -> list[Figure]:
    """Every marked figure of a document."""
    return [Figure(f"{where}:{line}", marker.group("key"), int(marker.group("index")),
                   float(text[start:end].replace(",", "")), unit)
            for marker, line, start, end, unit in _marked(text, where)]


def _marked(text: str, where: str) -> Iterator[tuple[re.Match[str], int, int, int, str]]:
    """Each marker of ``text``: its line, where the number just before it starts and ends, and the
    figure's unit ("" for none)."""
    for marker in MARKER.finditer(text):
        line = text.count("\n", 0, marker.start()) + 1
        line_start = text.rfind("\n", 0, marker.start()) + 1
        before = FIGURE.search(text[line_start:marker.start()])
        if before is None:
            raise ValueError(f"{where}:{line}: no number just before the marker {marker.group(0)}")
        unit = before.group("unit") or _unit_after(text[marker.end():].split("\n", 1)[0])
        yield marker, line, line_start + before.start("number"), line_start + before.end("number"), unit


def _unit_after(rest: str) -> str:
    """The unit written after a number's group, in a document (``1.2<!--…--> / 2.3 ms``: a figure
    written without a unit has the one after its group) or a bench row's value; "" for none."""
    found = UNIT_AFTER.match(MARKER.sub("", rest).split("|", 1)[0])
    return found.group(1) if found else ""


def value_unit(value: str, index: int) -> tuple[float, str]:
    """The ``index``-th number of a bench row's value and its unit: the first unit written after it
    (``1.43 / 2.7 ms``: both are ms)."""
    number = list(VALUE_NUMBER.finditer(value))[index]
    return float(number.group(0)), _unit_after(value[number.end():])


def compare(figure: Figure, rows: dict[str, dict], calibration: tuple[float, float] | None) -> str | None:
    """None when the figure holds, else why not (one line)."""
    row = rows.get(figure.key)
    if row is None:
        return f"{figure.where}: no bench row {figure.key!r}"
    try:
        measured, unit = value_unit(row["value"], figure.index)
    except IndexError:
        return f"{figure.where}: bench row {figure.key!r} has no number {figure.index} ({row['value']!r})"
    said = f"{figure.where}: {figure.number:g} {figure.unit}".rstrip()
    figure_unit = figure.unit or unit  # a bare count, or a figure in the bench's own unit
    if figure_unit in TIME:
        if calibration is None:
            return f"{figure.where}: a time, but docs/performance.md publishes no calibration figure"
        published_cal, measured_cal = calibration
        expected = figure.number * TIME[figure_unit] * measured_cal / published_cal
        got = measured * TIME.get(unit, TIME[figure_unit])
        if expected <= 0 or not 1 / TIME_FACTOR <= got / expected <= TIME_FACTOR:
            return (f"{said}, bench {row['value']!r} ({figure.key}): {got / expected:.2f}x what the figure "
                    f"predicts on this machine (calibration {measured_cal:g} ms here, {published_cal:g} published)")
        return None
    if figure_unit in ("x", "×", "%"):
        if abs(measured - figure.number) > RATIO_TOLERANCE * abs(figure.number):
            return f"{said}, bench {row['value']!r} ({figure.key}): off by more than {RATIO_TOLERANCE:.0%}"
        return None
    if figure_unit in MEMORY:
        expected, got = figure.number * MEMORY[figure_unit], measured * MEMORY.get(unit, 1.0)
        if abs(got - expected) > MEMORY_TOLERANCE * expected:
            return f"{said}, bench {row['value']!r} ({figure.key}): off by more than {MEMORY_TOLERANCE:.0%}"
        return None
    if measured != figure.number:
        return f"{said}, bench {row['value']!r} ({figure.key}): a count, and it differs"
    return None


def published(figure_text: str, measured: float, unit: str, figure_unit: str) -> str:
    """``measured`` (in the bench row's ``unit``) written as the figure ``figure_text`` is: its unit,
    its number of decimals, its thousands separators."""
    if figure_unit in TIME:
        measured = measured * TIME.get(unit, TIME[figure_unit]) / TIME[figure_unit]
    elif figure_unit in MEMORY:
        measured = measured * MEMORY.get(unit, 1.0) / MEMORY[figure_unit]
    decimals = len(figure_text.split(".", 1)[1]) if "." in figure_text else 0
    return f"{measured:,.{decimals}f}" if "," in figure_text else f"{measured:.{decimals}f}"


def write(text: str, rows: dict[str, dict], where: str = "document") -> str:
    """``text`` with every marked figure replaced by its row's number (rows it names must exist)."""
    out, done = [], 0
    for marker, _, start, end, figure_unit in _marked(text, where):
        measured, unit = value_unit(rows[marker.group("key")]["value"], int(marker.group("index")))
        out += [text[done:start], published(text[start:end], measured, unit, figure_unit or unit)]
        done = end
    return "".join(out) + text[done:]


def documents(root: Path = ROOT) -> list[Path]:
    return sorted({p for pattern in DOCUMENTS for p in root.glob(pattern)})


def check(root: Path, rows: dict[str, dict]) -> tuple[list[str], int]:
    """(problems, figures checked)."""
    marked = [f for doc in documents(root) for f in figures(doc.read_text(), str(doc.relative_to(root)))]
    published = [f for f in marked if f.key == CALIBRATION]
    calibration = None
    if published and CALIBRATION in rows:
        calibration = (published[0].number, value_unit(rows[CALIBRATION]["value"], 0)[0])
    problems = [p for f in marked if f.key != CALIBRATION and (p := compare(f, rows, calibration)) is not None]
    return problems, len(marked)


def main(argv: list[str]) -> int:
    if not RESULTS.exists():
        print(f"bench-check: no {RESULTS.relative_to(ROOT)}: run make bench first", file=sys.stderr)
        return 2
    data = json.loads(RESULTS.read_text())
    if argv == ["--write"]:
        for doc in documents(ROOT):
            text = doc.read_text()
            if MARKER.search(text):
                doc.write_text(write(text, data["rows"], str(doc.relative_to(ROOT))))
                print(f"bench-check: wrote the figures of {doc.relative_to(ROOT)}")
        return 0
    problems, count = check(ROOT, data["rows"])
    for problem in problems:
        print(problem)
    machine = data.get("machine", {})
    print(f"bench-check: {count - len(problems)} of {count} published figures hold (bench of {machine.get('date')}, "
          f"{machine.get('cpus')} CPUs, Python {machine.get('python')})")
    if any("no bench row" in p or "has no number" in p for p in problems):
        return 2
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
