"""`ocrsft eval` and `ocrsft compare` on prediction files over the real ICDAR2015 labels."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from converters.errors import UserError
from inference.compare import compare
from inference.evaluate import aggregate, score_rows


def preds(shared_data, tmp_path, name, damage):
    rows = []
    for i, line in enumerate((shared_data / "paddleocr_rec" / "rec_gt_test.txt").read_text().splitlines()):
        path, ref = line.split("\t", 1)
        rows.append({"id": path, "task": "ocr", "prompt": "OCR:", "image": path, "reference": ref,
                     "prediction": damage(i, ref), "error": None})
    out = tmp_path / name
    out.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return out


def test_scores_and_report(shared_data, tmp_path):
    p = preds(shared_data, tmp_path, "p.jsonl", lambda i, r: r if i % 2 else r[:-1])
    rows = score_rows(p)
    m = aggregate(rows)
    n = len(rows)
    assert m["exact_match"] == pytest.approx((n // 2) / n)
    expected = sum(1 / len(r["reference"]) for i, r in enumerate(rows) if i % 2 == 0) / n
    assert m["cer"] == pytest.approx(expected)
    res = subprocess.run([sys.executable, "-m", "ocrsft", "eval", str(p), "-o", str(tmp_path / "ev")],
                         capture_output=True, text=True, check=True)
    assert json.loads(res.stdout.splitlines()[0])["samples"] == n
    report = (tmp_path / "ev" / "report.md").read_text()
    assert "cer_histogram.png" in report and (tmp_path / "ev" / "cer_histogram.png").stat().st_size > 0


def test_error_rows_count_as_failures(shared_data, tmp_path):
    p = preds(shared_data, tmp_path, "p.jsonl", lambda i, r: r)
    lines = p.read_text().splitlines()
    bad = json.loads(lines[0]) | {"error": "OSError: truncated image"}
    p.write_text("\n".join([json.dumps(bad)] + lines[1:]) + "\n")
    m = aggregate(score_rows(p))
    assert m["errors"] == 1 and m["exact_match"] == pytest.approx(1 - 1 / len(lines))


def test_compare_lists_fixed_and_broken(shared_data, tmp_path):
    base = preds(shared_data, tmp_path, "base.jsonl", lambda i, r: "" if i < 5 else r)
    sft = preds(shared_data, tmp_path, "sft.jsonl", lambda i, r: r if i < 5 else (r + "x" if i == 7 else r))
    res = compare(base, sft)
    assert len(res["fixed"]) == 5 and len(res["broken"]) == 1
    assert res["delta"]["cer"] < 0


def test_unsupported_task_and_bad_file_are_clear(shared_data, tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text(json.dumps({"id": 1, "prompt": "Table Recognition:", "reference": "x",
                             "prediction": "x"}) + "\n")
    with pytest.raises(UserError, match="not supported yet"):
        score_rows(p)
    p.write_text("{not json\n")
    with pytest.raises(UserError, match=r"t.jsonl:1"):
        score_rows(p)
