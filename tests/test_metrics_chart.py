"""Chart metrics on docling's real bar chart, converted by the real converter, then damaged.

The table: 6 rows (impellers 1-6) x 2 series (single-, multi-frequency) = 12 points.
"""
from __future__ import annotations

import json

import pytest

from converters.run import convert
from inference.metrics.chart import aggregate, points, score


@pytest.fixture(scope="module")
def ref(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("c") / "c.jsonl"
    convert("chart", [shared_data / "chart_docling/barchart.gt.md"], out)
    return json.loads(out.read_text())["text_info"][1]["text"]


def edit(ref: str, row: int, col: int, value: str) -> str:
    lines = [line.split(" | ") for line in ref.split("\n")]
    lines[row][col] = value
    return "\n".join(" | ".join(r) for r in lines)


def test_points_are_row_column_value_triples(ref):
    pts = points(ref)
    assert len(pts) == 12
    assert pts[0] == ("1 single-frequency", "0.06") and pts[-1] == ("6 multi-frequency", "0.24")


def test_exact_and_markdown_pipe_tables_score_1(ref, shared_data):
    assert score(ref, ref)["rms_f1"] == 1.0
    # docling's own markdown export: outer pipes, padding, a |---| row and a title line
    md = (shared_data / "chart_docling/barchart.gt.md").read_text()
    s = score(md, ref)
    assert (s["rms_precision"], s["rms_recall"], s["rms_f1"], s["relaxed_acc"]) == (1.0, 1.0, 1.0, 1.0)


def test_a_value_within_tolerance_costs_its_relative_error(ref):
    s = score(edit(ref, 1, 2, "0.165"), ref)  # 0.16 -> 0.165: 3.125% off, under 5%
    want = (11 + 1 - abs(0.165 - 0.16) / 0.16) / 12
    assert s["rms_precision"] == s["rms_recall"] == pytest.approx(want, abs=1e-12)
    assert s["relaxed_acc"] == 1.0  # relaxed accuracy forgives it entirely


def test_a_value_beyond_tolerance_scores_0(ref):
    s = score(edit(ref, 1, 1, "0.07"), ref)  # 0.06 -> 0.07: 16.7% off
    assert s["rms_f1"] == pytest.approx(11 / 12, abs=1e-12) and s["relaxed_acc"] == 11 / 12


def test_a_missing_row_costs_recall_not_precision(ref):
    s = score("\n".join(ref.split("\n")[:-1]), ref)  # row "6" gone: 10 of 12 points
    assert (s["rms_precision"], s["rms_recall"]) == (1.0, 10 / 12)
    assert s["rms_f1"] == pytest.approx(2 * (10 / 12) / (1 + 10 / 12), abs=1e-12)
    assert s["relaxed_acc"] == 10 / 12


def test_a_misspelt_column_header_costs_its_anls(ref):
    s = score(edit(ref, 0, 1, "single-frequenzy"), ref)
    # key "1 single-frequenzy" vs "1 single-frequency": 1 edit in 18 characters, for all 6 rows
    assert s["rms_f1"] == pytest.approx((6 * (1 - 1 / 18) + 6) / 12, abs=1e-12)
    assert s["relaxed_acc"] == 0.5  # relaxed accuracy needs the key itself


def test_junk_and_aggregate(ref):
    junk = score("I see a bar chart.", ref)
    assert (junk["rms_precision"], junk["rms_recall"], junk["rms_f1"], junk["relaxed_acc"]) == (1.0, 0.0, 0.0, 0.0)
    m = aggregate([score(ref, ref), junk, score(edit(ref, 1, 1, "0.07"), ref)])
    assert m["rms_f1"] == pytest.approx((1 + 0 + 11 / 12) / 3, abs=1e-12)
    assert m["relaxed_acc"] == (12 + 0 + 11) / 36  # over all points of all charts
