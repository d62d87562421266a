r"""`sroie`: ICDAR-2019 SROIE receipts (box csv + key json) -> key-value extraction.

    input (a SROIE folder with box/, img/, key/; the first receipt is key/000.json plus img/000.jpg):
        key/000.json: {"company": "BOOK TA .K (TAMAN DAYA) SDN BHD", "date": "25/12/2018",
                       "address": "NO.53 55,57 & 59, JALAN SAGU 18, TAMAN DAYA, 81100 JOHOR BAHRU, JOHOR.",
                       "total": "9.00"}

    >>> from converters.registry import example
    >>> example("sroie", SHARED / "sroie")
    {"image_info": [{"matched_text_index": 0, "image_url": ".../sroie/img/000.jpg"}],
     "text_info": [{"text": "Extract the key information as JSON:", "tag": "mask"},
                   {"text": "{\"company\": \"BOOK TA .K (TAMAN DAYA) SDN BHD\", \"date\": \"25/12/2018\", ...}", "tag": "no_mask"}]}

With `-O with_ocr=true` an `OCR:` turn comes first, answered by the receipt's
text lines from box/001.csv (`x1,y1,...,y4,TEXT`, split on the first 8
commas only since TEXT may hold commas; CRLF and LF both occur).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from converters.kie import kie_sample
from converters.registry import Converter, Record
from samples.errors import SampleError, UserError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def read_box_text(path: Path) -> str:
    """The text column of a SROIE box csv, one line per box, in file order."""
    try:
        raw = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise SampleError(f"bad_encoding: {path.name} is not UTF-8 ({e.reason})") from None
    lines = []
    for n, row in enumerate(raw.splitlines(), 1):
        if not row.strip():
            continue
        parts = row.split(",", 8)
        if len(parts) < 9 or not all(p.strip().lstrip("-").isdigit() for p in parts[:8]):
            raise SampleError(f"bad_box: {path.name}:{n} is not 8 coordinates and a text")
        lines.append(parts[8])
    return "\n".join(lines)


class SROIE(Converter):
    OPTIONS = {"with_ocr": (False, "add an OCR: turn with the receipt's full text first")}

    def records(self, path: Path) -> Iterator[Record]:
        key_dir = path / "key" if path.is_dir() else None
        if key_dir is None or not key_dir.is_dir():
            raise UserError(str(path), "expected a SROIE folder with key/, img/ and box/")
        for n, key in enumerate(sorted(key_dir.glob("*.json")), 1):
            yield Record(str(key), 1, str(key))

    def convert(self, record: Record) -> dict:
        key = Path(record.raw)
        root = key.parent.parent
        try:
            fields = json.loads(key.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise SampleError(f"bad_json: {key.name}: {e}") from None
        if not isinstance(fields, dict) or not fields or \
                not all(isinstance(v, str) for v in fields.values()):
            raise SampleError(f"bad_key: {key.name} is not an object of strings")
        image = next((root / "img" / (key.stem + s) for s in IMAGE_SUFFIXES
                      if (root / "img" / (key.stem + s)).is_file()), None)
        if image is None:
            raise SampleError(f"missing_image: img/{key.stem}.jpg")
        text = read_box_text(root / "box" / f"{key.stem}.csv") if self.options["with_ocr"] else None
        return kie_sample(str(image.resolve()), fields, text)
