"""PaddleOCR-VL-1.5's new block tasks: `Seal Recognition:` from recognition labels, and
`Spotting:` quadrilaterals scored as polygons (not their bounding boxes)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from converters.run import convert
from evaluation.metrics.det import score
from samples.errors import UserError
from samples.tasks import task_for_prompt


def test_seal_recognition_from_real_labels(shared_data, tmp_path):
    src = shared_data / "paddleocr_rec"
    c = convert("paddleocr-rec", [src / "rec_gt_test.txt"], tmp_path / "s.jsonl", image_root=src, task="seal")
    rows = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    first = (src / "rec_gt_test.txt").read_text().splitlines()[0].split("\t", 1)
    assert c.written == len(rows) == 21
    assert rows[0]["text_info"] == [{"text": "Seal Recognition:", "tag": "mask"},
                                    {"text": first[1], "tag": "no_mask"}]
    task = task_for_prompt(rows[0]["text_info"][0]["text"])
    assert (task.name, task.metric, task.prompt_label) == ("seal", "ocr", "seal")  # doc_parser's seal block
    with pytest.raises(UserError, match="-O task: 'stamp' is not one of ocr, seal"):
        convert("paddleocr-rec", [src / "rec_gt_test.txt"], tmp_path / "x.jsonl", image_root=src, task="stamp")


def test_spotting_boxes_are_polygons():
    """A tilted text line: the parallelogram (0,0)(600,0)(800,100)(200,100) inside its
    bounding rectangle 800x100. Polygon IoU = 60000 / 80000; a box metric would say 1."""
    tilted = "A<|LOC_0|><|LOC_0|><|LOC_600|><|LOC_0|><|LOC_800|><|LOC_100|><|LOC_200|><|LOC_100|>"
    rect = "A<|LOC_0|><|LOC_0|><|LOC_800|><|LOC_0|><|LOC_800|><|LOC_100|><|LOC_0|><|LOC_100|>"
    from evaluation.metrics.det import boxes, iou

    (_, a), (_, b) = boxes(tilted)[0], boxes(rect)[0]
    assert iou(a, b) == pytest.approx(0.75)
    assert score(tilted, tilted)["f1"] == 1.0 and score(tilted, rect)["tp"] == 1  # 0.75 >= 0.5
    thin = "A<|LOC_0|><|LOC_0|><|LOC_200|><|LOC_0|><|LOC_800|><|LOC_100|><|LOC_600|><|LOC_100|>"
    assert iou(boxes(thin)[0][1], b) == pytest.approx(0.25) and score(thin, rect)["tp"] == 0


@pytest.mark.slow
def test_doc_parser_feeds_spotting_blocks_at_its_own_resolution(shared_data, tmp_path, monkeypatch):
    """Pins upstream behaviour the README warns about: for `Spotting:` the pipeline doubles
    small images and forces 112896..1605632 pixels, whatever the model folder says, so
    `--via doc-parser` serves other image tokens than `--via native` (and training) do."""
    from paddlex.inference.models.doc_vlm.processors.paddleocr_vl import _paddleocr_vl as proc

    from engines.paddleformers.tiny_model import build_tiny_model
    from inference.predict import predict_file

    model = build_tiny_model(tmp_path / "m", version="1.5")
    seen = []
    real = proc.PaddleOCRVLProcessor.preprocess

    def spy(self, inputs, min_pixels=None, max_pixels=None):
        out = real(self, inputs, min_pixels=min_pixels, max_pixels=max_pixels)
        seen.append((len(out["input_ids"].tolist()[0]), min_pixels, max_pixels))
        return out

    monkeypatch.setattr(proc.PaddleOCRVLProcessor, "preprocess", spy)
    img = shared_data / "paddleocr_det" / "ch4_test_images" / "img_2.jpg"  # 1280x720
    data = tmp_path / "s.jsonl"
    data.write_text(json.dumps({"image_info": [{"matched_text_index": 0, "image_url": str(img)}],
                                "text_info": [{"text": "Spotting:", "tag": "mask"},
                                              {"text": "JOINT", "tag": "no_mask"}]}) + "\n")
    for via in ("native", "doc-parser"):
        predict_file(model, data, tmp_path / f"{via}.jsonl", via=via, max_new_tokens=1,
                     image_root=Path("/"), progress=False)
    (native, *_), (piped, lo, hi) = seen
    assert (lo, hi) == (112896, 1605632)  # not the folder's 784..50176
    assert piped > 10 * native, seen
