"""Chart metrics: DePlot's RMS (relative mapping similarity) F1, ChartQA's RNSS and relaxed accuracy.

    ref  = "Year | Sales\\n2019 | 100\\n2020 | 200"
    score("Year | Sales\\n2019 | 103\\n2020 | 200", ref)
        -> rms_precision = rms_recall = rms_f1 = (0.97 + 1) / 2 = 0.985, relaxed_acc 1.0
    score("Year | Sales\\n2019 | 120\\n2020 | 200", ref)   # 20% off: that point scores 0
        -> rms_f1 0.5, relaxed_acc 0.5
    score("Year | Sales\\n2019 | 100", ref)                  # a row missing
        -> rms_precision 1.0, rms_recall 0.5, rms_f1 0.6667
    score("Year | 2019 | 2020\\nSales | 100 | 200", ref)     # transposed: rms_f1 1.0

By default this is DePlot's own code (google-research `deplot/metrics.py`,
`table_datapoints_precision_recall` and `table_number_accuracy`), restated:

Reading a table. The text is lowercased and split into lines; a first line
starting `title |` gives the title, every other line is a row, its cells split on
" | " and stripped. The first row is the header. Points are ("row column", value):
the first cell of each later row joined by a space to each column header; the
title is one more point, keyed "title". Answers are the converters' chart markdown
(converters/chart.py `chart_markdown`: cells joined by " | ", no outer pipes).

A number is a cell Python's `float` reads, or one ending in `%`, read as a
fraction (`12%` -> 0.12). ANLS is pix2struct's: 1 - Levenshtein / longer length
when that is under 0.5, else 0 (after the lowercasing above, nothing more).

- RMS: prediction and reference points are paired one-to-one by the Hungarian
  algorithm on 1 - ANLS of their keys. A pair scores ANLS(keys) times: for a
  nonzero reference number and a numeric prediction, 1 - min(1, |t - p| / |t|)
  where that distance is under `number_theta` (0.1) and 0 otherwise; for equal
  text 1; else the ANLS of the two values. rms_precision = total / predicted
  points, rms_recall = total / reference points, rms_f1 their harmonic mean (the
  main score). The prediction is also read transposed (rows become columns) and
  the reading with the higher F1 counts (the transposed one on a tie, as DePlot
  iterates). No points on either side: 1, 1, 1; none in the reference: 0, 1, 0;
  none predicted: 1, 0, 0; a total of 0: 0, 0, 0.
- rnss (ChartQA's relative number set similarity, DePlot's `numbers_match`): every
  cell that `float` reads (no `%` rule here, as in DePlot), of all lines; the two
  number sets are paired by the Hungarian algorithm on min(1, |t - p| / |t|), and
  rnss = 1 - total distance / the larger set. DePlot's code gives a zero reference
  number distance 1 unless the prediction is nonzero (so 0 against 0 costs 1);
  this follows it. Neither side has numbers: 1; one side only: 0.
- relaxed_acc: the share of reference points whose key the chosen reading also has,
  with a number within 5% of the reference (ChartQA's relaxed accuracy) or the
  same text; over all points of all charts. Not a DePlot metric: ocrsft's own.

Aggregates are means over charts. DePlot's `table_datapoints_precision_recall`
reports as its F1 the mean *recall* (its per-chart list appends `r` under "f1");
ocrsft reports the mean F1 and names the slip here rather than repeat it.

Leniencies (`ChartOptions`, off by default; `ocrsft eval --chart-lenient NAME,...`):
- `outer_pipes`: a markdown pipe table is read as one: leading and trailing `|`
  are dropped, cells split on `|`, lines with a single cell (a caption, an
  `<!-- image -->` comment) are not rows;
- `rule_rows`: `|---|:--:|` separator rows are dropped;
- `thousands`: `1,234.5` reads as 1234.5.
"""
from __future__ import annotations

import dataclasses
import itertools
import re

import numpy as np
from rapidfuzz.distance import Levenshtein
from scipy.optimize import linear_sum_assignment

