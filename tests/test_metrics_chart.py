"""Chart metrics on docling's real bar chart, converted by the real converter, then damaged.

The table: 6 rows (impellers 1-6) x 2 series (single-, multi-frequency) = 12 points.
"""
from __future__ import annotations

import json

import pytest

from converters.run import convert
from evaluation.metrics.chart import ChartOptions, aggregate, points, score

# Expected (rms_precision, rms_recall, rms_f1, rnss) from the reference implementation:
# google-research/google-research deplot/metrics.py at commit 0282a25d1ce22da72e07f1bc680d2f9057a5e57f
# (with pix2struct/metrics.py of google-research/pix2struct 945f27e936c9464d9d7c133f1bd1f4f383be9e99),
# run in a throwaway venv (numpy 2.4.6, scipy 1.17.1, editdistance 0.8.1) on the pairs `conformance_pairs`
# builds, with `PYTHONPATH=.:stubs python run_deplot.py`, which calls, per pair,
#   table_datapoints_precision_recall_per_point([[ref]], [pred])  -> precision, recall
#   max(_table_datapoints_precision_recall_f1(_parse_table(ref), _parse_table(pred, transposed=t))
#       for t in (True, False)) by f1                             -> f1 (its per-point "f1" list holds recall)
#   table_number_accuracy_per_point([[ref]], [pred])              -> rnss
DEPLOT = {
    "exact": (1.0, 1.0, 1.0, 1.0),
    "value_3pct": (0.9973958333333334, 0.9973958333333334, 0.9973958333333334, 0.9982638888888888),
    "value_7pct": (0.9942708333333333, 0.9942708333333333, 0.9942708333333333, 0.9961805555555555),
    "value_20pct": (0.9166666666666666, 0.9166666666666666, 0.9166666666666666, 0.9892212725546059),
    "missing_row": (1.0, 0.8333333333333334, 0.9090909090909091, 1.0),
    "extra_row": (0.8571428571428571, 1.0, 0.923076923076923, 1.0),
    "transposed": (1.0, 1.0, 1.0, 1.0),
    "title_line": (0.9230769230769231, 1.0, 0.9600000000000001, 1.0),
    "title_both": (1.0, 1.0, 1.0, 1.0),
    "percent": (1.0, 1.0, 1.0, 1.0),
    "misspelt_header": (0.9722222222222222, 0.9722222222222222, 0.9722222222222222, 1.0),
    "docling_markdown": (0.0, 0.0, 0.0, 1.0),
    "rule_row": (0.8571428571428571, 1.0, 0.923076923076923, 1.0),
    "outer_pipes": (0.71984126984127, 0.71984126984127, 0.71984126984127, 1.0),
    "thousands": (0.8166666666666668, 0.8166666666666668, 0.8166666666666668, 1.0),
    "swapped_columns": (1.0, 1.0, 1.0, 1.0),
    "shuffled_rows": (1.0, 1.0, 1.0, 1.0),
    "empty": (1.0, 0.0, 0.0, 0.0),
    "junk": (1.0, 0.0, 0.0, 0.0),
    "header_only": (1.0, 0.0, 0.0, 0.0),
    "upper_case": (1.0, 1.0, 1.0, 1.0),
    "text_value": (0.9166666666666666, 0.9166666666666666, 0.9166666666666666, 1.0),
    "transposed_missing": (1.0, 0.6666666666666666, 0.8, 1.0),
}
# DePlot's aggregate table_datapoints_{precision,recall} over the 23 pairs (its "f1" there is the recall again)
DEPLOT_MEAN_PRECISION, DEPLOT_MEAN_RECALL = 0.9117866433083823, 0.7753795721187028
DEPLOT_NUMBERS_MATCH = 0.8688550311738717  # table_number_accuracy / 100


