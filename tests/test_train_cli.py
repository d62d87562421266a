"""`ocrsft train` end to end on the tiny model: full, LoRA, resume after a kill, and refusals."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from erniekit_ext.monitor import read_scalars
from tests.fixtures_model import digit_lines, tiny_model  # noqa: F401

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "paddleocr_vl" / "cpu_tiny.yaml"


def train_cmd(model, data, out, *extra):
    return [sys.executable, "-m", "ocrsft", "train", str(CONFIG), f"model_name_or_path={model}",
            f"train_dataset_path={data}", f"output_dir={out}", *extra]


def losses(out):
    return [v for _, v in read_scalars(out / "tensorboard", "train/loss")]


def test_full_run_plans_trains_and_plots(tiny_model, digit_lines, tmp_path):
    out = tmp_path / "run"
    res = subprocess.run(train_cmd(tiny_model, digit_lines, out, "max_steps=8"),
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "max_steps" in res.stdout and "check: 64 samples read" in res.stdout
    loss = losses(out)
    assert len(loss) == 8 and sum(loss[-2:]) < sum(loss[:2])
    assert (out / "loss.png").is_file()
    again = subprocess.run(train_cmd(tiny_model, digit_lines, out), capture_output=True, text=True)
    assert again.returncode == 2
    assert again.stderr.strip().count("\n") == 0 and "--overwrite" in again.stderr


def test_lora_trains_through_the_collate_fix(tiny_model, digit_lines, tmp_path):
    out = tmp_path / "lora"
    res = subprocess.run(train_cmd(tiny_model, digit_lines, out, "fine_tuning=LoRA", "lora_rank=8",
                                   "learning_rate=5e-3", "max_steps=8"),
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    loss = losses(out)
    assert len(loss) == 8 and loss[-1] < loss[0]
    assert list(out.glob("*lora*"))  # adapter files, not a full model


def test_killed_run_resumes_where_it_stopped(tiny_model, digit_lines, tmp_path):
    ref = tmp_path / "ref"
    subprocess.run(train_cmd(tiny_model, digit_lines, ref, "max_steps=12", "save_steps=4"),
                   capture_output=True, check=True, timeout=600)
    out = tmp_path / "killed"
    proc = subprocess.Popen(train_cmd(tiny_model, digit_lines, out, "max_steps=12", "save_steps=4"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (out / "checkpoint-4" / "saved_signal_0").exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    assert (out / "checkpoint-4").is_dir()
    res = subprocess.run(train_cmd(tiny_model, digit_lines, out, "max_steps=12", "save_steps=4")
                         + ["--resume"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 12
    lr = dict(read_scalars(out / "tensorboard", "train/learning_rate"))
    lr_ref = dict(read_scalars(ref / "tensorboard", "train/learning_rate"))
    # The schedule continues: the resumed steps see the uninterrupted run's learning rates.
    assert all(abs(lr[s] - lr_ref[s]) < 1e-9 for s in range(6, 13))


def test_refusals_are_one_line(tiny_model, digit_lines, tmp_path):
    broken = tmp_path / "model"
    broken.mkdir()
    res = subprocess.run(train_cmd(broken, digit_lines, tmp_path / "o"), capture_output=True,
                         text=True)
    assert res.returncode == 2 and "config.json" in res.stderr and "Traceback" not in res.stderr
    res = subprocess.run(train_cmd(tiny_model, digit_lines, tmp_path / "o", "engine=erniekit"),
                         capture_output=True, text=True)
    assert res.returncode == 2 and "ernie" in res.stderr and "Traceback" not in res.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1,\n")
    res = subprocess.run([sys.executable, "-m", "ocrsft", "train", str(bad)], capture_output=True,
                         text=True)
    assert res.returncode == 2 and "bad.yaml:" in res.stderr