MAIN, LOWER_IS_BETTER = "rms_f1", False
NUMBER_THETA = 0.1    # DePlot's number_theta: a relative error at or past it scores 0
TEXT_THETA = 0.5      # pix2struct's ANLS threshold
RELAXED = 0.05        # ChartQA's relaxed-accuracy tolerance
LENIENCIES = ("outer_pipes", "rule_rows", "thousands")

_RULE = re.compile(r"^[\s|:\-]*-[\s|:\-]*$")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?%?$")


@dataclasses.dataclass(frozen=True)
class ChartOptions:
    outer_pipes: bool = False
    rule_rows: bool = False
    thousands: bool = False
    number_theta: float = NUMBER_THETA

    @classmethod
    def lenient(cls, names) -> "ChartOptions":
        """From leniency names (`outer-pipes` or `outer_pipes`, ...; `all` for every one)."""
        chosen = set()
        for name in names:
            name = name.strip().replace("-", "_")
            if name == "all":
                chosen.update(LENIENCIES)
            elif name in LENIENCIES:
                chosen.add(name)
            elif name:
                raise ValueError(f"unknown chart leniency {name!r}; choose from "
                                 f"{', '.join(n.replace('_', '-') for n in LENIENCIES)}, all")
        return cls(**{n: True for n in chosen})


DEPLOT = ChartOptions()


@dataclasses.dataclass(frozen=True)
class Table:
    title: str | None
    rows: tuple[tuple[str, ...], ...]   # rows[0] is the header

    def transposed(self) -> "Table":
        return Table(self.title, tuple(itertools.zip_longest(*self.rows, fillvalue="")))

    def points(self) -> list[tuple[str, str]]:
        found: dict[str, str] = {}  # a repeated key keeps its first place and its last value, as DePlot's dict
        if self.title is not None:
            found["title"] = self.title
        if len(self.rows) > 1 and len(self.rows[0]) > 1:
            header = self.rows[0]
            for row in self.rows[1:]:
                for col, value in zip(header[1:], row[1:]):
                    found[f"{row[0]} {col}"] = value
        return list(found.items())


def _cells(line: str, opts: ChartOptions) -> list[str]:
    if opts.outer_pipes:
        inner = line.strip()
        inner = inner[1:] if inner.startswith("|") else inner
        inner = inner[:-1] if inner.endswith("|") else inner
        return [c.strip() for c in inner.split("|")]
    return [c.strip() for c in line.split(" | ")]


def _lines(text: str, opts: ChartOptions) -> list[str]:
    lines = text.splitlines()
    if opts.rule_rows:
        lines = [line for line in lines if not _RULE.match(line)]
    if opts.outer_pipes:
        lines = [line for line in lines if len(_cells(line, opts)) > 1 or line.strip().lower().startswith("title |")]
    return lines


def read_table(text: str, opts: ChartOptions = DEPLOT) -> Table:
    lines = _lines(text.lower(), opts)
    title = None
    if lines and lines[0].startswith("title |"):
        title, lines = lines[0][len("title |"):].strip(), lines[1:]
    return Table(title, tuple(tuple(_cells(line, opts)) for line in lines))


def points(answer: str, opts: ChartOptions = DEPLOT) -> list[tuple[str, str]]:
    """[("row column", value)] of a chart table (lowercased, with a "title" point when it has one)."""
    return read_table(answer, opts).points()


def _plain(text: str, opts: ChartOptions) -> str:
    return text.replace(",", "") if opts.thousands and _THOUSANDS.match(text.strip()) else text


def number(text: str, opts: ChartOptions = DEPLOT) -> float | None:
    """DePlot's reading of a value: Python float, `%` meaning hundredths."""
    text = _plain(text, opts)
    try:
        return float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        return None


def anls(target: str, prediction: str) -> float:
    longest = max(len(target), len(prediction))
    if not longest:
        return 1.0  # pix2struct divides by zero here; two empty strings are equal
    d = Levenshtein.distance(target, prediction) / longest
    return 1 - d if d < TEXT_THETA else 0.0


