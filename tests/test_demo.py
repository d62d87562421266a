"""`ocrsft demo` end to end at toy size: render, convert, plan, doc_parser, train, export."""
from __future__ import annotations

import re
import subprocess
import sys


def test_demo_runs_the_whole_pipeline(tiny_model, tmp_path):
    out = tmp_path / "demo"
    res = subprocess.run([sys.executable, "-m", "ocrsft", "demo", "--out", str(out), "--base",
                          str(tiny_model), "--lines", "24", "--heldout", "3", "--steps", "3"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    text = res.stdout
    assert "converted 24, rejected 0" in text and "max_steps" in text
    assert "parity: 3 samples, identical token ids trained and served" in text
    m = re.search(r"CER .*: (\d+\.\d+) before -> (\d+\.\d+) after", text)
    assert m, text[-2000:]
    assert (out / "loss.png").stat().st_size > 1000
    assert list((out / "run" / "tensorboard").rglob("events.out.tfevents.*"))
    assert (out / "model" / "inference.yml").is_file()
    assert len((out / "pred_after.jsonl").read_text().splitlines()) == 3
