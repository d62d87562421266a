"""`paddleocr-rec`: PaddleOCR recognition labels, one `image_path<TAB>text` per line.

    input  (ch4_test_word_images_gt/word_1.png	Genaxis Theatre):
        word_1.png\tGenaxis Theatre
    output:
        {"image_info": [{"matched_text_index": 0, "image_url": "word_1.png"}],
         "text_info": [{"text": "OCR:", "tag": "mask"},
                       {"text": "Genaxis Theatre", "tag": "no_mask"}]}

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
