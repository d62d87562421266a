"""Session fixtures that build real things once: a tiny model, a rendered line set, real
ICDAR word crops converted, a trained run.

Registered once in tests/conftest.py, so each is built once per pytest session; test
modules never import them (an import would register a second, separately built copy).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from converters.synth_lines import render_lines
from samples.sample import make_sample


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from engines.paddleformers.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", preset="test", seed=0)


@pytest.fixture(scope="session")
def digit_lines(tmp_path_factory) -> Path:
    """64 rendered digit lines as ERNIEKit JSONL (train.jsonl) beside their images."""
    root = tmp_path_factory.mktemp("lines")
    labels = render_lines(root, 64, "0123456789", seed=5, progress=False)
    with open(root / "train.jsonl", "w") as f:
        for line in labels.read_text().splitlines():
            path, text = line.split("\t")
            f.write(json.dumps(make_sample([path], [("OCR:", text)])) + "\n")
    return root / "train.jsonl"


def tiny_train_config(model: Path, data: Path, out: Path, steps: int = 12) -> dict:
    return dict(
        model_name_or_path=str(model), stage="VL-SFT", fine_tuning="full",
        template="paddleocr_vl", template_backend="custom",
        train_dataset_type="erniekit", train_dataset_path=str(data), train_dataset_prob="1.0",
        max_seq_len=48, padding_free=False, per_device_train_batch_size=4,
        gradient_accumulation_steps=1, max_steps=steps, learning_rate=2e-3,
        lr_scheduler_type="cosine", warmup_steps=1, min_lr=1e-5, logging_steps=1,
        save_strategy="no", output_dir=str(out), logging_dir=str(out / "tensorboard"),
        report_to="tensorboard", do_train=True, seed=1, disable_tqdm=True,
    )


@pytest.fixture(scope="session")
def trained_run(tiny_model, digit_lines, tmp_path_factory) -> Path:
    """A full fine-tune of the tiny model, run in a subprocess like `ocrsft train` does on CPU."""
    out = tmp_path_factory.mktemp("run") / "run"
    return train_in_subprocess(tiny_train_config(tiny_model, digit_lines, out), out)


def train_in_subprocess(cfg: dict, out: Path) -> Path:
    """The paddleformers engine on `cfg` in a fresh interpreter, as `ocrsft train` runs on CPU."""
    import subprocess
    import sys

    import yaml

    cfg_file = out.parent / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    code = ("import sys, yaml; from pathlib import Path; "
            "from engines.paddleformers.train import launch; "
            "launch(yaml.safe_load(open(sys.argv[1])), Path(sys.argv[2]), augment=False)")
    subprocess.run([sys.executable, "-c", code, str(cfg_file), str(out)], check=True,
                   capture_output=True)
    return out


@pytest.fixture(scope="session")
def icdar_words(shared_data, tmp_path_factory) -> Path:
    """ICDAR2015 word crops converted like a user's data: train.jsonl (21) and val.jsonl (8)."""
    from converters.run import convert

    src, out = shared_data / "paddleocr_rec", tmp_path_factory.mktemp("icdar")
    for labels, name in (("rec_gt_test.txt", "train"), ("rec_gt_train.txt", "val")):
        convert("paddleocr-rec", [src / labels], out / f"{name}.jsonl", image_root=src,
                absolute_paths=True)
    return out
