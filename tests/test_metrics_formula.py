"""Formula metrics on the real im2latex formulas, converted by the real converter, then damaged."""
from __future__ import annotations

import json
import math

import pytest

from converters.run import convert
from evaluation.metrics.formula import aggregate, score, tokens, unwrap


@pytest.fixture(scope="module")
def answers(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("f") / "f.jsonl"
    convert("im2latex", [shared_data / "im2latex/test20.lst"], out)
    return [json.loads(l)["text_info"][1]["text"] for l in out.read_text().splitlines()]


def test_tokens_and_delimiters_by_hand():
    assert tokens(r"\[\frac{a}{b}\]") == [r"\frac", "{", "a", "}", "{", "b", "}"]
    assert tokens(r"\alpha x\,\\ \{y") == [r"\alpha", "x", r"\,", "\\\\", r"\{", "y"]
    assert tokens(r"\alphax") == [r"\alphax"]  # a control word is not split
    for wrapped in (r"\[a+b\]", "$$a+b$$", r"\(a+b\)", "$a+b$", " a + b "):
        assert unwrap(wrapped).replace(" ", "") == "a+b"
    s = score("$$x^{2} + y$$", r"\[x^2+y\]")  # two extra brace tokens, longer side 7 tokens
    assert (s["exact"], s["token_edits"], s["token_ned"], s["ref_tokens"]) == (0.0, 2, 2 / 7, 5)


def test_respaced_and_rewrapped_answers_are_exact(answers):
    preds = ["$$ " + " ".join(tokens(a)) + " $$" for a in answers]
    rows = [score(p, a) for p, a in zip(preds, answers)]
    m = aggregate(rows)
    assert (m["exact_match"], m["token_ned"], m["token_error_rate"]) == (1.0, 0.0, 0.0)
    assert m["bleu"] == pytest.approx(100.0, abs=1e-9)


def test_one_substituted_token_moves_every_score_by_hand(answers):
    k = 3
    toks = tokens(answers[k])
    mid = len(toks) // 2
    assert r"\Xi" not in toks and 3 <= mid <= len(toks) - 4
    bad = r"\[" + " ".join(toks[:mid] + [r"\Xi"] + toks[mid + 1:]) + r"\]"
    rows = [score(bad if i == k else a, a) for i, a in enumerate(answers)]
    assert (rows[k]["exact"], rows[k]["token_edits"], rows[k]["token_ned"]) == (0.0, 1, 1 / len(toks))
    n = len(answers)
    lengths = [len(tokens(a)) for a in answers]
    m = aggregate(rows)
    assert m["exact_match"] == (n - 1) / n
    assert m["token_ned"] == pytest.approx(1 / len(toks) / n, abs=1e-15)
    assert m["token_error_rate"] == 1 / sum(lengths)
    # corpus BLEU: the middle token sits in n of the n-grams of each order n, all lost
    totals = [sum(max(L - g + 1, 0) for L in lengths) for g in range(1, 5)]
    want = 100 * math.exp(sum(math.log((t - g) / t) for g, t in zip(range(1, 5), totals)) / 4)
    assert m["bleu"] == pytest.approx(want, rel=1e-9)


def test_an_empty_prediction_costs_all_its_tokens_and_the_brevity_penalty(answers):
    rows = [score("" if i == 0 else a, a) for i, a in enumerate(answers)]
    lengths = [len(tokens(a)) for a in answers]
    assert (rows[0]["token_ned"], rows[0]["token_edits"]) == (1.0, lengths[0])
    m = aggregate(rows)
    assert m["token_error_rate"] == lengths[0] / sum(lengths)
    ref_len, hyp_len = sum(lengths), sum(lengths) - lengths[0]
    assert m["bleu"] == pytest.approx(100 * math.exp(1 - ref_len / hyp_len), rel=1e-9)  # precisions all 1