@pytest.fixture(scope="module")
def ref(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("c") / "c.jsonl"
    convert("chart", [shared_data / "chart_docling/barchart.gt.md"], out)
    return json.loads(out.read_text())["text_info"][1]["text"]


def render(rows) -> str:
    return "\n".join(" | ".join(r) for r in rows)


def edit(ref: str, row: int, col: int, value: str) -> str:
    lines = [line.split(" | ") for line in ref.split("\n")]
    lines[row][col] = value
    return render(lines)


def conformance_pairs(ref: str, docling_md: str) -> dict[str, tuple[str, str]]:
    rows = [line.split(" | ") for line in ref.split("\n")]
    big_rows = [rows[0]] + [[r[0]] + [str(int(round(float(v) * 10000))) for v in r[1:]] for r in rows[1:]]
    big_pred = render([big_rows[0]] + [[r[0]] + [f"{int(v):,}" for v in r[1:]] for r in big_rows[1:]])
    pct = render([rows[0]] + [[r[0]] + [f"{round(float(v) * 100)}%" for v in r[1:]] for r in rows[1:]])
    return {
        "exact": (ref, ref),
        "value_3pct": (edit(ref, 1, 2, "0.165"), ref),
        "value_7pct": (edit(ref, 3, 1, "0.171"), ref),
        "value_20pct": (edit(ref, 2, 2, "0.312"), ref),
        "missing_row": (render(rows[:-1]), ref),
        "extra_row": (ref + "\n7 | 0.3 | 0.2", ref),
        "transposed": (render(zip(*rows)), ref),
        "title_line": ("TITLE | Bar chart\n" + ref, ref),
        "title_both": ("TITLE | Bar chart\n" + ref, "TITLE | Bar Chart\n" + ref),
        "percent": (pct, ref),
        "misspelt_header": (edit(ref, 0, 1, "single-frequenzy"), ref),
        "docling_markdown": (docling_md, ref),
        "rule_row": (render(rows[:1]) + "\n--- | --- | ---\n" + render(rows[1:]), ref),
        "outer_pipes": ("\n".join(f"| {line} |" for line in ref.split("\n")), ref),
        "thousands": (big_pred, render(big_rows)),
        "swapped_columns": (render([[r[0], r[2], r[1]] for r in rows]), ref),
        "shuffled_rows": (render([rows[0]] + rows[1:][::-1]), ref),
        "empty": ("", ref),
        "junk": ("I see a bar chart.", ref),
        "header_only": (render(rows[:1]), ref),
        "upper_case": (ref.upper(), ref),
        "text_value": (edit(ref, 4, 1, "n/a"), ref),
        "transposed_missing": (render(zip(*rows[:-2])), ref),
    }


@pytest.fixture(scope="module")
def pairs(ref, shared_data):
    return conformance_pairs(ref, (shared_data / "chart_docling/barchart.gt.md").read_text())


def test_default_rms_and_rnss_equal_deplots_code(pairs):
    assert set(pairs) == set(DEPLOT)
    rows = []
    for name, (pred, reference) in pairs.items():
        s = score(pred, reference)
        rows.append(s)
        got = (s["rms_precision"], s["rms_recall"], s["rms_f1"], s["rnss"])
        assert got == pytest.approx(DEPLOT[name], abs=1e-6), name
    m = aggregate(rows)
    assert m["rms_precision"] == pytest.approx(DEPLOT_MEAN_PRECISION, abs=1e-6)
    assert m["rms_recall"] == pytest.approx(DEPLOT_MEAN_RECALL, abs=1e-6)
    assert m["rms_f1"] == pytest.approx(sum(v[2] for v in DEPLOT.values()) / len(DEPLOT), abs=1e-6)
    assert m["rnss"] == pytest.approx(DEPLOT_NUMBERS_MATCH, abs=1e-6)


def test_points_are_row_column_value_triples(ref):
    pts = points(ref)
    assert len(pts) == 12
    assert pts[0] == ("1 single-frequency", "0.06") and pts[-1] == ("6 multi-frequency", "0.24")
    assert points("TITLE | Bar chart\n" + ref)[0] == ("title", "bar chart")


def test_percent_and_transpose_are_read_as_deplot_reads_them(pairs):
    s = score(*pairs["percent"])
    assert s["rms_f1"] == 1.0 and s["relaxed_acc"] == 1.0  # 16% is 0.16
    t = score(*pairs["transposed"])
    assert t["rms_f1"] == 1.0 and t["transposed"] is True


def test_number_theta_is_deplots_0_1(ref):
    s = score(edit(ref, 1, 1, "0.065"), ref)  # 0.06 -> 0.065: 8.3% off, under 0.1, over ChartQA's 5%
    assert s["rms_f1"] == pytest.approx((11 + 1 - abs(0.065 - 0.06) / 0.06) / 12, abs=1e-12)
    assert s["relaxed_acc"] == 11 / 12
    assert score(edit(ref, 1, 1, "0.07"), ref)["rms_f1"] == pytest.approx(11 / 12, abs=1e-12)  # 16.7% off
    strict = ChartOptions(number_theta=0.05)
    assert score(edit(ref, 1, 1, "0.065"), ref, strict)["rms_f1"] == pytest.approx(11 / 12, abs=1e-12)


def test_leniencies_are_named_options(pairs):
    every = ChartOptions.lenient(["all"])
    for name in ("docling_markdown", "outer_pipes", "rule_row", "thousands"):
        assert score(*pairs[name])["rms_f1"] < 1.0, name
        assert score(*pairs[name], every)["rms_f1"] == 1.0, name
    assert score(*pairs["rule_row"], ChartOptions.lenient(["rule-rows"]))["rms_f1"] == 1.0
    assert score(*pairs["thousands"], ChartOptions.lenient(["thousands"]))["rms_f1"] == 1.0
    assert score(*pairs["outer_pipes"], ChartOptions.lenient(["outer-pipes"]))["rms_f1"] == 1.0
    with pytest.raises(ValueError, match="unknown chart leniency 'pipes'"):
        ChartOptions.lenient(["pipes"])


def test_junk_and_aggregate(ref):
    junk = score("I see a bar chart.", ref)
    assert (junk["rms_precision"], junk["rms_recall"], junk["rms_f1"], junk["relaxed_acc"]) == (1.0, 0.0, 0.0, 0.0)
    m = aggregate([score(ref, ref), junk, score(edit(ref, 1, 1, "0.07"), ref)])
    assert m["rms_f1"] == pytest.approx((1 + 0 + 11 / 12) / 3, abs=1e-12)
    assert m["relaxed_acc"] == (12 + 0 + 11) / 36  # over all points of all charts
