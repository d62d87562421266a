"""Train -> export -> infer, through paddleformers, paddlex and the paddleocr doc_parser pipeline."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from inference.export import export
from inference.predict import predict_file
from models import model_folder
from samples.errors import UserError
from training.monitor import read_scalars


@pytest.fixture(scope="module")
def exported(trained_run, tiny_model, tmp_path_factory):
    return export(trained_run, tmp_path_factory.mktemp("export") / "model", base=tiny_model)


def test_training_wrote_a_run_and_tensorboard_events(trained_run):
    assert model_folder.weight_files(trained_run)
    assert list((trained_run / "tensorboard").rglob("events.out.tfevents.*"))
    losses = [v for _, v in read_scalars(trained_run / "tensorboard", "train/loss")]
    assert len(losses) == 12 and sum(losses[-3:]) < sum(losses[:3])


def test_export_fixes_every_trap(trained_run, exported):
    assert not (trained_run / "inference.yml").exists()  # a raw run is not servable
    assert [p.name for p in model_folder.weight_files(exported)] == ["model.safetensors"]
    gen = json.loads((exported / "generation_config.json").read_text())
    assert gen["eos_token_id"] == 2 and "max_length" not in gen
    assert json.loads((exported / "tokenizer_config.json").read_text())["add_bos_token"] is False
    assert (exported / "inference.yml").read_text().strip().endswith(model_folder.PADDLEX_MODEL_NAME)


def test_export_without_base_is_a_user_error(tmp_path, trained_run):
    (tmp_path / "run").mkdir()
    with pytest.raises(UserError):
        export(tmp_path / "run", tmp_path / "out")


def test_native_and_doc_parser_agree_and_errors_become_rows(exported, digit_lines, tmp_path):
    data = digit_lines.parent / "val.jsonl"  # image paths are relative to the JSONL
    lines = digit_lines.read_text().splitlines()[:3]
    bad = json.loads(lines[0])
    bad["image_info"][0]["image_url"] = "../../etc/passwd"
    data.write_text("\n".join(lines + [json.dumps(bad)]) + "\n")
    root = digit_lines.parent
    native = predict_file(exported, data, tmp_path / "a.jsonl", max_new_tokens=10,
                          image_root=root, progress=False)
    viadp = predict_file(exported, data, tmp_path / "b.jsonl", via="doc-parser",
                         max_new_tokens=10, image_root=root, progress=False)
    assert native == viadp == {"predicted": 3, "errors": 1, "skipped": 0}
    a = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert a[3]["error"] and "path_escape" in a[3]["error"]
    # Same model, same pixels: the pipeline feeds the model exactly what native does.
    assert [r["prediction"] for r in a[:3]] == [r["prediction"] for r in b[:3]]
    assert all(r["task"] == "ocr" and r["reference"] for r in a)
    again = predict_file(exported, data, tmp_path / "a.jsonl", max_new_tokens=10,
                         image_root=root, progress=False)
    # resumable: nothing predicted is predicted twice; the error row is retried (and fails again)
    assert again == {"predicted": 0, "errors": 1, "skipped": 3}
    kept = predict_file(exported, data, tmp_path / "a.jsonl", max_new_tokens=10,
                        image_root=root, progress=False, retry_errors=False)
    assert kept == {"predicted": 0, "errors": 0, "skipped": 4}
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 4  # one row per sample


def test_paddleocr_doc_parser_cli_runs_on_the_export(exported, digit_lines, tmp_path):
    img = next((digit_lines.parent / "images").glob("*.png"))
    cmd = [sys.executable, "-m", "paddleocr", "doc_parser", "-i", str(img),
           "--pipeline_version", "v1", "--vl_rec_model_name", model_folder.PADDLEX_MODEL_NAME,
           "--vl_rec_model_dir", str(exported), "--use_layout_detection", "False",
           "--device", "cpu", "--save_path", str(tmp_path)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    res = json.loads((tmp_path / f"{img.stem}_res.json").read_text())
    assert res["parsing_res_list"][0]["block_label"] == "ocr"