def _relative(target: float, prediction: float, theta: float) -> float:
    """DePlot's min(1, |t - p| / |t|), pushed to 1 at theta, and 0 only for 0 against a nonzero."""
    if not target:
        return int(not prediction)
    distance = min(abs((target - prediction) / target), 1)
    return distance if distance < theta else 1


def _point_similarity(t: tuple[str, str], p: tuple[str, str], opts: ChartOptions) -> float:
    key = anls(t[0], p[0])
    pv, tv = number(p[1], opts), number(t[1], opts)
    if pv is not None and tv:
        return key * (1 - _relative(tv, pv, opts.number_theta))
    if t[1] == p[1]:
        return key
    return key * anls(t[1], p[1])


def _rms(ref: list, pred: list, opts: ChartOptions) -> tuple[float, float, float, list]:
    if not ref and not pred:
        return 1.0, 1.0, 1.0, []
    if not ref:
        return 0.0, 1.0, 0.0, []
    if not pred:
        return 1.0, 0.0, 0.0, []
    cost = np.array([[1 - anls(t, p) for p, _ in pred] for t, _ in ref])
    pairs = list(zip(*linear_sum_assignment(cost)))
    total = 0.0
    for r, c in pairs:
        total += _point_similarity(ref[r], pred[c], opts)
    if total == 0:
        return 0.0, 0.0, 0.0, pairs
    precision, recall = total / len(pred), total / len(ref)
    return precision, recall, 2 * precision * recall / (precision + recall), pairs


def _numbers(text: str, opts: ChartOptions) -> list[float]:
    out = []
    for line in _lines(text, opts):
        for part in _cells(line, opts):
            if part:
                try:
                    out.append(float(_plain(part, opts)))
                except ValueError:
                    pass
    return out


def rnss(pred: str, ref: str, opts: ChartOptions = DEPLOT) -> float:
    t, p = _numbers(ref, opts), _numbers(pred, opts)
    if not t and not p:
        return 1.0
    if not t or not p:
        return 0.0
    cost = np.array([[_relative(a, b, 1.0) for b in p] for a in t])
    rows, cols = linear_sum_assignment(cost)
    return float(1 - cost[rows, cols].sum() / max(len(t), len(p)))


def _relaxed_equal(pred: str, ref: str, opts: ChartOptions) -> bool:
    p, t = number(pred, opts), number(ref, opts)
    if p is None or t is None:
        return pred == ref
    return abs(p - t) <= RELAXED * abs(t) if t else p == 0


def score(pred: str, ref: str, opts: ChartOptions = DEPLOT) -> dict:
    rp = points(ref, opts)
    table = read_table(pred, opts)
    readings = [(table.transposed().points(), True), (table.points(), False)]
    best = max(((_rms(rp, pp, opts), pp, flipped) for pp, flipped in readings), key=lambda x: x[0][2])
    (precision, recall, f1, _), pp, flipped = best
    by_key = dict(pp)
    correct = sum(1 for k, v in rp if k in by_key and _relaxed_equal(by_key[k], v, opts))
    return {"rms_precision": float(precision), "rms_recall": float(recall), "rms_f1": float(f1),
            "rnss": rnss(pred, ref, opts), "transposed": flipped,
            "relaxed_acc": correct / len(rp) if rp else float(not pp),
            "relaxed_correct": correct, "ref_points": len(rp), "pred_points": len(pp)}


def aggregate(rows: list[dict]) -> dict:
    n = len(rows)
    ref_points = sum(r["ref_points"] for r in rows)
    return {"rms_precision": sum(r["rms_precision"] for r in rows) / n,
            "rms_recall": sum(r["rms_recall"] for r in rows) / n,
            "rms_f1": sum(r["rms_f1"] for r in rows) / n,
            "rnss": sum(r["rnss"] for r in rows) / n,
            "relaxed_acc": sum(r["relaxed_correct"] for r in rows) / ref_points if ref_points else 0.0}
