"""`ocrsft infer` on a PyTorch-bridge export: same command, same rows as for PaddleOCR-VL.

A tiny LLaVA memorises one real crop (torch engine -> `merge.export`), then the
export goes through `predict_file` like any model folder.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from inference.predict import predict_file
from samples.errors import UserError
from tests.fixtures_bridge import engine_cfg, in_torch, rec_jsonl

ROW_KEYS = ["id", "task", "prompt", "image", "reference", "prediction", "error"]


def _memorise_and_export(model: str, data: str, image_root: str, run: str) -> str:
    from engines.bridge import merge, train

    run = Path(run)
    train.run(engine_cfg(Path(model), Path(data), Path(image_root), fine_tuning="full",
                         learning_rate=2e-2, max_steps=30, per_device_train_batch_size=1,
                         warmup_steps=2, save_steps=0), run)
    return str(merge.export(run, run / "export"))


@pytest.fixture(scope="module")
def bridge_export(tiny_bridge, shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("infer_bridge")
    data = rec_jsonl(shared_data, root / "one.jsonl", n=1)
    return Path(in_torch(_memorise_and_export, str(tiny_bridge["llava-clip"]), str(data),
                         str(shared_data), str(root / "run"))), data


def test_infer_routes_a_bridge_export_to_generate(bridge_export, shared_data, tmp_path):
    export, one = bridge_export
    sample = json.loads(one.read_text())
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not an image")
    bad = {**sample, "image_info": [{**sample["image_info"][0], "image_url": str(corrupt)}]}
    data = tmp_path / "val.jsonl"
    data.write_text(json.dumps(sample) + "\n" + json.dumps(bad) + "\n")
    out = tmp_path / "pred.jsonl"
    counts = predict_file(export, data, out, max_new_tokens=24, image_root=Path("/"),
                          progress=False)
    assert counts == {"predicted": 1, "errors": 1, "skipped": 0}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [list(r) for r in rows] == [ROW_KEYS, ROW_KEYS]  # the PaddleOCR-VL rows' shape
    assert rows[0]["prediction"] == "Genaxis Theatre" and rows[0]["error"] is None
    assert rows[0]["task"] == "ocr" and rows[0]["reference"] == "Genaxis Theatre"
    assert rows[1]["prediction"] == "" and rows[1]["error"]  # a bad image is a row, not the end


def test_doc_parser_cannot_serve_a_bridge_model(bridge_export, tmp_path):
    export, one = bridge_export
    with pytest.raises(UserError, match="--via"):
        predict_file(export, one, tmp_path / "pred.jsonl", via="doc-parser", progress=False)



def test_a_process_that_imported_paddleformers_still_infers(bridge_export, tmp_path):
    """There transformers has hidden torch for good, so the predictor runs in a fresh
    interpreter (runtime.Remote); a child process starts tainted to take that path."""
    export, one = bridge_export
    out = tmp_path / "pred.jsonl"
    code = ("import sys; from pathlib import Path; from engines.paddleformers import compat; compat.apply(); "
            "import paddleformers.transformers; from engines.bridge import runtime; "
            "assert runtime.torch_blocked(); from inference.predict import predict_file; "
            "print(predict_file(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), "
            "max_new_tokens=24, image_root=Path('/'), progress=False))")
    subprocess.run([sys.executable, "-c", code, str(export), str(one), str(out)], check=True,
                   capture_output=True, timeout=300)
    assert json.loads(out.read_text())["prediction"] == "Genaxis Theatre"
