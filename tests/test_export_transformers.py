"""An `ocrsft export` folder also loads in transformers, model and processor, and generates.

transformers runs in a child process: once paddleformers is imported (paddlex does
it), transformers in that process has hidden torch for good.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from inference.export import export
from inference.parity import ServedPrompt

GENERATE = """
import json, sys
import torch
from PIL import Image
from transformers import AutoProcessor, PaddleOCRVLForConditionalGeneration

folder, image = sys.argv[1], sys.argv[2]
model = PaddleOCRVLForConditionalGeneration.from_pretrained(folder).eval()
processor = AutoProcessor.from_pretrained(folder)
messages = [{"role": "user", "content": [{"type": "image", "image": Image.open(image).convert("RGB")},
                                         {"type": "text", "text": "OCR:"}]}]
inputs = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                       return_dict=True, return_tensors="pt")
with torch.no_grad():
    out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
print(json.dumps({"input_ids": inputs["input_ids"][0].tolist(), "new": out.shape[1] - inputs["input_ids"].shape[1],
                  "text": processor.batch_decode(out[:, inputs["input_ids"].shape[1]:])[0]}))
"""


@pytest.fixture(scope="module")
def exported(trained_run, tiny_model, tmp_path_factory):
    return export(trained_run, tmp_path_factory.mktemp("export") / "model", base=tiny_model)


def test_export_loads_and_generates_in_transformers(exported, digit_lines):
    image = next((digit_lines.parent / "images").glob("*.png"))
    res = subprocess.run([sys.executable, "-c", GENERATE, str(exported), str(image)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert 1 <= got["new"] <= 4 and isinstance(got["text"], str)
    # transformers' processor builds the very prompt paddlex serves.
    assert got["input_ids"] == ServedPrompt(exported)(str(image), "OCR:")
