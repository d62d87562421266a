r"""`paddleocr-det`: PaddleOCR detection labels -> text spotting with boxes as text.

    input (paddleocr_det/test_icdar2015_label.txt: ch4_test_images/img_2.jpg, 1280x720,
    shortened to its first box), -O style=spotting (default; PaddleOCR-VL-1.5):

    >>> from converters.registry import example
    >>> line = ('ch4_test_images/img_2.jpg\t[{"transcription": "JOINT", '
    ...         '"points": [[790, 302], [903, 304], [902, 335], [790, 335]]}]')
    >>> example("paddleocr-det", line, image_root=SHARED / "paddleocr_det")
    {"image_info": [{"matched_text_index": 0, "image_url": "ch4_test_images/img_2.jpg"}],
     "text_info": [{"text": "Spotting:", "tag": "mask"},
                   {"text": "JOINT<|LOC_617|><|LOC_419|><|LOC_705|><|LOC_422|><|LOC_705|><|LOC_465|><|LOC_617|><|LOC_465|>", "tag": "no_mask"}]}

    -O style=internvl (seed 001's OCRDetInternVL2):

    >>> example("paddleocr-det", line, image_root=SHARED / "paddleocr_det", style="internvl")
    {"image_info": [{"matched_text_index": 0, "image_url": "ch4_test_images/img_2.jpg"}],
     "text_info": [{"text": "Detect all text and give boxes:", "tag": "mask"},
                   {"text": "<ref>JOINT</ref><box>[[617, 419, 705, 465]]</box>", "tag": "no_mask"}]}

`###` marks illegible text: `-O illegible=drop` (default) leaves those boxes
out; `-O illegible=keep` writes them with the text `###`. Boxes keep the
label's order; coordinates are 0-1000 (formats/boxes.py, which cites
how PaddleOCR-VL-1.5 itself writes and parses spotting answers).
"""
from __future__ import annotations

import json
from pathlib import Path

from converters.registry import Converter, Record, split_image_line
from formats import boxes
from samples.errors import SampleError
from samples.sample import check_image, make_sample, resolve_image
from samples.tasks import get_task

ILLEGIBLE = "###"


def split_label_line(raw: str) -> tuple[str, list]:
    """`path<TAB>json list` -> (path, list); shared by the det and KIE label formats."""
    path, payload = split_image_line(raw, "JSON list")
    try:
        items = json.loads(payload)
    except json.JSONDecodeError as e:
        raise SampleError(f"bad_json: {e.msg} at column {e.colno}") from None
    if not isinstance(items, list):
        raise SampleError("bad_json: the label is not a JSON list")
    return path, items


def image_size(ref: str, image_root: Path) -> tuple[int, int]:
    full = resolve_image(ref, image_root)
    return check_image(full)


class PaddleOCRDet(Converter):
    OPTIONS = {
        "style": ("spotting", "answer style: spotting (<|LOC_n|>) or internvl (<ref><box>)"),
        "illegible": ("drop", "'###' boxes: drop or keep"),
    }

    def __init__(self, image_root, **options):
        super().__init__(image_root, **options)
        from samples.errors import UserError

        if self.options["style"] not in boxes.STYLES:
            raise UserError("-O style", f"{self.options['style']!r} is not one of {', '.join(boxes.STYLES)}")
        if self.options["illegible"] not in ("drop", "keep"):
            raise UserError("-O illegible", f"{self.options['illegible']!r} is not drop or keep")

    def convert(self, record: Record) -> dict:
        path, items = split_label_line(record.raw)
        w, h = image_size(path, self.image_root)
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("transcription"), str):
                raise SampleError(f"bad_box: item {i} needs a string 'transcription'")
            text = item["transcription"]
            if text == ILLEGIBLE and self.options["illegible"] == "drop":
                continue
            try:
                quad = boxes.normalise(item.get("points"), w, h)
            except ValueError as e:
                raise SampleError(f"bad_box: item {i}: {e}") from None
            out.append((text, quad))
        if not out:
            raise SampleError("no_text: no legible box in this image")
        style = self.options["style"]
        task = get_task("spotting" if style == "spotting" else "det")
        return make_sample([path], [(task.prompt, boxes.format_items(out, style))])
