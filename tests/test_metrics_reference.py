"""Conformance of OCR (PaddleOCR RecMetric) and KIE (DocVQA ANLS) scores with their reference code.

Pairs are built from the real samples (ICDAR2015 word crops' labels, SROIE receipts) plus damaged
predictions; the expected numbers were computed by running the reference implementation itself,
outside the project (see each table's comment). Chart and table conformance live in
test_metrics_chart.py and test_metrics_table.py.
"""
from __future__ import annotations

import json

import pytest

from converters.run import convert
from evaluation.metrics import kie, ocr


def rec_labels(shared_data) -> list[str]:
    out = []
    for name in ("rec_gt_test.txt", "rec_gt_train.txt"):
        for line in (shared_data / "paddleocr_rec" / name).read_text(encoding="utf-8").splitlines():
            if "\t" in line:
                out.append(line.split("\t", 1)[1])
    return out


def ocr_pairs(labels: list[str]) -> list[tuple[str, str]]:
    """(prediction, reference): each label read exactly, then damaged one way in turn."""
    damages = [lambda t: t[:-1], lambda t: t.upper(), lambda t: " ".join(t), lambda t: t + ".",
               lambda t: t.replace("e", "c"), lambda t: "-" + t.lower()]
    return [(t, t) for t in labels] + [(damages[i % len(damages)](t), t) for i, t in enumerate(labels)]


# PaddlePaddle/PaddleOCR ppocr/metrics/rec_metric.py (RecMetric, as stored at commit
# 0002349df3baed66b5149698cbb8cb5d4c1df3ee), in a throwaway venv with rapidfuzz 3.14.6:
# `python run_recmetric_kie.py` calls RecMetric(is_filter=f)([(p, 1.0) ...], [(t, None) ...]) then get_metric().
RECMETRIC = {  # is_filter: (acc, norm_edit_dis)
    False: (0.7068964298454431, 0.9062870241685556),
    True: (0.8965515695600742, 0.9803160953477996),
}


def test_paddleocr_convention_equals_recmetric(shared_data):
    pairs = ocr_pairs(rec_labels(shared_data))
    assert len(pairs) == 58
    for is_filter, (acc, ned) in RECMETRIC.items():
        m = ocr.aggregate([ocr.score(p, t, ocr.Norm.paddleocr(is_filter=is_filter)) for p, t in pairs])
        # RecMetric divides by n + 1e-5: 2e-7 here, inside the tolerance
        assert m["exact_match"] == pytest.approx(acc, abs=1e-6), is_filter
        assert m["norm_edit_dis"] == pytest.approx(ned, abs=1e-6), is_filter


def kie_pairs(answers: list[str]) -> list[tuple[str, str]]:
    def changed(answer: str, **fields) -> str:
        obj = json.loads(answer) | fields
        return json.dumps({k: v for k, v in obj.items() if v is not None}, ensure_ascii=False)

    out = []
    for a in answers:
        ref = json.loads(a)
        out += [(a, a),
                (changed(a, company=ref["company"].lower()), a),
                (changed(a, address="  ".join(ref["address"].split())), a),
                (changed(a, total=ref["total"] + "0"), a),
                (changed(a, date=None), a)]
    return out


# Per-pair ANLS as DocVQA scores it: google-research/pix2struct pix2struct/metrics.py `anls_metric`
# (commit 945f27e936c9464d9d7c133f1bd1f4f383be9e99) on lowercased strings (its `normalize_fn` for ANLS),
# averaged over the reference's fields, a missing field read as "": `python run_recmetric_kie.py` in a throwaway
# venv (editdistance 0.8.1).
DOCVQA_ANLS = [
    1.0, 1.0, 0.9634146341463414, 0.95, 0.75,
    1.0, 1.0, 0.9657534246575342, 0.9583333333333334, 0.75,
    1.0, 1.0, 0.9656862745098039, 0.9583333333333334, 0.75,
    1.0, 1.0, 0.9696969696969697, 0.9583333333333334, 0.75,
    1.0, 1.0, 0.96875, 0.9583333333333334, 0.75,
    1.0, 1.0, 0.9622641509433962, 0.9583333333333334, 0.75,
]


@pytest.fixture(scope="module")
def receipts(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("k") / "k.jsonl"
    convert("sroie", [shared_data / "sroie"], out)
    return [json.loads(line)["text_info"][1]["text"] for line in out.read_text().splitlines()]


def test_kie_docvqa_norm_equals_pix2struct_anls(receipts):
    pairs = kie_pairs(receipts)
    assert len(pairs) == len(DOCVQA_ANLS) == 30
    got = [kie.score(p, t, norm="docvqa")["anls"] for p, t in pairs]
    assert got == pytest.approx(DOCVQA_ANLS, abs=1e-6)


def test_kie_default_norm_also_forgives_whitespace_runs(receipts):
    pairs = kie_pairs(receipts)
    default = [kie.score(p, t)["anls"] for p, t in pairs]
    for k, (d, ref) in enumerate(zip(default, DOCVQA_ANLS)):
        if k % 5 == 2:  # the doubled spaces in the address: casefold mode collapses them
            assert d == 1.0 > ref
        else:
            assert d == pytest.approx(ref, abs=1e-6)
    with pytest.raises(ValueError, match="one of casefold, docvqa"):
        kie.score(pairs[0][0], pairs[0][1], norm="lower")
