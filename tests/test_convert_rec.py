"""`ocrsft convert paddleocr-rec` on the real ICDAR2015 crops in ../shared/data/paddleocr_rec."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from converters.run import convert, stats_path
from converters.validate import validate
from samples.errors import UserError


def test_real_labels_convert_and_reconcile(shared_data, tmp_path):
    src = shared_data / "paddleocr_rec"
    labels = [src / "rec_gt_test.txt", src / "rec_gt_train.txt"]
    n_lines = sum(1 for p in labels for line in p.read_text().splitlines() if line.strip())
    out = tmp_path / "rec.jsonl"
    c = convert("paddleocr-rec", labels, out, image_root=src, val_ratio=0.2)
    assert c.read == n_lines == c.written + c.val + c.rejected
    rows = [json.loads(l) for l in out.read_text().splitlines()]
    refs = {l.split("\t", 1)[1] for p in labels for l in p.read_text().splitlines() if "\t" in l}
    assert {r["text_info"][1]["text"] for r in rows} <= refs  # text kept exactly
    assert all(r["text_info"][0] == {"text": "OCR:", "tag": "mask"} for r in rows)
    stats = json.loads(stats_path(out).read_text())
    assert stats["read"] == c.read and stats["tokens_per_sample"]["max"] > 0
    n, problems = validate(out, image_root=src.parent)
    assert n == c.written and problems == []


def test_split_is_deterministic_and_order_free(shared_data, tmp_path):
    src = shared_data / "paddleocr_rec"
    lab = src / "rec_gt_train.txt"
    rev = tmp_path / "rev.txt"
    rev.write_text("\n".join(reversed(lab.read_text().splitlines())) + "\n")
    a = convert("paddleocr-rec", [lab], tmp_path / "a.jsonl", image_root=src, val_ratio=0.5,
                absolute_paths=True)
    b = convert("paddleocr-rec", [rev], tmp_path / "b.jsonl", image_root=src, val_ratio=0.5,
                absolute_paths=True)
    assert sorted((tmp_path / "a.val.jsonl").read_text().splitlines()) == \
        sorted((tmp_path / "b.val.jsonl").read_text().splitlines())
    assert a.val == b.val


def test_bad_lines_become_rejects_with_reasons(shared_data, tmp_path):
    src = shared_data / "paddleocr_rec"
    good = (src / "rec_gt_test.txt").read_text().splitlines()[0]
    lab = tmp_path / "labels.txt"
    lab.write_text("\n".join([good, "no tab here", "../../etc/passwd\tx", "test/missing.png\ty",
                              good, "http://example.com/a.png\tz"]) + "\n")
    c = convert("paddleocr-rec", [lab], tmp_path / "o.jsonl", image_root=src)
    assert (c.read, c.written, c.rejected) == (6, 1, 5)
    rej = [json.loads(l) for l in (tmp_path / "o.rejects.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rej] == [2, 3, 4, 5, 6]
    assert [r["reason"].split(":")[0] for r in rej] == [
        "bad_line", "path_escape", "missing_image", "duplicate", "url_not_allowed"]
    assert all(r["source"] == str(lab) for r in rej)
    with pytest.raises(UserError, match=r"labels.txt:2"):
        convert("paddleocr-rec", [lab], tmp_path / "s.jsonl", image_root=src, strict=True)
    assert not (tmp_path / "s.jsonl").exists()  # atomic: nothing half-written


def test_cli_last_line_and_errors(shared_data, tmp_path):
    src = shared_data / "paddleocr_rec"
    res = subprocess.run([sys.executable, "-m", "ocrsft", "convert", "paddleocr-rec",
                          str(src / "rec_gt_test.txt"), "-o", str(tmp_path / "o.jsonl")],
                         capture_output=True, text=True, check=True)
    assert res.stdout.strip().splitlines()[-1] == "converted 21, rejected 0"
    bad = subprocess.run([sys.executable, "-m", "ocrsft", "convert", "nope", "x", "-o", "y"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown format" in bad.stderr and "Traceback" not in bad.stderr


def test_shards_partition_the_input(shared_data, tmp_path):
    src = shared_data / "paddleocr_rec"
    lab = src / "rec_gt_test.txt"
    parts = [convert("paddleocr-rec", [lab], tmp_path / f"s{k}.jsonl", image_root=src,
                     shard=(k, 3), absolute_paths=True) for k in range(3)]
    assert sum(p.written for p in parts) == 21
    full = convert("paddleocr-rec", [lab], tmp_path / "all.jsonl", image_root=src, workers=2,
                   absolute_paths=True)
    lines = sorted(l for k in range(3) for l in (tmp_path / f"s{k}.jsonl").read_text().splitlines())
    assert lines == sorted((tmp_path / "all.jsonl").read_text().splitlines()) and full.written == 21
