r"""`paddleocr-rec`: PaddleOCR recognition labels, one `image_path<TAB>text` per line.

    input (paddleocr_rec/rec_gt_test.txt, first line; ICDAR2015 word crops):
        test/word_1.png<TAB>JOINT

    >>> from converters.registry import example
    >>> example("paddleocr-rec", SHARED / "paddleocr_rec/rec_gt_test.txt")
    {"image_info": [{"matched_text_index": 0, "image_url": "test/word_1.png"}],
     "text_info": [{"text": "OCR:", "tag": "mask"}, {"text": "JOINT", "tag": "no_mask"}]}

Only the first tab splits: text may itself hold tabs, spaces and backslashes,
and is kept exactly (PaddleOCR's own reader does the same).
"""
from __future__ import annotations

from converters.registry import Converter, Record, register, split_image_line
from converters.sample import make_sample
from converters.tasks import get_task


@register("paddleocr-rec")
class PaddleOCRRec(Converter):
    def convert(self, record: Record) -> dict:
        path, text = split_image_line(record.raw, "text")
        return make_sample([path], [(get_task("ocr").prompt, text)])
