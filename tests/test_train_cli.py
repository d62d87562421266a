"""`ocrsft train` end to end on the tiny model and real ICDAR word crops (../shared/data).

Full, LoRA and packing runs each train a few steps and the loss falls; eval loss
is logged on the validation split; a killed run resumes with its step counter
and learning-rate schedule intact; the LoRA merge reproduces the adapter's
logits; frozen towers stay bit-identical.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from training.monitor import read_scalars

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "paddleocr_vl" / "cpu_tiny.yaml"


def train(model, words, out, *overrides, flags=(), wait=True):
    cmd = [sys.executable, "-m", "ocrsft", "train", str(CONFIG), f"model_name_or_path={model}",
           f"train_dataset_path={words / 'train.jsonl'}",
           f"eval_dataset_path={words / 'val.jsonl'}", f"output_dir={out}", *overrides, *flags]
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    return res.stdout


def losses(out: Path) -> list[float]:
    return [v for _, v in read_scalars(out / "tensorboard", "train/loss")]


def falls(loss: list[float]) -> bool:
    return sum(loss[-3:]) / 3 < sum(loss[:3]) / 3 - 0.5


def weights(folder: Path) -> dict:
    from safetensors.numpy import load_file

    out = {}
    for f in folder.glob("*.safetensors"):
        out.update(load_file(f))
    return out


def served_predictions(run, base, words, tmp_path, n):
    from inference.export import export
    from inference.predict import predict_file

    data = tmp_path / "first.jsonl"
    data.write_text("".join((words / "val.jsonl").read_text().splitlines(keepends=True)[:n]))
    model = export(run, tmp_path / "export", base=base)
    predict_file(model, data, tmp_path / "pred.jsonl", max_new_tokens=24, image_root=Path("/"),
                 progress=False)
    return [json.loads(x)["prediction"] for x in (tmp_path / "pred.jsonl").read_text().splitlines()]


def test_full_run_plans_checks_trains_evaluates_and_plots(tiny_model, icdar_words, tmp_path):
    out = tmp_path / "run"
    stdout = train(tiny_model, icdar_words, out, "max_steps=12", "eval_steps=6", "save_steps=12",
                   "learning_rate=3e-3")
    assert stdout.index("plan:") < stdout.index("check: train.jsonl: 21 samples read") \
        < stdout.index("train: done")
    assert "check: val.jsonl: 8 samples read" in stdout
    loss = losses(out)
    assert len(loss) == 12 and falls(loss), loss
    assert [s for s, _ in read_scalars(out / "tensorboard", "eval/loss")] == [6, 12]
    cer = read_scalars(out / "tensorboard", "eval/cer")  # decoded by the model being trained
    assert [s for s, _ in cer] == [6, 12] and "train: eval/cer" in stdout
    decoded = [json.loads(x) for x in (out / "eval_generation.jsonl").read_text().splitlines()]
    assert [r["step"] for r in decoded] == [6] * 4 + [12] * 4
    assert sum(r["cer"] for r in decoded[4:]) / 4 == pytest.approx(cer[-1][1])
    # What training decoded is what serving reads: the export, through paddlex, says the same.
    served = served_predictions(out, tiny_model, icdar_words, tmp_path, n=4)
    assert [r["prediction"] for r in decoded[4:]] == served
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    resolved = yaml.safe_load((out / "resolved.yaml").read_text())
    assert resolved["max_steps"] == 12 and resolved["device"] == "cpu"
    assert "engine" not in resolved and "ocr_augmentation" not in resolved
    seen = json.loads((out / "data_seen.json").read_text())
    assert seen["steps"] == 12 and seen["tokens_per_second"] > 0

    again = subprocess.run([sys.executable, "-m", "ocrsft", "train", str(CONFIG),
                            f"output_dir={out}", f"model_name_or_path={tiny_model}",
                            f"train_dataset_path={icdar_words / 'train.jsonl'}",
                            f"eval_dataset_path={icdar_words / 'val.jsonl'}"],
                           capture_output=True, text=True)
    assert again.returncode == 2 and "--overwrite" in again.stderr
    assert again.stderr.strip().count("\n") == 0


def test_lora_trains_merges_and_matches_the_adapter(tiny_model, icdar_words, tmp_path):
    from engines.paddleformers.merge import logit_gap, merge_lora

    out = tmp_path / "lora"
    # The second eval sample asks for a formula (its word, "154"-like labels, is valid LaTeX), so the
    # decoded eval scores it by the formula family's own metric, picked from its prompt.
    words = tmp_path / "words"
    words.mkdir()
    (words / "train.jsonl").write_text((icdar_words / "train.jsonl").read_text())
    val = [json.loads(x) for x in (icdar_words / "val.jsonl").read_text().splitlines()]
    val[1]["text_info"][0]["text"] = "Formula Recognition:"
    (words / "val.jsonl").write_text("".join(json.dumps(v) + "\n" for v in val))
    stdout = train(tiny_model, words, out, "fine_tuning=LoRA", "lora_rank=8", "learning_rate=1e-2",
                   "max_steps=12", "eval_steps=12", "save_strategy=no", "freeze_config=freeze_vision")
    assert "train: eval/formula_token_ned" in stdout and "train: eval/cer" in stdout
    loss = losses(out)
    assert len(loss) == 12 and falls(loss), loss
    # LoRA evaluation runs (compat 7), eval loss and each family's decoded score alike
    for tag in ("eval/loss", "eval/cer", "eval/formula_token_ned"):
        assert [s for s, _ in read_scalars(out / "tensorboard", tag)] == [12], tag
    decoded = [json.loads(x) for x in (out / "eval_generation.jsonl").read_text().splitlines()]
    assert [r["family"] for r in decoded] == ["ocr", "formula", "ocr", "ocr"]
    assert "token_ned" in decoded[1] and "cer" not in decoded[1]
    cer = read_scalars(out / "tensorboard", "eval/cer")[0][1]
    assert cer == pytest.approx(sum(decoded[i]["cer"] for i in (0, 2, 3)) / 3, abs=1e-6)  # OCR rows only
    ned = read_scalars(out / "tensorboard", "eval/formula_token_ned")[0][1]
    assert ned == pytest.approx(decoded[1]["token_ned"], abs=1e-6)
    targets = json.loads((out / "lora_config.json").read_text())["target_modules"]
    assert targets and not any("visual" in t for t in targets)  # freeze_vision: no adapters there
    assert any("mlp_AR" in t for t in targets)
    merged = merge_lora(out, tmp_path / "merged", tiny_model)
    image = Path(json.loads((icdar_words / "val.jsonl").read_text().splitlines()[0])
                 ["image_info"][0]["image_url"])
    assert logit_gap(tiny_model, out, merged, image) < 1e-5
    # `ocrsft export RUN` is the user's one command: it merges, then makes the folder servable.
    res = subprocess.run([sys.executable, "-m", "ocrsft", "export", str(out), "-o",
                          str(tmp_path / "export")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "merged the LoRA adapter" in res.stdout and "loads in paddlex" in res.stdout
    served, ours = weights(tmp_path / "export"), weights(merged)
    assert all((served[k] == v).all() for k, v in ours.items() if k in served)
    assert not list(tmp_path.glob(".merging-*"))


def test_packing_trains_with_the_vision_side_frozen(tiny_model, icdar_words, tmp_path):
    out = tmp_path / "packed"
    stdout = train(tiny_model, icdar_words, out, "packing=true", "max_seq_len=128",
                   "per_device_train_batch_size=1", "max_steps=-1", "num_train_epochs=3",
                   "learning_rate=3e-3", "freeze_config=freeze_vision freeze_aligner",
                   "do_eval=false", "evaluation_strategy=no", "save_strategy=no")
    plan = json.loads((out / "plan.json").read_text())
    seen = json.loads((out / "data_seen.json").read_text())
    assert 2 < plan["samples_per_seq"] and seen["packing"] and seen["steps"] == plan["max_steps"]
    assert abs(seen["fill"] - plan["fill"]) < 0.05, (seen, plan)   # the planner's estimate holds
    assert "measured vs" in stdout
    loss = losses(out)
    assert len(loss) == plan["max_steps"] and falls(loss), loss
    before, after = weights(tiny_model), weights(out)
    frozen = [k for k in after if k.startswith(("visual.", "mlp_AR.")) and k in before]
    trained = [k for k in after if k.startswith("model.layers.") and k in before]
    assert frozen and all((before[k] == after[k]).all() for k in frozen)
    assert trained and any((before[k] != after[k]).any() for k in trained)


def test_killed_run_resumes_its_steps_and_schedule(tiny_model, icdar_words, tmp_path):
    from paddleformers.trainer.trainer_utils import get_scheduler

    out = tmp_path / "killed"
    args = ("max_steps=30", "save_steps=5", "warmup_steps=3", "do_eval=false", "evaluation_strategy=no")
    proc = train(tiny_model, icdar_words, out, *args, wait=False)
    deadline = time.time() + 300
    while not (out / "checkpoint-5" / "saved_signal_0").exists() and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "trainer_state.json").exists(), "the run finished before it was killed"
    first = [s for s, _ in read_scalars(out / "tensorboard", "train/loss")]
    assert 5 <= first[-1] < 30

    stdout = train(tiny_model, icdar_words, out, *args, flags=["--resume"])
    assert "train: done" in stdout
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 30
    lr = dict(read_scalars(out / "tensorboard", "train/learning_rate"))
    assert sorted(lr) == list(range(1, 31))   # the counter went on from the checkpoint
    sched = get_scheduler("cosine", learning_rate=1e-3, num_warmup_steps=3, num_training_steps=30,
                          min_lr=1e-5)
    expected = []
    for _ in range(30):
        sched.step()
        expected.append(sched.last_lr)
    # Logged to 4 significant digits; a restarted schedule would be off by up to 3x.
    assert [lr[s] for s in range(1, 31)] == pytest.approx(expected, rel=1e-3)


def test_refusals_are_one_line(tiny_model, icdar_words, tmp_path, capsys):
    from ocrsft.cli import main

    def refused(*cmd):
        assert main(["train", *map(str, cmd)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith("ocrsft train: error: "), err
        return err

    broken = tmp_path / "model"
    broken.mkdir()
    common = [f"train_dataset_path={icdar_words / 'train.jsonl'}",
              f"eval_dataset_path={icdar_words / 'val.jsonl'}", f"output_dir={tmp_path / 'o'}"]
    assert "config.json" in refused(CONFIG, f"model_name_or_path={broken}", *common)
    assert "ernie" in refused(CONFIG, f"model_name_or_path={tiny_model}", "engine=erniekit", *common)
    assert "learning_rte" in refused(CONFIG, "learning_rte=1", *common)
    assert "max_seq_len" in refused(CONFIG, f"model_name_or_path={tiny_model}", "max_seq_len=0",
                                    *common)
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: 1\nb: 2\n  c: 3\n")
    assert "bad.yaml:3:" in refused(bad)
