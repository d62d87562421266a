r"""`im2latex`: the im2latex-100k / im2markup layout -> formula recognition.

    input (im2latex/test20.lst, first line; the formula is line 1000 of formulas.lst, 0-based):
        1000 7944775fc9 basic

    >>> from converters.registry import example
    >>> example("im2latex", SHARED / "im2latex/test20.lst")
    {"image_info": [{"matched_text_index": 0, "image_url": ".../im2latex/images/7944775fc9.png"}],
     "text_info": [{"text": "Formula Recognition:", "tag": "mask"},
                   {"text": "\\[\\alpha_1^r \\gamma_1 + \\dots + \\alpha_N^r \\gamma_N = 0\\quad(r=1,...,R)\\; ,\\]", "tag": "no_mask"}]}

The list file names `formula_index image_stem render_style`; formulas.lst is
split on "\n" only (some formulas hold a bare "\r") and read by seeking
through a line-offset index, so memory stays at 8 bytes per formula. The
images are un-cropped full pages: pass `-O crop_ink=true`.
"""
from __future__ import annotations

from array import array
from pathlib import Path
from typing import Iterator

from converters.latex import FormulaConverter
from converters.registry import Record
from samples.errors import SampleError, UserError
from samples.jsonl import iter_lines


class LineIndex:
    """Random access to the lines of a big file, by byte offset."""

    def __init__(self, path: Path):
        self.path = path
        self.offsets = array("Q", [0])
        with open(path, "rb") as f:
            pos = 0
            for block in iter(lambda: f.read(1 << 20), b""):
                start = 0
                while (i := block.find(b"\n", start)) >= 0:
                    self.offsets.append(pos + i + 1)
                    start = i + 1
                pos += len(block)
        self.size = pos

    def __len__(self) -> int:
        n = len(self.offsets) - 1
        return n + (self.offsets[-1] < self.size)

    def __getitem__(self, i: int) -> bytes:
        if not 0 <= i < len(self):
            raise IndexError(i)
        end = self.offsets[i + 1] - 1 if i + 1 < len(self.offsets) else self.size
        with open(self.path, "rb") as f:
            f.seek(self.offsets[i])
            return f.read(end - self.offsets[i])


class Im2Latex(FormulaConverter):
    OPTIONS = {**FormulaConverter.OPTIONS,
               "formulas": ("formulas.lst", "formula file, relative to the list file's folder"),
               "images": ("images", "image folder, relative to the list file's folder"),
               "suffix": (".png", "image file suffix")}

    def __init__(self, image_root, **options):
        super().__init__(image_root, **options)
        self._index: dict[Path, LineIndex] = {}

    def formulas(self, list_file: Path) -> LineIndex:
        path = (list_file.parent / self.options["formulas"]).resolve()
        if path not in self._index:
            if not path.is_file():
                raise UserError(str(path), "formulas file not found (-O formulas=PATH)")
            self._index[path] = LineIndex(path)
        return self._index[path]

    def records(self, path: Path) -> Iterator[Record]:
        self.formulas(path)  # a missing formulas file stops the run here, not per line
        for n, line in iter_lines(path):
            yield Record(str(path), n, line)

    def convert(self, record: Record) -> dict:
        parts = record.raw.split()
        if len(parts) < 2 or not parts[0].isdigit():
            raise SampleError("bad_line: expected 'formula_index image_stem [style]'")
        list_file = Path(record.source)
        try:
            raw = self.formulas(list_file)[int(parts[0])]
        except IndexError:
            raise SampleError(f"bad_index: formula {parts[0]} is past the end of "
                              f"{self.options['formulas']}") from None
        try:
            latex = raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as e:
            raise SampleError(f"bad_encoding: formula {parts[0]} is not UTF-8 ({e.reason})") from None
        image = (list_file.parent / self.options["images"] / (parts[1] + self.options["suffix"])).resolve()
        return self.sample(str(image), latex)
