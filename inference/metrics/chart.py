"""Chart metrics: DePlot's RMS (relative mapping similarity) F1 and relaxed accuracy on data tables.

    ref  = "Year | Sales\\n2019 | 100\\n2020 | 200"
    score("Year | Sales\\n2019 | 103\\n2020 | 200", ref)
        -> rms_precision = rms_recall = rms_f1 = (0.97 + 1) / 2 = 0.985, relaxed_acc 1.0
    score("Year | Sales\\n2019 | 110\\n2020 | 200", ref)   # 10% off: that point scores 0
        -> rms_f1 0.5, relaxed_acc 0.5
    score("Year | Sales\\n2019 | 100", ref)                  # a row missing
        -> rms_precision 1.0, rms_recall 0.5, rms_f1 0.6667

Answers are the converters' chart markdown (converters/chart.py `chart_markdown`:
cells joined by " | ", no outer pipes); a prediction may also be a pipe table
with outer pipes and a |---| row. Both are read by the converters' own
`rows_from_markdown`; lines with a single cell (a title, a stray sentence) are dropped.

A table becomes (row header, column header, value) points: the first row is the
column headers, the first cell of each later row its row header.
- RMS (Liu et al. 2023, DePlot): points are paired one-to-one by the Hungarian
  algorithm on 1 - ANLS of their "row column" keys; a pair scores
  ANLS(key) x value similarity, where two numbers score 1 - |p - t| / |t| when
  that relative distance is under 5% and 0 otherwise, and other values score their
  ANLS. rms_precision = total / predicted points, rms_recall = total / reference
  points, rms_f1 their harmonic mean (the main score). An empty prediction scores
  precision 1, recall 0, as DePlot's code does.
- relaxed_acc: the share of reference points whose key (casefolded) the prediction
  also has, with a number within 5% of the reference (ChartQA's relaxed accuracy)
  or, for text, the same text; aggregated over all points of all charts.
"""
from __future__ import annotations

import math

from scipy.optimize import linear_sum_assignment

from converters.chart import rows_from_markdown
from inference.metrics.ocr import anls

MAIN, LOWER_IS_BETTER = "rms_f1", False
TOLERANCE = 0.05  # relative, for numbers


def table_rows(answer: str) -> list[list[str]]:
    # chart_markdown drops the outer pipes that rows_from_markdown keys on: put them back
    lines = [line if line.strip().startswith("|") else f"|{line}|"
             for line in answer.splitlines() if line.strip()]
    return [r for r in rows_from_markdown("\n".join(lines)) if len(r) > 1]


def points(answer: str) -> list[tuple[str, str]]:
    """[("row column", value)] of a chart table."""
    rows = table_rows(answer)
    if not rows:
        return []
    header = rows[0]
    return [(f"{row[0]} {col}", value) for row in rows[1:] for col, value in zip(header[1:], row[1:])]


def number(text: str) -> float | None:
    text = text.strip().lstrip("$€£").rstrip("%").replace(",", "")
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _relative(p: float, t: float) -> float:
    return (0.0 if p == 0 else 1.0) if t == 0 else min(1.0, abs(p - t) / abs(t))


def value_similarity(pred: str, ref: str) -> float:
    p, t = number(pred), number(ref)
    if p is None or t is None:
        return anls(pred, ref)
    d = _relative(p, t)
    return 1.0 - d if d < TOLERANCE else 0.0


def _relaxed_equal(pred: str, ref: str) -> bool:
    p, t = number(pred), number(ref)
    if p is None or t is None:
        return pred.strip().casefold() == ref.strip().casefold()
    return _relative(p, t) <= TOLERANCE


def score(pred: str, ref: str) -> dict:
    pp, rp = points(pred), points(ref)
    if not pp or not rp:
        precision, recall = (1.0, 0.0) if rp else (0.0, 1.0) if pp else (1.0, 1.0)
    else:
        cost = [[1.0 - anls(pk, rk) for pk, _ in pp] for rk, _ in rp]
        total = sum(anls(pp[c][0], rp[r][0]) * value_similarity(pp[c][1], rp[r][1])
                    for r, c in zip(*linear_sum_assignment(cost)))
        precision, recall = total / len(pp), total / len(rp)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    by_key = {k.casefold(): v for k, v in pp}
    correct = sum(1 for k, v in rp if k.casefold() in by_key and _relaxed_equal(by_key[k.casefold()], v))
    return {"rms_precision": precision, "rms_recall": recall, "rms_f1": f1,
            "relaxed_acc": correct / len(rp) if rp else float(not pp),
            "relaxed_correct": correct, "ref_points": len(rp), "pred_points": len(pp)}


def aggregate(rows: list[dict]) -> dict:
    n = len(rows)
    ref_points = sum(r["ref_points"] for r in rows)
    return {"rms_precision": sum(r["rms_precision"] for r in rows) / n,
            "rms_recall": sum(r["rms_recall"] for r in rows) / n,
            "rms_f1": sum(r["rms_f1"] for r in rows) / n,
            "relaxed_acc": sum(r["relaxed_correct"] for r in rows) / ref_points if ref_points else 0.0}
