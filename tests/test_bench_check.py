"""``make bench-check``: published figures against the bench's rows (tools/bench_check.py), and the
markers in README.md and docs/ that tie each figure to its row."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tools import bench_check
from tools.bench_check import Figure, compare, figures

ROOT = Path(__file__).resolve().parents[1]
ROWS = {
    "calibration": {"value": "600.0 ms"},
    "pass_time": {"value": "1.430 / 2.700 ms"},
    "pod_idle_rss": {"value": "38.6 / 38.7 MiB"},
    "check_ratio": {"value": "1.42x (11.87 s)"},
    "nvml_calls": {"value": "493"},
    "shutdown_idle": {"value": "0.011 / 0.013 s, [0]"},
}
CALIBRATION = (500.0, 600.0)  # published, measured here: this machine is 1.2 times slower


def figure(number: float, unit: str, key: str, index: int = 0) -> Figure:
    return Figure("doc.md:1", key, index, number, unit)


def test_markers_bind_the_number_just_before_them_with_its_unit():
    text = ("| pass | 1.2<!--bench:pass_time:0--> / 2.3 ms<!--bench:pass_time:1--> |\n"
            "idle at 38.6 MiB<!-- bench:pod_idle_rss:0 --> and 1,000<!--bench:nvml_calls:0--> nodes")
    assert [(f.key, f.index, f.number, f.unit) for f in figures(text, "doc.md")] == [
        ("pass_time", 0, 1.2, "ms"), ("pass_time", 1, 2.3, "ms"), ("pod_idle_rss", 0, 38.6, "MiB"),
        ("nvml_calls", 0, 1000.0, "")]
    with pytest.raises(ValueError, match="doc.md:1: no number just before"):
        figures("a marker alone <!--bench:pass_time:0-->", "doc.md")


def test_a_time_is_compared_as_a_multiple_of_the_calibration():
    # published 1.2 ms with calibration 500 ms: 1.44 ms expected here; 1.43 holds
    assert compare(figure(1.2, "ms", "pass_time"), ROWS, CALIBRATION) is None
    assert compare(figure(2.3, "", "pass_time", 1), ROWS, CALIBRATION) is None  # no unit: the bench's
    assert compare(figure(11, "ms", "shutdown_idle"), ROWS, CALIBRATION) is None  # ms against the bench's s
    stale = compare(figure(0.12, "s", "shutdown_idle"), ROWS, CALIBRATION)  # 0.12 s published, 0.011 s measured
    assert stale is not None and "0.08x what the figure predicts" in stale
    assert compare(figure(0.5, "ms", "pass_time"), ROWS, CALIBRATION) is not None  # 0.6 expected here, 1.43: 2.4x
    assert compare(figure(9, "ms", "shutdown_idle"), ROWS, CALIBRATION) is None  # 10.8 ms expected, 11 measured
    assert "no calibration figure" in str(compare(figure(9, "ms", "shutdown_idle"), ROWS, None))


def test_memory_within_ten_percent_ratios_within_a_quarter_counts_exactly():
    assert compare(figure(36.0, "MiB", "pod_idle_rss"), ROWS, CALIBRATION) is None
    assert "off by more than 10%" in str(compare(figure(52.4, "MiB", "pod_idle_rss"), ROWS, CALIBRATION))
    assert compare(figure(1.6, "×", "check_ratio"), ROWS, CALIBRATION) is None
    assert "off by more than 25%" in str(compare(figure(2.8, "x", "check_ratio"), ROWS, CALIBRATION))
    assert compare(figure(493, "", "nvml_calls"), ROWS, CALIBRATION) is None
    assert "a count, and it differs" in str(compare(figure(741, "", "nvml_calls"), ROWS, CALIBRATION))


def test_writing_publishes_each_figure_in_its_own_unit_and_precision():
    """``make bench-publish``: what it writes is what the check then finds holding, exactly."""
    rows = {**ROWS, "nvml_calls": {"value": "12345"}}
    text = ("calibration 500.0 ms<!--bench:calibration:0--> here\n"
            "| pass | 1.2<!--bench:pass_time:0--> / 2.3 ms<!--bench:pass_time:1--> |\n"
            "idle at 38 MiB<!-- bench:pod_idle_rss:0 -->, 2.0x<!--bench:check_ratio:0-->, "
            "9,000<!--bench:nvml_calls:0--> calls, stop in 120 ms<!--bench:shutdown_idle:0--> (was 0.12 s)")
    written = bench_check.write(text, rows)
    assert written == ("calibration 600.0 ms<!--bench:calibration:0--> here\n"
                       "| pass | 1.4<!--bench:pass_time:0--> / 2.7 ms<!--bench:pass_time:1--> |\n"
                       "idle at 39 MiB<!-- bench:pod_idle_rss:0 -->, 1.4x<!--bench:check_ratio:0-->, "
                       "12,345<!--bench:nvml_calls:0--> calls, stop in 11 ms<!--bench:shutdown_idle:0--> (was 0.12 s)")
    marked = figures(written, "doc.md")
    calibration = (600.0, 600.0)
    assert [compare(f, rows, calibration) for f in marked if f.key != "calibration"] == [None] * 6


def test_a_marker_naming_no_row_or_no_number_is_reported():
    assert "no bench row 'nope'" in str(compare(figure(1, "ms", "nope"), ROWS, CALIBRATION))
    assert "has no number 5" in str(compare(figure(1, "ms", "pass_time", 5), ROWS, CALIBRATION))


def test_the_published_figures_all_parse_and_the_calibration_is_published():
    marked = [f for doc in bench_check.documents(ROOT) for f in figures(doc.read_text(), doc.name)]
    assert sum(f.key == bench_check.CALIBRATION for f in marked) == 1
    assert len(marked) >= 20


def test_every_measured_figure_of_the_performance_table_is_tied_to_a_bench_row():
    """The table of docs/performance.md publishes nothing the bench does not measure: each number in
    its "measured" column carries a marker (dates and counts of runs are in the first column)."""
    text = (ROOT / "docs" / "performance.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| what")]
    assert table
    for line in table:
        measured = line.split("|")[2]
        bare = re.sub(r"<!--.*?-->", "", measured)
        numbers = re.findall(r"\d+(?:\.\d+)?", bare)
        assert len(re.findall(r"<!--\s*bench:", measured)) == len(numbers), line
