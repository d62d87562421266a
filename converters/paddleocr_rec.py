r"""`paddleocr-rec`: PaddleOCR recognition labels, one `image_path<TAB>text` per line.

    input (paddleocr_rec/rec_gt_test.txt, first line; ICDAR2015 word crops):
        test/word_1.png<TAB>JOINT

    >>> from converters.registry import example
    >>> example("paddleocr-rec", SHARED / "paddleocr_rec/rec_gt_test.txt")
    {"image_info": [{"matched_text_index": 0, "image_url": "test/word_1.png"}],
     "text_info": [{"text": "OCR:", "tag": "mask"}, {"text": "JOINT", "tag": "no_mask"}]}

    -O task=seal (PaddleOCR-VL-1.5's seal block prompt, doc_parser --prompt_label seal),
    the same input line:
        {"image_info": [{"matched_text_index": 0, "image_url": "word_1.png"}],
         "text_info": [{"text": "Seal Recognition:", "tag": "mask"},
                       {"text": "Genaxis Theatre", "tag": "no_mask"}]}
    Seal crops are labelled like any recognition crop (PaddleOCR's seal text
    recognition data is rec-format); the answer is the seal's text in reading order.

Only the first tab splits: text may itself hold tabs, spaces and backslashes,
and is kept exactly (PaddleOCR's own reader does the same).
"""
from __future__ import annotations

from converters.registry import Converter, Record, split_image_line
from samples.errors import UserError
from samples.sample import make_sample
from samples.tasks import get_task

TASKS = ("ocr", "seal")


class PaddleOCRRec(Converter):
    OPTIONS = {"task": ("ocr", "prompt: ocr (OCR:) or seal (Seal Recognition:)")}

    def __init__(self, image_root, **options):
        super().__init__(image_root, **options)
        if self.options["task"] not in TASKS:
            raise UserError("-O task", f"{self.options['task']!r} is not one of {', '.join(TASKS)}")
        self.prompt = get_task(self.options["task"]).prompt

    def convert(self, record: Record) -> dict:
        path, text = split_image_line(record.raw, "text")
        return make_sample([path], [(self.prompt, text)])
