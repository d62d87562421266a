"""The shipped base checkpoint reads domain A, and `ocrsft pretrain-tiny` runs end to end."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from converters.synth_lines import render_lines
from evaluation.evaluate import aggregate, score_rows
from inference.predict import predict_file
from models.model_folder import check_model_folder
from ocrsft.pretrain_tiny import ASSET, DIGITS, STYLE
from samples.sample import make_sample


@pytest.mark.slow
def test_shipped_base_reads_unseen_digit_lines(tmp_path):
    check_model_folder(ASSET, for_serving=True)
    assert "Held-out CER" in (ASSET / "PROVENANCE.txt").read_text() or "held-out CER" in \
        (ASSET / "PROVENANCE.txt").read_text()
    labels = render_lines(tmp_path, 20, DIGITS, seed=99, style=STYLE, progress=False)
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(make_sample([p], [("OCR:", t)])) + "\n"
                            for p, t in (l.split("\t") for l in labels.read_text().splitlines())))
    predict_file(ASSET, data, tmp_path / "p.jsonl", max_new_tokens=12, progress=False)
    assert aggregate(score_rows(tmp_path / "p.jsonl"))["cer"] < 0.5  # a random model scores > 1


@pytest.mark.slow
def test_pretrain_tiny_runs_at_toy_size(tmp_path):
    res = subprocess.run([sys.executable, "-m", "ocrsft", "pretrain-tiny", "--out", str(tmp_path),
                          "--lines", "16", "--steps", "2", "--no-install"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "held-out CER on domain A" in res.stdout
    assert (tmp_path / "model" / "inference.yml").is_file()
