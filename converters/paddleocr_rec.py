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

from pathlib import Path
from typing import Iterator

from converters.errors import SampleError
from converters.jsonl import iter_lines
from converters.registry import Converter, Record, register
from converters.sample import make_sample
from converters.tasks import get_task


@register("paddleocr-rec")
class PaddleOCRRec(Converter):
    def records(self, path: Path) -> Iterator[Record]:
        for n, line in iter_lines(path):
            yield Record(str(path), n, line)

    def convert(self, record: Record) -> dict:
        if "\t" not in record.raw:
            raise SampleError("bad_line: expected 'image_path<TAB>text'")
        path, text = record.raw.split("\t", 1)
        if not path.strip():
            raise SampleError("bad_line: empty image path")
        return make_sample([path.strip()], [(get_task("ocr").prompt, text)])
