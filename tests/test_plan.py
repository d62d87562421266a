"""The max_steps planner against seed 002's worked example, and its refusals."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from converters.errors import UserError
from erniekit_ext.plan import load_config, plan_for


def fake_dataset(tmp_path, n):
    data = tmp_path / "train.jsonl"
    data.write_text("")
    (tmp_path / "train.stats.json").write_text(json.dumps({"written": n}))
    return data


def test_seed_002_worked_example(tmp_path):
    cfg = {"train_dataset_path": str(fake_dataset(tmp_path, 29605)), "num_train_epochs": 2,
           "packing": True, "packing_size": 8, "gradient_accumulation_steps": 8,
           "learning_rate": 5e-6}
    p = plan_for(cfg)
    assert (p.D, p.E, p.G, p.B, p.A) == (29605, 2, 1, 8, 8)
    assert p.max_steps == 926 and cfg["max_steps"] == 926
    assert p.warmup_steps == 10  # ceil(1% of 926)


def test_more_gpus_keep_the_global_batch_or_scale_lr(tmp_path):
    base = {"train_dataset_path": str(fake_dataset(tmp_path, 29605)), "num_train_epochs": 2,
            "per_device_train_batch_size": 8, "gradient_accumulation_steps": 8,
            "learning_rate": 5e-6}
    keep = plan_for(dict(base), gpus=8)
    assert keep.G * keep.B * keep.A == 64 and keep.max_steps == 926
    lr = plan_for(dict(base), gpus=8, scale="scale-lr")
    assert lr.learning_rate == pytest.approx(4e-5) and lr.max_steps == 116


def test_counts_a_jsonl_without_stats(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text("{}\n" * 10)
    p = plan_for({"train_dataset_path": str(data), "per_device_train_batch_size": 4})
    assert p.D == 10 and p.max_steps == 3


def test_bad_values_name_the_key(tmp_path):
    with pytest.raises(UserError, match="gradient_accumulation_steps"):
        plan_for({"train_dataset_path": str(fake_dataset(tmp_path, 5)),
                  "gradient_accumulation_steps": 0})
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: 1\nb: [unclosed\n")
    with pytest.raises(UserError, match=r"bad.yaml:\d+"):
        load_config(bad)


def test_cli_prints_the_table(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"train_dataset_path: {fake_dataset(tmp_path, 29605)}\nnum_train_epochs: 2\n"
                   "per_device_train_batch_size: 8\ngradient_accumulation_steps: 8\n")
    out = subprocess.run([sys.executable, "-m", "ocrsft", "plan", str(cfg)], capture_output=True,
                         text=True, check=True).stdout
    assert "926" in out and "max_steps" in out
