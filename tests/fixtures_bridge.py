"""Tiny bridge models and data, built once per session, for every bridge test.

Imported by the tests that need them (`from tests.fixtures_bridge import ...`).
Everything that needs torch-enabled transformers runs through `in_torch`: here when
this pytest process has not imported paddleformers, else in a fresh interpreter.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engines.bridge import runtime
from samples.sample import make_sample


def in_torch(fn, *args):
    return runtime.isolated(fn)(*args)


def rec_jsonl(shared_data: Path, out: Path, n: int = 8) -> Path:
    """The real PaddleOCR recognition crops as ERNIEKit JSONL (absolute image paths)."""
    root = shared_data / "paddleocr_rec"
    lines = (root / "rec_gt_train.txt").read_text(encoding="utf-8").splitlines()[:n]
    with open(out, "w", encoding="utf-8") as f:
        for line in lines:
            path, text = line.split("\t")
            f.write(json.dumps(make_sample([str(root / path)], [("OCR:", text)]), ensure_ascii=False) + "\n")
    return out


def _build(kinds: tuple, root: Path) -> dict:
    from engines.bridge import tiny

    return {k: str(tiny.build(k, root / k)) for k in kinds}


@pytest.fixture(scope="session")
def tiny_bridge(tmp_path_factory):
    """Tiny random models of every native bridge family, built once (one spawn at most)."""
    from engines.bridge.tiny import BUILDERS

    return {k: Path(v) for k, v in in_torch(_build, tuple(BUILDERS),
                                            tmp_path_factory.mktemp("bridge_models")).items()}


@pytest.fixture(scope="session")
def rec_data(shared_data, tmp_path_factory) -> Path:
    return rec_jsonl(shared_data, tmp_path_factory.mktemp("bridge_data") / "train.jsonl")


def engine_cfg(model: Path, data: Path, image_root: Path, **extra) -> dict:
    cfg = dict(model_name_or_path=str(model), train_dataset_path=str(data), image_root=str(image_root),
               max_seq_len=128, per_device_train_batch_size=4, logging_steps=1, seed=3)
    cfg.update(extra)
    return cfg
