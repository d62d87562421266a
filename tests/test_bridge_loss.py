"""The bridge's loss weights tokens: a step's loss is its token losses summed over its label tokens.

A 2-token answer and a long one share one optimizer step (batch 1, accumulation 2).
Before the first update the LoRA model is its base (LoRA B starts at zero), so the
logged first loss must equal the base model's token-weighted mean over both
samples, which differs from the mean of their two per-sample losses.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from samples.sample import make_sample
from tests.fixtures_bridge import engine_cfg, in_torch


def _first_loss_and_reference(model: str, data: str, image_root: str, run: str) -> dict:
    import torch

    from engines.bridge import families, train
    from engines.bridge.data import Codec, Tally, collate, examples
    from training.monitor import read_scalars

    cfg = engine_cfg(Path(model), Path(data), Path(image_root), per_device_train_batch_size=1,
                     gradient_accumulation_steps=2, max_steps=1, lora_dropout=0.0)
    train.run(cfg, Path(run))
    logged = read_scalars(Path(run) / "tensorboard", "train/loss")

    fam, net, processor = families.load(Path(model))
    net.eval()
    codec = Codec(fam, processor)
    pad = codec.tokenizer.pad_token_id or 0
    sums, counts, means = [], [], []
    with torch.no_grad():
        for ex in examples([Path(data)], codec, cfg["max_seq_len"], Tally(), Path(image_root)):
            mean = float(net(**collate([ex], pad)).loss)
            n = train.label_tokens([ex])
            sums.append(mean * n)
            counts.append(n)
            means.append(mean)
    return {"logged": logged, "weighted": sum(sums) / sum(counts), "plain": sum(means) / len(means),
            "counts": counts}


@pytest.mark.slow
def test_a_long_answer_weighs_by_its_tokens(tiny_bridge, shared_data, tmp_path):
    crops = shared_data / "paddleocr_rec"
    first = (crops / "rec_gt_train.txt").read_text(encoding="utf-8").splitlines()[:2]
    images = [str(crops / line.split("\t")[0]) for line in first]
    data = tmp_path / "unequal.jsonl"
    data.write_text("\n".join(json.dumps(make_sample([im], [("OCR:", text)])) for im, text in zip(
        images, ["7", "a much longer answer of many words, numbers 0123456789 and more words"])) + "\n")
    r = in_torch(_first_loss_and_reference, str(tiny_bridge["llava-clip"]), str(data),
                 str(shared_data), str(tmp_path / "run"))
    short, long = r["counts"]
    assert long > 5 * short                                   # the answers really are unequal
    assert abs(r["weighted"] - r["plain"]) > 1e-3             # so the two means differ
    assert [s for s, _ in r["logged"]] == [1]
    assert abs(r["logged"][0][1] - r["weighted"]) < 1e-4, r
