r"""`chart`: a chart image plus its data table (CSV, JSON or markdown) -> chart recognition.

    input (chart_docling/barchart.gt.md beside barchart.png; first rows):
        |   Number of impellers |   single-frequency |   multi-frequency |
        |-----------------------|--------------------|-------------------|
        |                     1 |               0.06 |              0.16 |

    >>> from converters.registry import example
    >>> example("chart", SHARED / "chart_docling/barchart.gt.md")
    {"image_info": [{"matched_text_index": 0, "image_url": ".../chart_docling/barchart.png"}],
     "text_info": [{"text": "Chart Recognition:", "tag": "mask"},
                   {"text": "Number of impellers | single-frequency | multi-frequency\n1 | 0.06 | 0.16\n2 | 0.12 | 0.26\n...", "tag": "no_mask"}]}

The answer is seed 002's chart markdown: cells joined by " | ", rows by
newlines, no outer pipes and no separator row. Inputs are table files (or
folders of them); the image has the table's name with an image suffix
(`barchart.gt.md` -> `barchart.gt.png`, else `barchart.png`). Tables: CSV;
JSON as a list of rows, a list of objects (keys become the header) or
{"columns": [...], "data": [[...]]}; a markdown pipe table.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Iterator

from converters.registry import Converter, Record
from samples.errors import SampleError
from samples.sample import make_sample
from samples.tasks import get_task

TABLE_SUFFIXES = (".csv", ".json", ".md")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        raise SampleError("bad_table: a cell is not a scalar")
    return str(v).strip()


def rows_from_json(obj) -> list[list]:
    if isinstance(obj, dict) and isinstance(obj.get("columns"), list) and isinstance(obj.get("data"), list):
        return [obj["columns"], *obj["data"]]
    if isinstance(obj, list) and obj and all(isinstance(r, dict) for r in obj):
        header = list(obj[0])
        return [header, *([r.get(k) for k in header] for r in obj)]
    if isinstance(obj, list) and all(isinstance(r, list) for r in obj):
        return obj
    raise SampleError("bad_table: JSON must be rows, objects, or {columns, data}")


def rows_from_markdown(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if all(c and set(c) <= set("-:") for c in cells):
            continue  # the |---|---| separator
        rows.append(cells)
    return rows


def read_table(path: Path) -> list[list[str]]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SampleError(f"bad_encoding: {path.name} is not UTF-8 ({e.reason})") from None
    if path.suffix == ".json":
        try:
            rows = rows_from_json(json.loads(text))
        except json.JSONDecodeError as e:
            raise SampleError(f"bad_json: {e.msg}") from None
    elif path.suffix == ".md":
        rows = rows_from_markdown(text)
    else:
        try:
            rows = list(csv.reader(io.StringIO(text, newline="")))
        except csv.Error as e:
            raise SampleError(f"bad_table: {e}") from None
    rows = [[cell(v) for v in r] for r in rows if r]
    if len(rows) < 2:
        raise SampleError("bad_table: a chart table needs a header and at least one row")
    if len({len(r) for r in rows}) != 1:
        raise SampleError("ragged_table: rows have different numbers of cells")
    return rows


def chart_markdown(rows: list[list[str]]) -> str:
    return "\n".join(" | ".join(r) for r in rows)


def find_image(table: Path) -> Path:
    stems = [table.with_suffix("")]
    while stems[-1].suffix:
        stems.append(stems[-1].with_suffix(""))
    for stem in stems:
        for s in IMAGE_SUFFIXES:
            if stem.with_name(stem.name + s).is_file():
                return stem.with_name(stem.name + s)
    raise SampleError(f"missing_image: no {table.with_suffix('').name}.png/.jpg beside {table.name}")


class Chart(Converter):
    def records(self, path: Path) -> Iterator[Record]:
        tables = sorted(p for p in path.iterdir() if p.suffix in TABLE_SUFFIXES) \
            if path.is_dir() else [path]
        for t in tables:
            yield Record(str(t), 1, str(t))

    def convert(self, record: Record) -> dict:
        table = Path(record.raw)
        if table.suffix not in TABLE_SUFFIXES:
            raise SampleError(f"bad_table: {table.name} is not {', '.join(TABLE_SUFFIXES)}")
        answer = chart_markdown(read_table(table))
        return make_sample([str(find_image(table).resolve())],
                           [(get_task("chart").prompt, answer)])
