"""`ocrsft infer --batch-size N --device D`: a batch gives what one sample at a time gives."""
from __future__ import annotations

import json

import pytest

from samples.errors import UserError
from training import device


def predictions(model, data, root, out, **kw) -> list[str]:
    from inference.predict import predict_file

    predict_file(model, data, out, max_new_tokens=12, image_root=root,
                 progress=False, **kw)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert not any(r["error"] for r in rows), rows
    return [r["prediction"] for r in rows]


@pytest.mark.parametrize("family", ["llava-clip", "llava-chinese-clip"])
def test_batched_generate_equals_one_by_one(tiny_bridge, rec_data, shared_data, tmp_path, family):
    model = tiny_bridge[family]
    one = predictions(model, rec_data, shared_data, tmp_path / "one.jsonl", device="cpu")
    batched = predictions(model, rec_data, shared_data, tmp_path / "three.jsonl", device="cpu",
                          batch_size=3)
    assert len(one) == 8 and batched == one
    assert len(set(one)) > 1            # the rows really differ, so a mix-up would show


def test_device_names(monkeypatch):
    assert device.resolve("cpu") == "cpu"
    assert (device.paddle_device("gpu:1"), device.torch_device("gpu:1")) == ("gpu:1", "cuda:1")
    assert device.torch_device("cuda") == "cuda:0"
    monkeypatch.setattr(device, "gpu_seen", lambda: True)
    assert device.resolve("auto") == "gpu:0"
    monkeypatch.setattr(device, "gpu_seen", lambda: False)
    assert device.resolve("auto") == "cpu"
    with pytest.raises(UserError, match="--device: 'tpu' is not auto, cpu or gpu:N"):
        device.resolve("tpu")


def test_native_paddlex_batching_is_refused_in_one_line(tmp_path):
    from inference.predict import open_predictor

    with pytest.raises(UserError, match="--batch-size: paddlex predicts a local PaddleOCR-VL one"):
        open_predictor(tmp_path, "native", "native", None, 1, 8, "cpu", batch_size=4)
    with pytest.raises(UserError, match="--batch-size: paddlex predicts a local PaddleOCR-VL one"):
        open_predictor(tmp_path, "doc-parser", "native", None, 1, 8, "cpu", batch_size=4)


def _many_and_singles(model: str, data: str) -> tuple[list[str], list[str]]:
    from pathlib import Path

    from engines.bridge.generate import Predictor

    p = Predictor(Path(model), 12, "cpu")
    reqs = [("OCR:", json.loads(line)["image_info"][0]["image_url"])
            for line in Path(data).read_text().splitlines()[:4]]
    return p.many(reqs), [p(prompt, image) for prompt, image in reqs]


def test_one_generate_call_batches_without_a_fallback(tiny_bridge, rec_data):
    """Predictor.many itself (no one-by-one retry behind it) matches single calls."""
    from tests.fixtures_bridge import in_torch

    many, singles = in_torch(_many_and_singles, str(tiny_bridge["llava-clip"]), str(rec_data))
    assert many == singles and len(many) == 4
