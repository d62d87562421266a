"""Key-value extraction metrics: exact match, per-field ANLS and field-level precision/recall/F1.

    ref = '{"company": "INDAH GIFT & HOME DECO", "date": "19/10/2018", "total": "60.30"}'
    score('{"company": "INDAH GIFT & HOME DECO", "date": "19/10/2018", "total": "60.80"}', ref)
        -> exact 0.0, anls (1 + 1 + 0.8) / 3 = 0.9333, field_tp 2 (of 3 predicted, 3 referenced)
    aggregate([score('{"company": "INDAH GIFT & HOME DECO"}', ref)])
        -> anls 1/3, field_precision 1.0, field_recall 1/3, field_f1 0.5
    score('sorry, no JSON here', ref)  -> parsed 0.0, exact 0.0, anls 0.0, field_tp 0

Answers are converters/kie.py's `kie_answer` JSON objects. A prediction is read
as JSON, else as the first `{` to the last `}` of it (models wrap JSON in prose
or code fences); anything that is not an object scores 0 on every metric.
A JSON object cut off (generation stopped at max_new_tokens) is scored on the fields
it completed, and its row says `truncated: 1.0` (`truncated_rate` in the aggregate):
    score('{"company": "INDAH GIFT & HOME DECO", "date": "19/1', ref)
        -> parsed 1.0, truncated 1.0, anls 1/3 (company right; date cut, so missing)
Values that are not strings are compared as their compact JSON.
- `exact`: the two objects are equal (every key, every value);
- `anls` (the main score): the mean over the reference's fields of ANLS(predicted
  value, reference value) (evaluation/metrics/ocr.py: casefolded, threshold 0.5);
  a field the prediction lacks scores 0, extra fields cost nothing here;
- field precision/recall/F1: a predicted field is right when the reference has the
  key and the same value (whitespace runs collapsed); aggregated over all fields of
  all samples (micro), so a receipt with more fields weighs more.

Normalisation (`norm`, `ocrsft eval --kie-norm`): `casefold` (the default, ocrsft's
own) as above; `docvqa`: ANLS on lowercased values and nothing more, DocVQA's
convention as pix2struct's `anls_metric` scores it, and fields equal when
their lowercased values are.
"""
from __future__ import annotations

import json

from evaluation.metrics.ocr import anls

MAIN, LOWER_IS_BETTER = "anls", False
NORMS = ("casefold", "docvqa")   # `ocrsft eval --kie-norm`
DEFAULT_NORM = "casefold"


def complete_prefix(text: str) -> dict | None:
    """The fields of a JSON object cut off before its closing brace: every key/value pair
    that was finished; a value cut in the middle is left out. None when `text` is not
    the start of an object or finished no field."""
    start = text.find("{")
    if start < 0:
        return None
    depth, in_str, esc, commas = 0, False, False, []
    for i in range(start, len(text)):
        c = text[i]
        if in_str:
            esc, in_str = (False, True) if esc else (c == "\\", c != '"')
            continue
        if c == '"':
            in_str = True
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
            if depth == 0:
                return None  # a complete object: not truncated (parse failed for another reason)
        elif c == "," and depth == 1:
            commas.append(i)
    candidates = [] if in_str or depth != 1 else [text[start:].rstrip() + "}"]
    candidates += [text[start:i] + "}" for i in reversed(commas)]  # the longest that parses
    for cand in candidates:
        try:
            obj = json.loads(cand)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and obj:
            return obj
    return None  # not one field finished: nothing to score


def parse_truncated(answer: str) -> tuple[dict[str, str] | None, bool]:
    """(fields, whether the answer was a cut-off object)."""
    fields = parse(answer)
    if fields is not None:
        return fields, False
    obj = complete_prefix(answer.strip())
    if obj is None:
        return None, False
    return _as_fields(obj), True


def _as_fields(obj: dict) -> dict[str, str]:
    return {str(k): v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in obj.items()}


def parse(answer: str) -> dict[str, str] | None:
    text = answer.strip()
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        start, end = text.find("{"), text.rfind("}")
        try:
            obj = json.loads(text[start:end + 1]) if 0 <= start < end else None
        except json.JSONDecodeError:
            obj = None
    if not isinstance(obj, dict):
        return None
    return _as_fields(obj)


def _same(a: str, b: str, norm: str = DEFAULT_NORM) -> bool:
    if norm == "docvqa":
        return a.lower() == b.lower()
    return " ".join(a.split()) == " ".join(b.split())


def score(pred: str, ref: str, norm: str = DEFAULT_NORM) -> dict:
    if norm not in NORMS:
        raise ValueError(f"KIE normalisation must be one of {', '.join(NORMS)}, not {norm!r}")
    docvqa = norm == "docvqa"
    r = parse(ref) or {}
    p, truncated = parse_truncated(pred)
    fields = p or {}
    tp = sum(1 for k, v in fields.items() if k in r and _same(v, r[k], norm))
    return {"parsed": float(p is not None), "truncated": float(truncated),
            "exact": float(p is not None and not truncated and p == r),
            "anls": sum(anls(fields.get(k, ""), v, lower_only=docvqa) for k, v in r.items()) / len(r) if r else float(not fields),
            "field_tp": tp, "pred_fields": len(fields), "ref_fields": len(r)}


def aggregate(rows: list[dict]) -> dict:
    n = len(rows)
    tp = sum(r["field_tp"] for r in rows)
    n_pred, n_ref = sum(r["pred_fields"] for r in rows), sum(r["ref_fields"] for r in rows)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_ref if n_ref else 0.0
    return {"exact_match": sum(r["exact"] for r in rows) / n, "anls": sum(r["anls"] for r in rows) / n,
            "field_precision": precision, "field_recall": recall,
            "field_f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
            "parse_rate": sum(r["parsed"] for r in rows) / n,
            "truncated_rate": sum(r.get("truncated", 0.0) for r in rows) / n}
