"""Table metrics: TEDS and TEDS-S (PubTabNet), scored exactly as the official code scores them.

    teds("<html><body><table><tr><td>a</td></tr></table></body></html>",
         "<html><body><table><tr><td>b</td></tr></table></body></html>")   -> 0.5  (1 - 1/2 nodes)
    teds_otsl("<fcel>12<fcel>3<nl>", "<fcel>12<fcel>4<nl>")                 -> 0.6667  (1 - 1/3)

The official definition (ibm-aur-nlp/PubTabNet src/metric.py), restated:
- both strings are parsed with lxml's HTML parser; unless both hold
  `html/body/table`, the score is 0 (a bare `<table>` string scores 0);
- the tree is every element under the table; a `td` is a leaf labelled by its
  colspan and rowspan and carries its content as a token list: its text split
  into characters, and each inline element as `<tag>`, its characters, `</tag>`,
  then its tail's characters; TEDS-S leaves the content out;
- renaming costs 1 if tag/colspan/rowspan differ, else the content's Levenshtein
  distance over the longer length (for two `td`s), else 0; insert/delete cost 1;
- TEDS = 1 - APTED distance / (elements under the larger table).

`score(pred, ref, ref_html)` is what `ocrsft eval` calls. It gives two pairs of scores:
- `teds`, `teds_s` (the main score, official TEDS): against the source HTML of the
  table, which the PubTabNet converter keeps beside its OTSL answer (the sample's
  `reference_html`, carried by `ocrsft infer` into its rows), or against the
  reference itself when that is HTML. An OTSL prediction is rendered to HTML by
  formats/otsl.py, so it pays for the `<thead>`, `<tbody>` and `<b>` OTSL cannot
  write, as the official code would charge any model. An HTML prediction is used
  as written; a bare `<table>` one (no `<html><body>`) is wrapped in them, since
  the official code scores it 0; `--strict-official` (`strict=True`) keeps the
  official 0.
- `teds_otsl`, `teds_s_otsl`: both sides through OTSL (an HTML side by `html_to_otsl`,
  unreadable HTML scoring as an empty table), then TEDS: what a model answering
  OTSL gets right, blind to markup OTSL drops. Not PubTabNet's number; the only one
  when a row has no HTML reference, and then the family's main score
  (`FALLBACK_MAIN`, see `main_key`).

    score("<fcel>12<fcel>3<nl>", "<fcel>12<fcel>4<nl>")  -> {"teds_otsl": 0.6667, "teds_s_otsl": 1.0}

Faster than the official code, with identical scores (bench/eval.py): identical
trees skip APTED (their distance is 0), `td`-to-`td` content distances are
computed once per pair by rapidfuzz rather than on every call APTED makes, and
node labels are compared as one interned string.
"""
from __future__ import annotations

import sys

from apted import APTED, Config
from lxml import etree, html
from rapidfuzz.distance import Levenshtein

from evaluation.metrics.omnidocbench import table as normalized_table
from formats.otsl import html_to_otsl, otsl_to_html

MAIN, LOWER_IS_BETTER = "teds", False
FALLBACK_MAIN = "teds_otsl"  # the main score of rows without an HTML reference

_PARSER = html.HTMLParser(remove_comments=True, encoding="utf-8")


class Node:
    """An APTED node: `label` is tag+spans; `content` only for td (None for TEDS-S)."""

    __slots__ = ("tag", "label", "content", "children", "index")

    def __init__(self, tag: str, label: str, content: list[str] | None):
        self.tag, self.label, self.content = tag, label, content
        self.children: list[Node] = []
        self.index = -1  # position among the tree's td nodes (for the cost cache)


def _span(el, name: str) -> int:
    # the official code calls int() and crashes on junk; a model's junk span counts as 1
    try:
        return int(el.get(name, "1"))
    except ValueError:
        return 1


def cell_tokens(td) -> list[str]:
    """A td's content tokens: characters, and `<tag>`/`</tag>` around inline elements."""
    out = list(td.text or "")
    for child in td:
        _inline_tokens(child, out)
    return out


def _inline_tokens(el, out: list[str]) -> None:
    out.append(f"<{el.tag}>")
    out.extend(el.text or "")
    for child in el:
        _inline_tokens(child, out)
    if el.tag != "unk":
        out.append(f"</{el.tag}>")
    if el.tag != "td":
        out.extend(el.tail or "")


def build_tree(el, structure_only: bool, tds: list[Node]) -> Node:
    if el.tag == "td":
        label = sys.intern(f"td {_span(el, 'colspan')} {_span(el, 'rowspan')}")
        node = Node("td", label, None if structure_only else cell_tokens(el))
        node.index = len(tds)
        tds.append(node)
        return node
    node = Node(el.tag, sys.intern(str(el.tag)), None)
    node.children = [build_tree(child, structure_only, tds) for child in el]
    return node


def _signature(node: Node) -> tuple:
    return (node.label, tuple(node.content or ()), tuple(_signature(c) for c in node.children))


