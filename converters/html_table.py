r"""`html-table`: a table image plus its HTML -> table recognition in OTSL.

    input (JSONL, one table per line; or a `name.html` file beside `name.png`):

    >>> from converters.registry import example
    >>> example("html-table", '''{"image": "tables/t1.png",
    ...   "html": "<table><tr><td colspan=\\"2\\">Total</td></tr><tr><td>1</td><td>2</td></tr></table>"}''')
    {"image_info": [{"matched_text_index": 0, "image_url": "tables/t1.png"}],
     "text_info": [{"text": "Table Recognition:", "tag": "mask"},
                   {"text": "<fcel>Total<lcel><nl><fcel>1<fcel>2<nl>", "tag": "no_mask"}],
     "reference_html": "<table><tr><td colspan=\"2\">Total</td></tr><tr><td>1</td><td>2</td></tr></table>"}

The HTML -> OTSL step and its checks are formats/otsl.py's.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from converters.chart import find_image
from converters.pubtabnet import table_sample
from converters.registry import Converter, Record, json_records
from samples.errors import SampleError
from samples.jsonl import load_json_item


class HTMLTable(Converter):
    def records(self, path: Path) -> Iterator[Record]:
        files = sorted(path.glob("*.html")) if path.is_dir() else [path] if path.suffix == ".html" else None
        if files is None:
            yield from json_records(path)
            return
        for f in files:
            yield Record(str(f), 1, {"html_file": str(f)})

    def convert(self, record: Record) -> dict:
        item = load_json_item(record.raw)
        if isinstance(item, dict) and "html_file" in item:
            f = Path(item["html_file"])
            try:
                html = f.read_bytes().decode("utf-8")
            except UnicodeDecodeError as e:
                raise SampleError(f"bad_encoding: {f.name} is not UTF-8 ({e.reason})") from None
            return table_sample(str(find_image(f).resolve()), html)
        if not isinstance(item, dict) or not isinstance(item.get("image"), str) \
                or not isinstance(item.get("html"), str):
            raise SampleError("bad_shape: expected {\"image\": path, \"html\": table}")
        return table_sample(item["image"], item["html"])
