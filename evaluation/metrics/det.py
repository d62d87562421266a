"""Detection and spotting metrics: IoU-matched box precision/recall/F1, and end to end with the text.

    ref  = "<ref>JOINT</ref><box>[[617, 419, 705, 465]]</box>\\n<ref>YOU</ref><box>[[100, 100, 200, 150]]</box>"
    score("<ref>JOINT</ref><box>[[620, 420, 705, 465]]</box>", ref)
        -> tp 1 (IoU 85x45 / 88x46 = 0.945), pred_boxes 1, ref_boxes 2: precision 1.0, recall 0.5, f1 0.6667; e2e_tp 1
    score("<ref>JOIN</ref><box>[[620, 420, 705, 465]]</box>", ref)   -> tp 1, e2e_tp 0

Answers are box lists in either style of formats/boxes.py, read by its own
parsers: PaddleOCR-VL spotting (text then 8 `<|LOC_n|>`, a quadrilateral) or
InternVL grounding (`<ref>text</ref><box>[[x1, y1, x2, y2]]</box>`, a rectangle);
each side is read in the style it is written in. Boxes are shapely polygons
(a self-intersecting quadrilateral is replaced by its convex hull).
- Matching is one-to-one and greedy: pairs with IoU >= 0.5, best IoU first
  (ICDAR 2015's rule). tp = matched pairs; precision = tp / predicted boxes,
  recall = tp / reference boxes; f1 (the main score) their harmonic mean.
- End to end (`e2e_*`): a matched pair counts only if its texts are equal
  (ends stripped), as in text spotting.
- Reference boxes with the text `###` (illegible, `-O illegible=keep`) are
  "don't care": they count for neither side, nor does a prediction matched to one.
Aggregates are over all boxes of all images (micro), as PaddleOCR's DetMetric reports.
"""
from __future__ import annotations

from shapely.geometry import Polygon

from formats.boxes import parse_internvl, parse_spotting

MAIN, LOWER_IS_BETTER = "f1", False
IOU = 0.5
ILLEGIBLE = "###"


def boxes(answer: str) -> list[tuple[str, Polygon]]:
    if "<|LOC_" in answer:
        items = parse_spotting(answer)
    else:
        items = [(t, [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]) for t, (x1, y1, x2, y2) in parse_internvl(answer)]
    out = []
    for text, points in items:
        poly = Polygon(points)
        out.append((text.strip(), poly if poly.is_valid else poly.convex_hull))
    return out


def iou(a: Polygon, b: Polygon) -> float:
    inter = a.intersection(b).area
    union = a.area + b.area - inter
    return inter / union if union > 0 else 0.0


def match(pred: list, ref: list) -> list[tuple[int, int]]:
    """Greedy one-to-one (pred index, ref index) pairs with IoU >= 0.5, best first."""
    pairs = sorted(((iou(p[1], r[1]), i, j) for i, p in enumerate(pred) for j, r in enumerate(ref)),
                   reverse=True)
    used_p, used_r, out = set(), set(), []
    for v, i, j in pairs:
        if v < IOU:
            break
        if i not in used_p and j not in used_r:
            used_p.add(i)
            used_r.add(j)
            out.append((i, j))
    return out


def _prf(tp: int, n_pred: int, n_ref: int) -> tuple[float, float, float]:
    if not n_pred and not n_ref:
        return 1.0, 1.0, 1.0
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_ref if n_ref else 0.0
    return p, r, 2 * p * r / (p + r) if p + r else 0.0


def score(pred: str, ref: str) -> dict:
    pb, rb = boxes(pred), boxes(ref)
    pairs = match(pb, rb)
    dont_care = [(i, j) for i, j in pairs if rb[j][0] == ILLEGIBLE]
    cared = [(i, j) for i, j in pairs if rb[j][0] != ILLEGIBLE]
    n_pred = len(pb) - len(dont_care)
    n_ref = sum(1 for t, _ in rb if t != ILLEGIBLE)
    tp, e2e_tp = len(cared), sum(1 for i, j in cared if pb[i][0] == rb[j][0])
    precision, recall, f1 = _prf(tp, n_pred, n_ref)
    return {"precision": precision, "recall": recall, "f1": f1, "e2e_f1": _prf(e2e_tp, n_pred, n_ref)[2],
            "tp": tp, "e2e_tp": e2e_tp, "pred_boxes": n_pred, "ref_boxes": n_ref}


def aggregate(rows: list[dict]) -> dict:
    n_pred, n_ref = sum(r["pred_boxes"] for r in rows), sum(r["ref_boxes"] for r in rows)
    p, r, f = _prf(sum(x["tp"] for x in rows), n_pred, n_ref)
    ep, er, ef = _prf(sum(x["e2e_tp"] for x in rows), n_pred, n_ref)
    return {"precision": p, "recall": r, "f1": f, "e2e_precision": ep, "e2e_recall": er, "e2e_f1": ef,
            "pred_boxes": n_pred, "ref_boxes": n_ref}
