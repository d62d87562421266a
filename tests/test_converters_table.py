"""`pubtabnet` and `html-table`: the real PubTabNet examples to OTSL and back.

These need formats/otsl.py (the shared OTSL module); without it they skip.
"""
from __future__ import annotations

import json

import pytest

otsl = pytest.importorskip("formats.otsl")

from converters.pubtabnet import pubtabnet_html  # noqa: E402
from converters.run import convert  # noqa: E402


def grid(html: str) -> list[list[tuple[str, int, int]]]:
    """Rows of (text, colspan, rowspan): what a table means, whatever its markup."""
    from lxml import html as lhtml

    table = lhtml.fromstring(html)
    table = table if table.tag == "table" else table.xpath(".//table")[0]
    return [[("".join(td.itertext()).strip(), int(td.get("colspan", 1)), int(td.get("rowspan", 1)))
             for td in tr.xpath("./td|./th")] for tr in table.xpath(".//tr")]


def test_pubtabnet_examples_round_trip_through_otsl(shared_data, tmp_path):
    src = shared_data / "pubtabnet/examples"
    data = src / "PubTabNet_Examples.jsonl"
    items = [json.loads(l) for l in data.read_text().splitlines() if l.strip()]
    c = convert("pubtabnet", [data], tmp_path / "t.jsonl", image_root=src)
    assert c.read == len(items) and c.written == len(items), c.reasons
    rows = [json.loads(l) for l in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert any(' colspan="' in "".join(i["html"]["structure"]["tokens"]) for i in items)  # spans covered
    for row, item in zip(rows, items):
        assert row["text_info"][0]["text"] == "Table Recognition:"
        answer = row["text_info"][1]["text"]
        otsl.check_otsl(answer)
        assert answer.endswith("<nl>") and set(answer.replace("<nl>", "\n").split("\n")[0:1]) != {""}
        original = pubtabnet_html(item["html"]["structure"]["tokens"], item["html"]["cells"])
        assert grid(otsl.otsl_to_html(answer)) == grid(original), item["filename"]


def test_html_table_jsonl_and_bad_tables(tmp_path):
    from PIL import Image

    Image.new("RGB", (60, 30), "white").save(tmp_path / "t.png")
    good = '<table><tr><td colspan="2">Total</td></tr><tr><td>1</td><td>2</td></tr></table>'
    lines = [{"image": "t.png", "html": good},
             {"image": "t.png", "html": "<p>no table</p>"},
             {"image": "t.png"}]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(l) + "\n" for l in lines))
    c = convert("html-table", [tmp_path / "t.jsonl"], tmp_path / "o" / "o.jsonl")
    assert (c.written, c.rejected) == (1, 2)
    answer = json.loads((tmp_path / "o/o.jsonl").read_text())["text_info"][1]["text"]
    assert answer == "<fcel>Total<lcel><nl><fcel>1<fcel>2<nl>"


def test_pubtabnet_cell_count_mismatch_is_a_reject(tmp_path):
    item = {"filename": "x.png", "html": {"structure": {"tokens": ["<tr>", "<td>", "</td>", "</tr>"]},
                                          "cells": [{"tokens": ["a"]}, {"tokens": ["b"]}]}}
    (tmp_path / "p.jsonl").write_text(json.dumps(item) + "\n")
    c = convert("pubtabnet", [tmp_path / "p.jsonl"], tmp_path / "o.jsonl")
    assert dict(c.reasons) == {"cell_count": 1}
