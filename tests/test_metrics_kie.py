"""KIE metrics on the real SROIE receipts, converted by the real converter, then damaged.

6 receipts x 4 fields (company, date, address, total) = 24 reference fields.
"""
from __future__ import annotations

import json

import pytest

from converters.run import convert
from evaluation.metrics.kie import aggregate, parse, score


@pytest.fixture(scope="module")
def answers(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("k") / "k.jsonl"
    convert("sroie", [shared_data / "sroie"], out)
    return [json.loads(l)["text_info"][1]["text"] for l in out.read_text().splitlines()]


def with_fields(answer: str, **changes) -> str:
    fields = json.loads(answer) | changes
    return json.dumps({k: v for k, v in fields.items() if v is not None}, ensure_ascii=False)


def test_anls_threshold_by_hand(answers):
    ref = answers[1]  # 001: total "60.30"
    assert json.loads(ref)["total"] == "60.30"
    assert score(with_fields(ref, total="60.80"), ref)["anls"] == pytest.approx((3 + 0.8) / 4, abs=1e-12)
    assert score(with_fields(ref, total="60.3"), ref)["anls"] == pytest.approx((3 + 0.8) / 4, abs=1e-12)
    assert score(with_fields(ref, total="12.34"), ref)["anls"] == 3 / 4  # 4 edits in 5: below the threshold
    assert score(with_fields(ref, total=None), ref)["anls"] == 3 / 4  # a missing field scores 0


def test_damaged_receipts_by_hand(answers):
    assert len(answers) == 6
    preds = [
        answers[0],                                                   # perfect
        with_fields(answers[1], total="60.80"),                       # ANLS 0.8 on one field
        with_fields(answers[2], address=None),                        # a field missing
        "The total is 30.90",                                         # unparsable
        with_fields(answers[4], address=json.loads(answers[4])["address"].lower()),  # case only
        "```json\n" + with_fields(answers[5], tax="0.00") + "\n```",  # fenced, one extra field
    ]
    rows = [score(p, a) for p, a in zip(preds, answers)]
    assert [r["exact"] for r in rows] == [1, 0, 0, 0, 0, 0]
    assert [r["parsed"] for r in rows] == [1, 1, 1, 0, 1, 1]
    assert [r["field_tp"] for r in rows] == [4, 3, 3, 0, 3, 4]
    assert [r["pred_fields"] for r in rows] == [4, 4, 3, 0, 4, 5]
    assert [r["anls"] for r in rows] == pytest.approx([1, 0.95, 0.75, 0, 1, 1], abs=1e-12)
    m = aggregate(rows)
    assert m["exact_match"] == 1 / 6 and m["parse_rate"] == 5 / 6
    assert m["anls"] == pytest.approx(4.7 / 6, abs=1e-12)
    assert (m["field_precision"], m["field_recall"]) == (17 / 20, 17 / 24)
    assert m["field_f1"] == pytest.approx(34 / 44, abs=1e-12)


def test_unparsable_predictions_score_0_without_crashing(answers):
    for junk in ("", "{", "[1, 2]", '"just a string"', "{'single': 'quotes'}", "null"):
        s = score(junk, answers[0])
        assert (s["parsed"], s["exact"], s["anls"], s["field_tp"]) == (0, 0, 0, 0), junk
    assert parse('Here you go: {"total": 9} thanks') == {"total": "9"}
