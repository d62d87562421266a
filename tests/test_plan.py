"""The max_steps planner: seed 002's worked example, the GPU-scaling rules, D, and the packing estimate."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from samples.errors import UserError
from training.plan import (TokenCounter, count_samples, pack_estimate, plan_for, profile_dataset,
                           split_for_gpus)

FULL_16K = Path(__file__).resolve().parent.parent / "configs" / "paddleocr_vl" / "full_16k.yaml"


def fake_dataset(tmp_path, n, name="train"):
    """A JSONL whose converter stats say n samples (written after the JSONL, so current)."""
    data = tmp_path / f"{name}.jsonl"
    data.write_text("{}\n")
    (tmp_path / f"{name}.stats.json").write_text(json.dumps({"written": n}))
    return data


def bengali(tmp_path, **extra) -> dict:
    return {"train_dataset_path": str(fake_dataset(tmp_path, 29605)), "num_train_epochs": 2,
            "per_device_train_batch_size": 8, "padding_free": True,
            "gradient_accumulation_steps": 8, "learning_rate": 5e-6, "min_lr": 5e-7, **extra}


def test_seed_002_worked_example(tmp_path):
    cfg = bengali(tmp_path, warmup_ratio=0.01)
    p = plan_for(cfg)
    assert (p.D, p.E, p.G, p.B, p.A) == (29605, 2, 1, 8, 8)
    assert p.max_steps == 926 == cfg["max_steps"]   # ceil(29605 * 2 / 64)
    assert p.warmup_steps == 10 == cfg["warmup_steps"]  # ceil(1% of 926); PaddleFormers floors to 9
    assert "warmup_ratio" not in cfg


@pytest.mark.slow
def test_cli_plans_the_shipped_recipe_and_writes_the_run_folder(tmp_path):
    data = fake_dataset(tmp_path, 29605)
    out = subprocess.run([sys.executable, "-m", "ocrsft", "plan", str(FULL_16K), "--dataset",
                          str(data), "--out", str(tmp_path / "run")],
                         capture_output=True, text=True, check=True).stdout
    assert "ceil(59210 / 64) = 926" in out and "D from train.stats.json" in out
    resolved = yaml.safe_load((tmp_path / "run" / "resolved.yaml").read_text())
    assert resolved["max_steps"] == 926 and resolved["warmup_steps"] == 10
    assert resolved["train_dataset_path"] == str(data)
    assert not {"engine", "recipe_gpus", "scale", "ocr_augmentation"} & set(resolved)
    plan = json.loads((tmp_path / "run" / "plan.json").read_text())
    assert plan["max_steps"] == 926 and plan["ocrsft"]["engine"] == "paddleformers"


def test_more_gpus_keep_the_global_batch(tmp_path):
    p = plan_for(bengali(tmp_path), gpus=8)
    assert (p.B, p.A, p.max_steps, p.learning_rate) == (8, 1, 926, 5e-6)  # A shrinks first
    p = plan_for(bengali(tmp_path), gpus=16)
    assert (p.B, p.A, p.max_steps) == (4, 1, 926)
    with pytest.raises(UserError, match="per_device_train_batch_size.*scale-lr"):
        plan_for(bengali(tmp_path), gpus=3)


def test_more_gpus_scale_the_learning_rate(tmp_path):
    cfg = bengali(tmp_path)
    p = plan_for(cfg, gpus=8, scale="scale-lr")
    assert (p.B, p.A, p.max_steps) == (8, 8, 116)       # ceil(59210 / 512)
    assert cfg["learning_rate"] == pytest.approx(4e-5) and cfg["min_lr"] == pytest.approx(4e-6)


def test_fewer_gpus_than_the_recipe_accumulate_more(tmp_path):
    p = plan_for(bengali(tmp_path, gradient_accumulation_steps=1), gpus=2, recipe_gpus=8)
    assert (p.G, p.B, p.A) == (2, 8, 4) and p.samples_per_step == 64


@given(st.integers(1, 64), st.integers(1, 64), st.integers(1, 64))
def test_gpu_split_keeps_g_b_a(B, A, n):
    try:
        x, y = split_for_gpus(B, A, n)
    except UserError:
        assert not any(n % y == 0 and A % y == 0 and B % (n // y) == 0 for y in range(1, n + 1))
        return
    assert x * y == n and B % x == 0 and A % y == 0
    assert n * (B // x) * (A // y) == B * A


def test_where_d_comes_from(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"a": 1}\n\n{"a": 2}\n{"a": 3}\n')
    assert count_samples(data) == (3, "d.jsonl (counted)")
    stale = tmp_path / "d.stats.json"
    stale.write_text(json.dumps({"written": 999}))
    assert count_samples(data)[0] == 999
    data.write_text(data.read_text() + '{"a": 4}\n')           # edited after its stats
    import os
    os.utime(stale, (0, 0))
    assert count_samples(data)[0] == 4
    two = plan_for({"train_dataset_path": f"{data},{fake_dataset(tmp_path, 6, 'e')}",
                    "per_device_train_batch_size": 2})
    assert two.D == 10 and two.max_steps == 5
    with pytest.raises(UserError, match="train_dataset_path"):
        plan_for({"train_dataset_path": str(tmp_path / "missing.jsonl")})


def test_explicit_steps_and_warmup_are_kept(tmp_path):
    p = plan_for(bengali(tmp_path, max_steps=100, warmup_steps=7))
    assert (p.max_steps, p.warmup_steps) == (100, 7) and p.E == pytest.approx(100 * 64 / 29605)
    with pytest.raises(UserError, match="warmup_steps"):
        plan_for(bengali(tmp_path, max_steps=5, warmup_steps=5))


def test_pack_estimate_is_bin_packing():
    assert pack_estimate([60] * 10, 128) == (2.0, pytest.approx(120 / 128))
    spp, fill = pack_estimate([100, 30, 90, 40, 70, 50, 500], 128)  # 500 cannot fit: dropped
    assert spp == 1.5 and fill == pytest.approx(380 / (4 * 128))  # 100 | 90+30 | 70+50 | 40


def test_profile_counts_image_tokens_like_the_real_processor(icdar_words, tiny_model):
    """Image tokens per real ICDAR crop equal what PaddleFormers' image processor produces."""
    from engines.paddleformers import compat

    compat.apply()
    from paddleformers.transformers import AutoProcessor
    from PIL import Image

    counter = TokenCounter(tiny_model)
    prof = profile_dataset(icdar_words / "train.jsonl", counter, max_seq_len=36)
    processor = AutoProcessor.from_pretrained(str(tiny_model)).image_processor
    expected = 0
    for line in (icdar_words / "train.jsonl").read_text().splitlines():
        with Image.open(json.loads(line)["image_info"][0]["image_url"]) as img:
            t, h, w = processor(images=[img.convert("RGB")], return_tensors="np")["image_grid_thw"][0]
        expected += t * h * w // 4 + 2  # merge 2x2 patches, plus <|IMAGE_START|>/<|IMAGE_END|>
    assert prof.n == 21 and prof.image_tokens == expected
    assert prof.over_limit == sum(n > 36 for n in prof.lengths) > 0
    assert prof.longest == max(prof.lengths) and counter.exact_text


def test_packing_plan_uses_the_profile(icdar_words, tiny_model):
    cfg = {"train_dataset_path": str(icdar_words / "train.jsonl"), "packing": True,
           "max_seq_len": 128, "model_name_or_path": str(tiny_model), "num_train_epochs": 3}
    p = plan_for(cfg)
    assert 3 <= p.samples_per_seq <= 4 and 0.7 < p.fill <= 1
    assert p.max_steps == math.ceil(21 * 3 / p.samples_per_seq)
