"""`chart`: docling's real bar chart; markdown, CSV and JSON tables give one answer."""
from __future__ import annotations

import csv
import json
import re
import shutil

from converters.run import convert


def docling_rows(shared_data):
    """The chart's table from its DocTags (an independent encoding of the same data)."""
    dt = (shared_data / "chart_docling/barchart.dt").read_text()
    table = dt[dt.index("<bar_chart>") + len("<bar_chart>"):dt.index("</chart>")]
    return [re.split(r"<ched>|<fcel>", row)[1:] for row in table.split("<nl>") if row]


def answer(path):
    rows = [json.loads(l) for l in path.read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["text_info"][0]["text"] == "Chart Recognition:"
    return rows[0]["text_info"][1]["text"]


def test_markdown_table_matches_the_doctags(shared_data, tmp_path):
    src = shared_data / "chart_docling"
    c = convert("chart", [src / "barchart.gt.md"], tmp_path / "c.jsonl")
    assert (c.written, c.rejected) == (1, 0)
    got = answer(tmp_path / "c.jsonl")
    assert [line.split(" | ") for line in got.split("\n")] == docling_rows(shared_data)
    assert got.startswith("Number of impellers | single-frequency | multi-frequency\n1 | 0.06 | 0.16\n")


def test_csv_and_json_tables_give_the_same_answer(shared_data, tmp_path):
    rows = docling_rows(shared_data)
    shutil.copy(shared_data / "chart_docling/barchart.png", tmp_path / "a.png")
    with open(tmp_path / "a.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    shutil.copy(tmp_path / "a.png", tmp_path / "b.png")
    (tmp_path / "b.json").write_text(json.dumps({"columns": rows[0], "data": rows[1:]}))
    shutil.copy(tmp_path / "a.png", tmp_path / "c.png")
    (tmp_path / "c.json").write_text(json.dumps([dict(zip(rows[0], r)) for r in rows[1:]]))
    (tmp_path / "d.csv").write_text("x,y\n1,2,3\n")  # ragged, and no image beside it
    c = convert("chart", [tmp_path], tmp_path / "out" / "c.jsonl", dedup=False)
    assert (c.read, c.written, c.rejected) == (4, 3, 1)
    answers = {json.loads(l)["text_info"][1]["text"] for l in (tmp_path / "out/c.jsonl").read_text().splitlines()}
    assert answers == {answer_of(rows)}
    assert json.loads((tmp_path / "out/c.rejects.jsonl").read_text())["reason"].startswith("ragged_table")


def answer_of(rows):
    return "\n".join(" | ".join(r) for r in rows)
