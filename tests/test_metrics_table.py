"""TEDS / TEDS-S: the official golden scores, and `score` on the real PubTabNet examples."""
from __future__ import annotations

import json

import pytest

from converters.otsl import otsl_to_html
from converters.pubtabnet import pubtabnet_html
from converters.run import convert
from inference.metrics.table import aggregate, score, teds


def golden(shared_data):
    g = shared_data / "pubtabnet/teds_golden"
    gt = json.loads((g / "sample_gt.json").read_text())
    pred = json.loads((g / "sample_pred.json").read_text())
    expected = json.loads((g / "expected_teds_scores.json").read_text())
    single = json.loads((g / "demo_single_pair.json").read_text())
    return g, gt, pred, expected, single


@pytest.mark.slow
def test_teds_reproduces_the_official_demo_exactly(shared_data):
    _, gt, pred, expected, single = golden(shared_data)
    assert len(expected["scores"]) == 20
    got = {k: teds(pred[k], gt[k]["html"]) for k in expected["scores"]}
    assert got == expected["scores"]  # exact floats, not approx
    assert teds(single["pred"], single["true"]) == 0.9781765018607124 == expected["single_demo"]["score"]


@pytest.mark.slow
def test_teds_s_matches_the_official_algorithm(shared_data):
    from bench.eval import official_teds as official  # bench's plain restatement of src/metric.py

    _, gt, pred, expected, single = golden(shared_data)
    pairs = [(pred[k], gt[k]["html"]) for k in expected["scores"]] + [(single["pred"], single["true"])]
    ours = [teds(p, t, structure_only=True) for p, t in pairs]
    assert ours == [official(p, t, structure_only=True) for p, t in pairs]
    assert sum(s < 1 for s in ours) == 8  # 8 of 21 have structure errors, so the check bites


@pytest.fixture(scope="module")
def tables(shared_data, tmp_path_factory):
    """(OTSL answer, original HTML) of the real PubTabNet examples, converted by the real converter."""
    src = shared_data / "pubtabnet/examples"
    out = tmp_path_factory.mktemp("t") / "t.jsonl"
    convert("pubtabnet", [src / "PubTabNet_Examples.jsonl"], out, image_root=src)
    answers = [json.loads(l)["text_info"][1]["text"] for l in out.read_text().splitlines()]
    items = [json.loads(l) for l in (src / "PubTabNet_Examples.jsonl").read_text().splitlines() if l.strip()]
    return [(a, pubtabnet_html(i["html"]["structure"]["tokens"], i["html"]["cells"])) for a, i in zip(answers, items)]


def test_score_damaged_otsl_by_hand(tables):
    ref, html = tables[0]
    nodes = otsl_to_html(ref).count("<tr>") + otsl_to_html(ref).count("<td")  # elements under <table>
    assert score(ref, ref) == {"teds": 1.0, "teds_s": 1.0}
    # the model answers HTML (with <thead>, <b>): compared through OTSL, it loses nothing
    assert score(html, ref) == {"teds": 1.0, "teds_s": 1.0}
    # one cell's text gets one wrong character: cost 1/len(text), structure intact
    cells = ref.split("<fcel>")
    i = next(k for k in range(1, len(cells)) if len(cells[k].split("<")[0]) >= 3)
    text = cells[i].split("<")[0]
    cells[i] = "#" + cells[i][1:]
    s = score("<fcel>".join(cells), ref)
    assert s["teds"] == pytest.approx(1 - (1 / len(text)) / nodes, abs=1e-12) and s["teds_s"] == 1.0
    # the last row dropped: its <tr> and its cells are deletions
    rows = ref.split("<nl>")[:-1]
    last = otsl_to_html(rows[-1] + "<nl>").count("<td")
    s = score("<nl>".join(rows[:-1]) + "<nl>", ref)
    assert s["teds"] == pytest.approx(1 - (1 + last) / nodes, abs=1e-12) == s["teds_s"]
    # junk is an empty table; both sides empty is a perfect score
    assert score("I cannot read this", ref) == {"teds": 0.0, "teds_s": 0.0}
    assert aggregate([score(ref, ref), score("x", ref)]) == {"teds": 0.5, "teds_s": 0.5}


def test_score_two_html_answers_is_official_teds(shared_data):
    _, gt, pred, expected, _ = golden(shared_data)
    k = "PMC2915972_003_00.png"
    assert score(pred[k], gt[k]["html"])["teds"] == expected["scores"][k]
    bare = lambda d: d[d.index("<table"):d.index("</table>") + 8]  # noqa: E731
    assert score(bare(pred[k]), bare(gt[k]["html"]))["teds"] == expected["scores"][k]