class _TEDSCost(Config):
    """The official cost model, with td content distances computed once per pair."""

    def __init__(self):
        self.cache: dict[tuple[int, int], float] = {}

    def rename(self, a: Node, b: Node) -> float:
        if a.label != b.label:
            return 1.0
        if a.tag == "td" and (a.content or b.content):
            key = (a.index, b.index)
            cost = self.cache.get(key)
            if cost is None:
                cost = self.cache[key] = (float(Levenshtein.distance(a.content, b.content))
                                          / max(len(a.content), len(b.content)))
            return cost
        return 0.0

    def children(self, node: Node) -> list[Node]:
        return node.children


def parse_table(doc: str, ignore_nodes=()):
    """`html/body/table` of an HTML document (after stripping `ignore_nodes` tags), or None."""
    if not doc:
        return None
    root = html.fromstring(doc, parser=_PARSER)
    found = root.xpath("body/table")
    if not found:
        return None
    table = found[0]
    if ignore_nodes:
        etree.strip_tags(table, *ignore_nodes)
    return table


def teds(pred: str, true: str, *, structure_only: bool = False, ignore_nodes=()) -> float:
    """Official TEDS between two HTML documents; `structure_only=True` gives TEDS-S.

    `ignore_nodes` names tags to unwrap before comparing (the official option),
    e.g. ("thead", "tbody") to forgive a missing header section.
    """
    p = parse_table(pred, ignore_nodes)
    t = parse_table(true, ignore_nodes)
    if p is None or t is None:
        return 0.0
    n_nodes = max(len(p.xpath(".//*")), len(t.xpath(".//*")))
    tree_p = build_tree(p, structure_only, [])
    tree_t = build_tree(t, structure_only, [])
    if _signature(tree_p) == _signature(tree_t):
        return 1.0
    distance = APTED(tree_p, tree_t, _TEDSCost()).compute_edit_distance()
    return 1.0 - float(distance) / n_nodes


def otsl_document(otsl: str) -> str:
    """OTSL -> an HTML document that the TEDS parser accepts."""
    return f"<html><body>{otsl_to_html(otsl)}</body></html>"


def teds_otsl(pred: str, ref: str, *, structure_only: bool = False) -> float:
    """TEDS of two OTSL strings, both rendered through formats/otsl.py."""
    return teds(otsl_document(pred), otsl_document(ref), structure_only=structure_only)


def _is_html(answer: str) -> bool:
    return "<table" in answer.lower()


def _as_otsl(answer: str) -> str:
    if not _is_html(answer):
        return answer
    try:
        return html_to_otsl(answer)
    except ValueError:
        return ""


def _as_document(answer: str, strict: bool) -> str:
    """The HTML document TEDS parses: an HTML answer as written (wrapped in `<html><body>` unless
    `strict`), an OTSL answer rendered through formats/otsl.py."""
    if not _is_html(answer):
        return otsl_document(answer)
    if strict or "<body" in answer.lower():
        return answer
    return f"<html><body>{answer}</body></html>"


def score(pred: str, ref: str, ref_html: str | None = None, *, strict: bool = False,
          omnidocbench: bool = False) -> dict:
    """`teds`/`teds_s`: official TEDS against the HTML reference (`ref_html`, else `ref` when it is
    HTML), only when there is one; `teds_otsl`/`teds_s_otsl`: both sides through OTSL, always.
    `omnidocbench`: `teds`/`teds_s` on both sides' HTML (OTSL rendered) after OmniDocBench's table
    normalisation (evaluation/metrics/omnidocbench.py), as it scores tables."""
    po, ro = otsl_document(_as_otsl(pred)), otsl_document(_as_otsl(ref))
    out = {"teds_otsl": teds(po, ro), "teds_s_otsl": teds(po, ro, structure_only=True)}
    html_ref = ref_html or (ref if _is_html(ref) else None)
    if omnidocbench:
        p, r = (normalized_table(x if _is_html(x) else otsl_to_html(x)) for x in (pred, html_ref or ref))
        return {"teds": teds(p, r), "teds_s": teds(p, r, structure_only=True), **out}
    if html_ref:
        p, r = _as_document(pred, strict), _as_document(html_ref, strict)
        out = {"teds": teds(p, r), "teds_s": teds(p, r, structure_only=True), **out}
    return out


def main_key(rows: list[dict]) -> str:
    """`teds` when every row has an HTML reference, else the OTSL score every row has."""
    return MAIN if all(MAIN in r for r in rows) else FALLBACK_MAIN


def aggregate(rows: list[dict]) -> dict:
    n = len(rows)
    out = {}
    html = [r for r in rows if "teds" in r]
    if html:
        out = {"teds": sum(r["teds"] for r in html) / len(html),
               "teds_s": sum(r["teds_s"] for r in html) / len(html), "html_references": len(html)}
    return out | {"teds_otsl": sum(r["teds_otsl"] for r in rows) / n,
                  "teds_s_otsl": sum(r["teds_s_otsl"] for r in rows) / n}
