r"""`erniekit`: validate and normalise an existing ERNIEKit JSONL.

    input (a hand-written line, image path relative to the JSONL's folder):

    >>> from converters.registry import example
    >>> example("erniekit", '''{"text_info": [{"tag": "mask", "text": "OCR:", "id": 7},
    ...   {"tag": "no_mask", "text": "Genaxis Theatre"}], "image_info": [{"image_url": "test/word_1.png"}],
    ...   "source": "icdar"}''', image_root=SHARED / "paddleocr_rec")
    {"image_info": [{"matched_text_index": 0, "image_url": ".../paddleocr_rec/test/word_1.png"}],
     "text_info": [{"text": "OCR:", "tag": "mask"}, {"text": "Genaxis Theatre", "tag": "no_mask"}]}

Normalising keeps only what ERNIEKit and PaddleFormers read (`image_info`,
`text_info`, `system`), fills the default `matched_text_index` 0, and rewrites
image paths for the output's folder; every sample then passes the same checks
as freshly converted data.
"""
from __future__ import annotations

import os
from pathlib import Path

from converters.registry import Converter, Record
from samples.errors import SampleError
from samples.jsonl import load_json_item
from samples.sample import check_shape, is_url, real_dir


class ERNIEKit(Converter):
    def convert(self, record: Record) -> dict:
        item = load_json_item(record.raw)
        if not isinstance(item, dict):
            raise SampleError("bad_json: sample is not an object")
        images = item.get("image_info", [])
        if isinstance(images, list):
            images = [dict(im, matched_text_index=im.get("matched_text_index", 0))
                      if isinstance(im, dict) else im for im in images]
        check_shape({**item, "image_info": images})
        base = real_dir(str(Path(record.source).parent))
        sample = {
            "image_info": [{"matched_text_index": im["matched_text_index"],
                            "image_url": local(base, im["image_url"])} for im in images],
            "text_info": [{"text": t["text"], "tag": t["tag"]} for t in item["text_info"]],
        }
        if isinstance(item.get("system"), str) and item["system"]:
            sample["system"] = item["system"]
        return sample


def local(base: str, url: str) -> str:
    """A path relative to the source JSONL's folder; URLs and empty paths stay as written,
    so the validator names them as it does in `ocrsft validate`."""
    return url if is_url(url) or not url.strip() else os.path.join(base, url)
