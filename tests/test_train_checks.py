"""The checks `ocrsft train` runs before launching, and the ERNIEKit schema rewrite (no training here)."""
from __future__ import annotations

from pathlib import Path

import pytest

from erniekit_ext import launch as erniekit
from ocrsft.train import check_data, detected_gpus, output_dir
from samples.errors import UserError
from tests.test_plan import fake_dataset
from training.plan import resolve_and_plan

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "paddleocr_vl"


def test_output_folder_is_never_clobbered_silently(tmp_path):
    out = tmp_path / "run"
    cfg = {"output_dir": str(out)}
    assert output_dir(cfg, False, False) == (out, False)          # new folder
    out.mkdir()
    (out / "resolved.yaml").write_text("{}")
    assert output_dir(cfg, False, False) == (out, False)          # only `ocrsft plan`'s files
    (out / "checkpoint-5").mkdir()
    with pytest.raises(UserError, match="--resume.*--overwrite"):
        output_dir(cfg, False, False)
    assert output_dir(cfg, True, False) == (out, False)           # --resume keeps it
    assert output_dir(cfg, False, True) == (out, True)            # --overwrite clears it
    (out / "resolved.yaml").unlink()
    with pytest.raises(UserError, match="only clears folders ocrsft created"):
        output_dir(cfg, False, True)                              # not ours: never deleted
    with pytest.raises(UserError, match="output_dir"):
        output_dir({}, False, False)


def test_long_samples_are_counted_before_launch(icdar_words, tiny_model, capsys):
    check_data({"train_dataset_path": str(icdar_words / "train.jsonl"), "max_seq_len": 36,
                "model_name_or_path": str(tiny_model)})
    out = capsys.readouterr().out
    assert "check: train.jsonl: 21 samples read" in out and "image tokens" in out
    assert "WARNING" in out and "are longer than max_seq_len 36" in out and "will be dropped" in out
    check_data({"train_dataset_path": str(icdar_words / "train.jsonl"), "max_seq_len": 36,
                "model_name_or_path": str(tiny_model), "truncation_strategy": "right"})
    assert "will be truncated" in capsys.readouterr().out


def test_unreadable_data_names_file_and_line(tmp_path, tiny_model):
    data = tmp_path / "d.jsonl"
    data.write_text('{"image_info": [{"image_url": "nope.png"}], "text_info": [{"text": "a"}]}\n')
    with pytest.raises(UserError, match=r"d.jsonl:1: image .*nope.png"):
        check_data({"train_dataset_path": str(data), "model_name_or_path": str(tiny_model)})
    data.write_text('{"text_info": [{"text": "a"}]}\n[1, 2]\n')
    with pytest.raises(UserError, match=r"d.jsonl:2: not an ERNIEKit sample"):
        check_data({"train_dataset_path": str(data)})
    with pytest.raises(UserError, match="eval_dataset_path"):
        check_data({"eval_dataset_path": str(tmp_path / "missing.jsonl"), "do_eval": True})
    data.write_text('{"text_info": [{"text": "a"}]}\n')  # an eval set that is never read ...
    check_data({"train_dataset_path": str(data),            # ... is not checked
                "eval_dataset_path": str(tmp_path / "missing.jsonl"), "do_eval": False})


def test_gpus_are_counted_on_every_node(monkeypatch):
    """On this host: None exactly when paddle sees no GPU; then what a GPU host would count."""
    from training import device

    assert (detected_gpus() is None) == (not device.has_gpu())
    monkeypatch.setattr(device, "has_gpu", lambda: False)
    assert detected_gpus() is None                        # a CPU box: the recipe's own G
    monkeypatch.setattr(device, "has_gpu", lambda: True)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setenv("NNODES", "2")
    assert detected_gpus() == 4                           # 2 visible here x 2 nodes


def test_full_recipe_rewrites_to_erniekits_ocr_vl_sft_schema(tmp_path):
    """Against the values of the ERNIE repo's run_ocr_vl_sft_16k.yaml (seed 002's recipe)."""
    # The upstream recipe has do_eval commented out: the stage cannot evaluate.
    recipe, plan = resolve_and_plan(CONFIGS / "full_16k.yaml", ["do_eval=false", "evaluation_strategy=no"],
                                    dataset=fake_dataset(tmp_path, 29605))
    ernie = erniekit.to_erniekit(recipe.cfg, gpu=True)
    upstream = {"stage": "OCR-VL-SFT", "fine_tuning": "Full", "multimodal": True,
                "batch_size": 1, "packing_size": 8, "packing": True, "padding": False,
                "gradient_accumulation_steps": 8, "max_steps": 926, "warmup_steps": 10,
                "learning_rate": 5e-6, "min_lr": 5e-7, "lr_scheduler_type": "cosine",
                "max_seq_len": 16384, "num_train_epochs": 2, "save_steps": 200,
                "weight_decay": 0.1, "adam_beta2": 0.95, "compute_type": "bf16",
                "tensor_parallel_degree": 1, "pipeline_parallel_degree": 1, "sharding": "stage1",
                "use_flash_attention": True, "recompute": True, "train_dataset_type": "erniekit",
                "save_to_hf": True, "convert_from_hf": True, "from_scratch": 0, "use_pic_id": False,
                "sft_replace_ids": True, "sft_image_normalize": True, "sft_image_rescale": True,
                "image_dtype": "float32"}
    assert {k: ernie.get(k) for k in upstream} == upstream
    assert not {"template", "padding_free", "per_device_train_batch_size", "bf16",
                "_attn_implementation", "tensor_model_parallel_size"} & set(ernie)


def test_erniekit_refuses_what_it_cannot_express(tmp_path):
    with pytest.raises(UserError, match="packing"):
        erniekit.to_erniekit({"packing": True, "fine_tuning": "full"}, gpu=False)
    lora = erniekit.to_erniekit({"fine_tuning": "lora", "lora_rank": 8,
                                 "per_device_train_batch_size": 2}, gpu=False)
    # Unpacked, the stage steps one sample at a time: B samples are B accumulation steps.
    assert (lora["fine_tuning"], lora["batch_size"], lora["packing"],
            lora["gradient_accumulation_steps"]) == ("LoRA", 1, False, 2)


def test_erniekit_missing_names_what_a_python_lacks(monkeypatch):
    import sys

    monkeypatch.setenv("OCRSFT_ERNIEKIT_PYTHON", sys.executable)  # the project's: no ERNIE here
    monkeypatch.delenv("ERNIE_ROOT", raising=False)
    missing = erniekit.missing()
    assert any("`ernie`" in m for m in missing) and any("OCR-VL-SFT" in m for m in missing)


def test_erniekit_missing_accepts_a_checkout_on_the_path(monkeypatch):
    """An editable install of ERNIE maps only `erniekit`; ERNIE_ROOT puts the checkout's root
    (with `ernie` and `data_processor`) on the path, as ERNIEKit's own CLI does."""
    import sys

    checkout = Path(__file__).resolve().parents[2] / "shared" / "vendor" / "ERNIE-aef7dbe"
    if not checkout.is_dir():
        pytest.skip(f"{checkout} is not here")
    monkeypatch.setenv("OCRSFT_ERNIEKIT_PYTHON", sys.executable)  # no ERNIE installed in it
    monkeypatch.setenv("ERNIE_ROOT", str(checkout))
    assert erniekit.missing() == []
