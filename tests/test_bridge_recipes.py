"""Each seed's bridge recipe, on its tiny stand-in, through the same commands as PaddleOCR-VL:
`ocrsft train configs/bridge/<seed>.yaml` -> `ocrsft export` -> `ocrsft infer` -> `ocrsft eval`.

Only sizes, paths and CPU settings are overridden; every other value is the recipe's.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures_bridge import in_torch
from training.monitor import read_scalars

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "bridge"
CPU = ["bf16=false", "gradient_accumulation_steps=1", "logging_steps=1", "save_steps=0",
       "max_seq_len=256"]


def ocrsft(*args) -> str:
    res = subprocess.run([sys.executable, "-m", "ocrsft", *map(str, args)], capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    return res.stdout


def marker(run: Path) -> dict:
    return json.loads((run / "ocrsft_run.json").read_text())


def changed_towers(base: Path, export: Path) -> set[str]:
    from safetensors.numpy import load_file

    def by_name(path: Path) -> dict:  # the tiny base was saved in transformers' older layout
        return {k.replace("language_model.model.", "language_model.").removeprefix("model."): v
                for k, v in load_file(path / "model.safetensors").items()}

    before, after = by_name(base), by_name(export)
    assert set(before) == set(after)
    return {k.split(".")[0] for k in before if (before[k] != after[k]).any()}


def train_export_infer_eval(recipe: str, model: Path, data: Path, tmp: Path, *extra, task="auto"):
    run = tmp / "run"
    out = ocrsft("train", CONFIGS / recipe, f"model_name_or_path={model}",
                 f"train_dataset_path={data}", f"output_dir={run}", *CPU, *extra)
    assert out.index("plan:") < out.index("train: done")
    ocrsft("export", run, "-o", tmp / "export")
    ocrsft("infer", tmp / "export", "--data", data, "-o", tmp / "pred.jsonl", "--image-root", "/",
           "--max-new-tokens", "24")
    rows = [json.loads(x) for x in (tmp / "pred.jsonl").read_text().splitlines()]
    assert len(rows) == len(data.read_text().splitlines()) and not any(r["error"] for r in rows)
    ocrsft("eval", tmp / "pred.jsonl", "--task", task, "-o", tmp / "eval")
    return marker(run), rows, json.loads((tmp / "eval" / "metrics.json").read_text())


def test_seed003_llava_chinese_clip_lora_on_both_towers(tiny_bridge, rec_data, tmp_path):
    info, rows, metrics = train_export_infer_eval(
        "seed003_llava_qwen2_chinese_clip.yaml", tiny_bridge["llava-chinese-clip"], rec_data,
        tmp_path, "max_steps=16", "per_device_train_batch_size=4", "learning_rate=1e-2",
        "mm_projector_lr=2e-2")
    loss = [v for _, v in read_scalars(tmp_path / "run" / "tensorboard", "train/loss")]
    assert info["fine_tuning"] == "lora" and sum(loss[-3:]) / 3 < sum(loss[:3]) / 3 - 0.2, loss
    # The base weights train only through adapters (the projector whole, modules_to_save) ...
    assert info["changed"] == ["projector"]
    # ... and the merge folds the adapters of both towers in: all three differ from the base.
    assert changed_towers(tiny_bridge["llava-chinese-clip"], tmp_path / "export") == \
        {"vision_tower", "language_model", "multi_modal_projector"}
    export = json.loads((tmp_path / "export" / "ocrsft_bridge.json").read_text())
    assert export["merge_max_abs_logit_diff"] < 1e-5
    assert metrics["ocr"]["samples"] == len(rows)


def test_seed004_two_stages_freeze_what_the_seed_freezes(tiny_bridge, rec_data, tmp_path):
    assembled, stage1, stage2 = tmp_path / "mllm", tmp_path / "s1", tmp_path / "s2"
    ocrsft("train", CONFIGS / "seed004_stage1_projector.yaml",
           f"assemble={{language_model: {tiny_bridge['qwen2-lm']}, "
           f"vision_model: {tiny_bridge['chinese-clip']}}}", f"model_name_or_path={assembled}",
           f"train_dataset_path={rec_data}", f"output_dir={stage1}", "max_steps=6",
           "per_device_train_batch_size=2", *CPU)
    one = marker(stage1)
    assert one["changed"] == ["projector"]   # checksums: vision and LM bit-identical
    ocrsft("train", CONFIGS / "seed004_stage2_llm.yaml", f"model_name_or_path={stage1 / 'final'}",
           f"train_dataset_path={rec_data}", f"output_dir={stage2}", "max_steps=6",
           "per_device_train_batch_size=2", "learning_rate=1e-3", *CPU)
    two = marker(stage2)
    assert "vision" not in two["changed"] and {"language", "projector"} <= set(two["changed"])
    assert two["checksums"]["before"]["projector"] == one["checksums"]["after"]["projector"]


def _internvl2(out: str) -> str:
    from engines.bridge import internvl2_convert, tiny

    original = tiny.internvl2_original(Path(out) / "original")
    return str(internvl2_convert.convert(original, Path(out) / "native"))


@pytest.mark.slow
def test_seed001_internvl2_detection_from_converted_weights(shared_data, tmp_path):
    src = shared_data / "paddleocr_det"
    data = tmp_path / "det.jsonl"
    ocrsft("convert", "paddleocr-det", src / "test_icdar2015_label.txt", "-o", data, "--image-root", src,
           "-O", "style=internvl", "--absolute-paths")
    native = Path(in_torch(_internvl2, str(tmp_path)))
    info, rows, metrics = train_export_infer_eval(
        "seed001_internvl2_det_lora.yaml", native, data, tmp_path, "max_steps=4",
        "max_seq_len=2048", task="det")
    assert info["family"] == "internvl" and info["steps"] == 4
    assert rows[0]["prompt"] == "Detect all text and give boxes:"
    assert set(metrics["det"]) >= {"precision", "recall", "f1"}


@pytest.mark.parametrize("quant", ["use_4bit=true"])
def test_seed000_stand_in_trains_quantised_and_merges_in_full_precision(tiny_bridge, rec_data,
                                                                        tmp_path, quant):
    """LLaVA-OneVision-1.5 is remote code (test_bridge_families checks its message); the
    native LLaVA-OneVision stands in, with the seed's 4-bit switch on."""
    info, rows, metrics = train_export_infer_eval(
        "seed000_llava_ov15_ocr_lora.yaml", tiny_bridge["llava-onevision"], rec_data, tmp_path,
        quant, "max_steps=4", "max_image_size=56")
    assert info["quantization"] == "4bit" and info["steps"] == 4
    export = json.loads((tmp_path / "export" / "ocrsft_bridge.json").read_text())
    assert export["fine_tuning"] == "lora"
    config = json.loads((tmp_path / "export" / "config.json").read_text())
    assert "quantization_config" not in config   # merged into full-precision weights
