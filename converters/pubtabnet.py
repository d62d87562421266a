r"""`pubtabnet`: PubTabNet JSONL (structure tokens + cells) -> table recognition in OTSL.

    input (pubtabnet/examples/PubTabNet_Examples.jsonl, the first table's top-left 2x2 corner):
        {"filename": "PMC4840965_004_00.png", "split": "train", "imgid": 0,
         "html": {"structure": {"tokens": ["<thead>", "<tr>", "<td>", "</td>", "<td>", "</td>", "</tr>", "</thead>",
                                           "<tbody>", "<tr>", "<td>", "</td>", "<td>", "</td>", "</tr>", "</tbody>"]},
                  "cells": [{"tokens": ["<b>", "V", "a", "r", "</b>"]}, {"tokens": ["H", "R"]},
                            {"tokens": ["A", "g", "e"]}, {"tokens": []}]}}

    >>> from converters.registry import example
    >>> example("pubtabnet", SHARED / "pubtabnet/examples/PubTabNet_Examples.jsonl")
    {"image_info": [{"matched_text_index": 0, "image_url": "PMC4840965_004_00.png"}],
     "text_info": [{"text": "Table Recognition:", "tag": "mask"},
                   {"text": "<fcel>Variable<fcel>Hazard ratio<fcel>95 % CI<fcel>p value*<nl><fcel>Age (median)<ecel><ecel><fcel>0.716<nl>...", "tag": "no_mask"}],
     "reference_html": "<html><body><table><thead><tr><td><b>Variable</b></td>...</table></body></html>"}

The cells fill the structure in order (after each `<td>`, or after the `>`
that closes `<td colspan="2"`); single-character tokens are HTML-escaped and
multi-character ones (`<b>`, `</i>`) are markup, the same rule as PubTabNet's
own evaluation HTML. The HTML then goes through formats/otsl.py, and is kept
as the sample's `reference_html` for official TEDS at evaluation.
"""
from __future__ import annotations

from html import escape

from converters.registry import Converter, Record
from formats.otsl import check_otsl, html_to_otsl
from samples.errors import SampleError
from samples.jsonl import load_json_item
from samples.sample import make_sample
from samples.tasks import get_task


def pubtabnet_html(structure: list[str], cells: list[dict]) -> str:
    """Structure tokens + cell tokens -> `<html><body><table>...</table></body></html>`."""
    if not all(isinstance(t, str) for t in structure):
        raise SampleError("bad_structure: structure tokens must be strings")
    slots = [i for i, t in enumerate(structure) if t in ("<td>", ">")]
    if len(slots) != len(cells):
        raise SampleError(f"cell_count: {len(slots)} cells in the structure, {len(cells)} given")
    out = list(structure)
    for i, c in zip(reversed(slots), reversed(cells)):
        tokens = c.get("tokens") if isinstance(c, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise SampleError("bad_cell: a cell needs a list of string tokens")
        out.insert(i + 1, "".join(escape(t) if len(t) == 1 else t for t in tokens))
    return "<html><body><table>" + "".join(out) + "</table></body></html>"


def table_sample(image: str, html: str) -> dict:
    """An image and its HTML table -> a `Table Recognition:` sample with a checked OTSL answer.

    The source HTML rides along as `reference_html`: training reads only image_info
    and text_info (converters/erniekit.py normalises other keys away), while
    `ocrsft infer` copies it into its rows so that `ocrsft eval` scores official
    TEDS against it (evaluation/metrics/table.py)."""
    try:
        otsl = html_to_otsl(html)
        check_otsl(otsl)
    except ValueError as e:
        raise SampleError(f"bad_table: {e}") from None
    return make_sample([image], [(get_task("table").prompt, otsl)]) | {"reference_html": html}


class PubTabNet(Converter):
    OPTIONS = {"split": ("", "keep only this split (train/val/test); empty keeps all")}

    def convert(self, record: Record) -> dict:
        item = load_json_item(record.raw)
        html = item.get("html") if isinstance(item, dict) else None
        if not isinstance(html, dict) or not isinstance(item.get("filename"), str):
            raise SampleError("bad_shape: expected filename and html.{structure,cells}")
        if self.options["split"] and item.get("split") != self.options["split"]:
            raise SampleError(f"other_split: {item.get('split')!r} is not {self.options['split']!r}")
        structure = (html.get("structure") or {}).get("tokens") if isinstance(html.get("structure"), dict) else None
        if not isinstance(structure, list) or not isinstance(html.get("cells"), list):
            raise SampleError("bad_shape: html.structure.tokens and html.cells must be lists")
        return table_sample(item["filename"], pubtabnet_html(structure, html["cells"]))
