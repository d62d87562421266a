"""formats/otsl.py: HTML <-> OTSL on the real PubTabNet examples, and the grammar checks."""
from __future__ import annotations

import json

import pytest
from lxml import html as lhtml

from converters.pubtabnet import pubtabnet_html
from evaluation.metrics.table import otsl_document, teds
from formats.otsl import check_otsl, html_to_otsl, otsl_to_html, parse_otsl

# What OTSL cannot carry: table sections and inline markup (their text is kept).
NOT_IN_OTSL = ("thead", "tbody", "b", "i", "sup", "sub")


def pubtabnet_tables(shared_data):
    for line in (shared_data / "pubtabnet" / "examples" / "PubTabNet_Examples.jsonl").read_text().splitlines():
        item = json.loads(line)
        yield item["filename"], pubtabnet_html(item["html"]["structure"]["tokens"], item["html"]["cells"])


def blank_cells_emptied(doc: str) -> str:
    """A cell that shows only spaces is an empty cell (`<ecel>`) in OTSL."""
    root = lhtml.fromstring(doc)
    for td in root.iter("td"):
        if not td.text_content().strip():
            for child in list(td):
                td.remove(child)
            td.text = None
    return lhtml.tostring(root, encoding="unicode")


@pytest.mark.slow
def test_pubtabnet_round_trip_scores_teds_1(shared_data):
    tables = list(pubtabnet_tables(shared_data))
    assert len(tables) == 15
    spans = 0
    for name, original in tables:
        otsl = html_to_otsl(original)
        check_otsl(otsl)
        spans += otsl.count("<lcel>") + otsl.count("<ucel>")
        back = otsl_document(otsl)
        # every cell, span and character survives ...
        assert teds(back, blank_cells_emptied(original), ignore_nodes=NOT_IN_OTSL) == 1.0, name
        # ... and the structure differs from the original only by <thead>/<tbody>
        table = lhtml.fromstring(original).xpath("body/table")[0]
        sections, n_nodes = len(table.xpath("thead|tbody")), len(table.xpath(".//*"))
        assert teds(back, original, structure_only=True) == 1.0 - sections / n_nodes, name
    assert spans > 0  # the set exercises row and column spans


def test_spans_map_to_the_covering_tags():
    doc = ('<table><tr><td rowspan="2" colspan="2">A</td><td>b</td></tr>'
           '<tr><td>c</td></tr><tr><td>d</td><td> </td><td>e &amp; f</td></tr></table>')
    otsl = html_to_otsl(doc)
    assert otsl == "<fcel>A<lcel><fcel>b<nl><ucel><xcel><fcel>c<nl><fcel>d<ecel><fcel>e & f<nl>"
    check_otsl(otsl)
    assert otsl_to_html(otsl) == ('<table><tr><td rowspan="2" colspan="2">A</td><td>b</td></tr>'
                                  '<tr><td>c</td></tr><tr><td>d</td><td></td><td>e &amp; f</td></tr></table>')


def test_html_layout_rules():
    # rows shorter than the widest are padded; a rowspan past the last row is clipped
    assert html_to_otsl("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>") \
        == "<fcel>a<fcel>b<nl><fcel>c<ecel><nl>"
    assert html_to_otsl('<table><tr><td rowspan="5">a</td><td>b</td></tr></table>') == "<fcel>a<fcel>b<nl>"
    # th cells count, whitespace runs collapse, a nested table stays inside its cell
    assert html_to_otsl("<div><table><tr><th>h\n  1</th><td><table><tr><td>x</td></tr></table></td></tr>"
                        "</table></div>") == "<fcel>h 1<fcel>x<nl>"


@pytest.mark.parametrize("doc, problem", [
    ("<p>no table here</p>", "no <table>"),
    ("<table></table>", "no cells"),
    ('<table><tr><td colspan="x">a</td></tr></table>', "bad colspan"),
    ('<table><tr><td rowspan="2">a</td><td>b</td></tr><tr><td colspan="2">c</td><td>d</td></tr>'
     '<tr><td>e</td></tr></table>', None),
    ("", "not parseable"),
])
def test_html_errors_name_the_problem(doc, problem):
    if problem is None:  # a colspan into a rowspan's slot is laid out after it, as browsers do
        assert html_to_otsl(doc) == "<fcel>a<fcel>b<ecel><ecel><nl><ucel><fcel>c<lcel><fcel>d<nl><fcel>e<ecel><ecel><ecel><nl>"
        return
    with pytest.raises(ValueError, match=problem):
        html_to_otsl(doc)


def test_overlapping_spans_are_refused():
    doc = ('<table><tr><td>a</td><td rowspan="2">b</td></tr>'
           '<tr><td colspan="3">c</td></tr></table>')
    with pytest.raises(ValueError, match="overlap at row 2, column 2"):
        html_to_otsl(doc)


def test_seed_example_is_well_formed():
    # seed 002 §8.1, the answer of its `Table Recognition:` sample
    otsl = (r"<fcel>分组<fcel>频数<fcel>频率<nl><fcel>[41,51)<fcel>2<fcel>\( \frac{2}{30} \)<nl>"
            r"<fcel>[51,61)<fcel>1<fcel>\( \frac{1}{30} \)<nl>")
    check_otsl(otsl)
    tags, texts, stray = parse_otsl(otsl)
    assert [len(r) for r in tags] == [3, 3, 3] and texts[1][2] == r"\( \frac{2}{30} \)" and stray == []


@pytest.mark.parametrize("otsl, problem", [
    ("", "empty"),
    ("<fcel>a<fcel>b", "not closed by <nl>"),
    ("x<fcel>a<nl>", "text outside any cell"),
    ("<fcel>a<nl>y<fcel>b<nl>", "text outside any cell"),
    ("<fcel>a<fcel>b<nl><fcel>c<nl>", "row 2 has 1 cells, row 1 has 2"),
    ("<fcel>a<nl><nl>", "row 2 is empty"),
    ("<lcel><fcel>a<nl>", "<lcel> at row 1, column 1 belongs to no cell"),
    ("<ucel><fcel>a<nl>", "<ucel> at row 1, column 1 belongs to no cell"),
    ("<fcel>a<fcel>b<nl><fcel>c<xcel><nl>", "<xcel> at row 2, column 2 belongs to no cell"),
    ("<fcel>a<lcel><nl><ucel><fcel>b<nl>", "<fcel> at row 2, column 2 inside the span starting at row 1, "
                                           "column 1; expected <xcel>"),
    ("<fcel>a<lcel>b<nl>", "text 'b' after <lcel>"),
    ("<fcel>a<fcel>b<nl><ucel><lcel><nl>", "<lcel> at row 2, column 2 belongs to no cell"),
])
def test_check_otsl_names_the_problem(otsl, problem):
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        check_otsl(otsl)


def test_otsl_to_html_renders_any_model_output():
    # ragged rows padded, an orphan <lcel> becomes an empty cell, stray text dropped
    assert otsl_to_html("<fcel>a<fcel>b<nl><lcel>junk<nl>tail") \
        == "<table><tr><td>a</td><td>b</td></tr><tr><td></td><td></td></tr></table>"
    assert otsl_to_html("") == "<table></table>"
    assert otsl_to_html("<fcel>1 < 2<nl>") == "<table><tr><td>1 &lt; 2</td></tr></table>"
