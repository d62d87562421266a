"""`ocrsft eval` and `ocrsft compare` on prediction files built from the real sample data.

The OCR tests use the ICDAR2015 word labels; the mixed-task tests convert every
family's real samples with the real converters, read them back the way
`ocrsft infer` does (`requests_from`) and damage a few predictions.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from converters.run import convert
from evaluation.compare import compare
from evaluation.compare import write_report as compare_report
from evaluation.evaluate import FAMILIES, aggregate, by_family, score_rows, write_report
from samples.errors import UserError
from samples.sample import requests_from
from samples.tasks import task_for_prompt
from tests.test_metrics_table import OFFICIAL


def preds(shared_data, tmp_path, name, damage):
    rows = []
    for i, line in enumerate((shared_data / "paddleocr_rec" / "rec_gt_test.txt").read_text().splitlines()):
        path, ref = line.split("\t", 1)
        rows.append({"id": path, "task": "ocr", "prompt": "OCR:", "image": str(shared_data / "paddleocr_rec" / path),
                     "reference": ref, "prediction": damage(i, ref), "error": None})
    out = tmp_path / name
    out.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return out


def eval_cli(*args):
    return subprocess.run([sys.executable, "-m", "ocrsft", "eval", *map(str, args)], capture_output=True, text=True)


@pytest.mark.slow
def test_scores_and_report(shared_data, tmp_path):
    p = preds(shared_data, tmp_path, "p.jsonl", lambda i, r: r if i % 2 else r[:-1])
    rows = score_rows(p)
    m = aggregate(rows)
    n = len(rows)
    assert m["exact_match"] == pytest.approx((n // 2) / n)  # 21 rows: 11 damaged
    expected = sum(1 / len(r["reference"]) for i, r in enumerate(rows) if i % 2 == 0) / n
    assert m["cer"] == pytest.approx(expected)
    res = eval_cli(p, "-o", tmp_path / "ev")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.splitlines()[0])["ocr"]["samples"] == n
    report = (tmp_path / "ev" / "report.md").read_text()
    assert "ocr_cer_histogram.png" in report and (tmp_path / "ev" / "ocr_cer_histogram.png").stat().st_size > 0
    # ocrsft/steps.py heldout_cer's call: one family's aggregate
    write_report(rows, m, tmp_path / "held", "held-out")
    assert json.loads((tmp_path / "held" / "metrics.json").read_text())["ocr"]["cer"] == m["cer"]


def test_error_rows_count_as_failures(shared_data, tmp_path):
    p = preds(shared_data, tmp_path, "p.jsonl", lambda i, r: r)
    lines = p.read_text().splitlines()
    bad = json.loads(lines[0]) | {"error": "OSError: truncated image"}
    p.write_text("\n".join([json.dumps(bad)] + lines[1:]) + "\n")
    m = aggregate(score_rows(p))
    assert m["errors"] == 1 and m["exact_match"] == pytest.approx(1 - 1 / len(lines))


@pytest.mark.slow
def test_ocr_normalisation_flags(shared_data, tmp_path):
    refs = [l.split("\t", 1)[1] for l in (shared_data / "paddleocr_rec/rec_gt_test.txt").read_text().splitlines()]
    assert not any(" " in r for r in refs)
    p = preds(shared_data, tmp_path, "p.jsonl", lambda i, r: " ".join(r.lower()) if i == 0 else r)
    r0 = refs[0]
    plain = json.loads(eval_cli(p, "-o", tmp_path / "a").stdout.splitlines()[0])["ocr"]
    assert plain["exact_match"] == round(20 / 21, 4)
    # ignoring case and spaces: only the spaces inside the word are left, one edit each
    folded = eval_cli(p, "--ignore-case", "--spaces", "collapse", "-o", tmp_path / "b")
    assert json.loads(folded.stdout.splitlines()[0])["ocr"]["cer"] == round((len(r0) - 1) / len(r0) / 21, 4)
    res = eval_cli(p, "--paddleocr", "--ignore-case", "-o", tmp_path / "c")
    m = json.loads((tmp_path / "c" / "metrics.json").read_text())["ocr"]
    assert (m["cer"], m["exact_match"]) == (0.0, 1.0)
    assert m["normalisation"] == {"spaces": "remove", "ignore_case": True, "alnum_only": False}
    res = eval_cli(p, "--paddleocr", "--spaces", "keep")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "--spaces" in res.stderr
    # --paddleocr-filter: RecMetric's is_filter (ASCII letters and digits, lowercased)
    p = preds(shared_data, tmp_path, "f.jsonl", lambda i, r: r.upper() + "!" if i == 0 else r)
    assert eval_cli(p, "--paddleocr-filter", "-o", tmp_path / "d").returncode == 0
    m = json.loads((tmp_path / "d" / "metrics.json").read_text())["ocr"]
    assert (m["exact_match"], m["normalisation"]["alnum_only"]) == (1.0, True)
    # --normalize omnidocbench: only letters, digits (and CJK) kept, case kept
    assert eval_cli(p, "--normalize", "omnidocbench", "-o", tmp_path / "e").returncode == 0
    m = json.loads((tmp_path / "e" / "metrics.json").read_text())["ocr"]
    assert m["normalisation"]["normalize"] == "omnidocbench" and m["exact_match"] == 1.0  # "JOINT!": "!" dropped
    res = eval_cli(p, "--chart-lenient", "pipes")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "unknown chart leniency" in res.stderr


def test_compare_lists_fixed_and_broken(shared_data, tmp_path):
    base = preds(shared_data, tmp_path, "base.jsonl", lambda i, r: "" if i < 5 else r)
    sft = preds(shared_data, tmp_path, "sft.jsonl", lambda i, r: r if i < 5 else (r + "x" if i == 7 else r))
    res = compare(base, sft)
    assert len(res["fixed"]) == 5 and len(res["broken"]) == 1
    assert res["delta"]["ocr"]["cer"] < 0


def test_bad_files_are_clear(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text("{not json\n")
    with pytest.raises(UserError, match=r"t.jsonl:1"):
        score_rows(p)
    p.write_text(json.dumps({"id": 1, "prompt": "Table Recognition:", "reference": "x"}) + "\n")
    with pytest.raises(UserError, match=r"t.jsonl:1: missing 'prediction'"):
        score_rows(p)
    p.write_text("")
    with pytest.raises(UserError, match="holds no predictions"):
        score_rows(p)


# ---------------------------------------------------------------- every family in one file

SOURCES = {  # family -> (converter, input under shared/data, image root)
    "ocr": ("paddleocr-rec", "paddleocr_rec/rec_gt_test.txt", "paddleocr_rec"),
    "table": ("pubtabnet", "pubtabnet/examples/PubTabNet_Examples.jsonl", "pubtabnet/examples"),
    "formula": ("im2latex", "im2latex/test20.lst", "im2latex"),
    "chart": ("chart", "chart_docling/barchart.gt.md", "chart_docling"),
    "kie": ("sroie", "sroie", "sroie"),
    "det": ("paddleocr-det", "paddleocr_det/test_icdar2015_label.txt", "paddleocr_det"),
}


def damage(family: str, i: int, ref: str) -> str:
    """One damaged sample per family (index 0, or 1 for KIE), with a hand-computed cost."""
    if family == "ocr" and i == 0:
        return ref[:-1]                                            # CER 1/len
    if family == "table" and i == 0:
        return "no table here"                                     # TEDS 0
    if family == "formula" and i == 0:
        return ""                                                  # token NED 1
    if family == "chart":
        return ref.replace("1 | 0.06 | 0.16", "1 | 0.07 | 0.16")   # one of 12 points 16.7% off: 0
    if family == "kie" and i == 1:
        return ref.replace('"60.30"', '"60.80"')                   # one field ANLS 0.8
    if family == "det" and i == 0:
        return ref.rsplit("\n", 1)[0]                              # the last box missing
    return ref


@pytest.fixture(scope="module")
def requests(shared_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mixed")
    out = {}
    for family, (fmt, src, root) in SOURCES.items():
        data = tmp / f"{family}.jsonl"
        convert(fmt, [shared_data / src], data, image_root=shared_data / root)
        out[family] = list(requests_from(data, shared_data / root))
    return out


def mixed(requests, path, damaged=damage):
    rows = []
    for family, reqs in requests.items():
        for i, req in enumerate(reqs):
            task = task_for_prompt(req.prompt)
            row = {"id": req.id, "task": task.name, "prompt": req.prompt, "image": req.image,
                   "reference": req.reference, "prediction": damaged(family, i, req.reference), "error": req.error}
            if family == "kie":
                del row["task"]  # the family then comes from the prompt
            if req.reference_html:  # as `ocrsft infer` writes it: official TEDS against the source HTML
                row["reference_html"] = req.reference_html
            rows.append(row)
    rows = rows[::2] + rows[1::2]  # interleave the families
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    return path


@pytest.mark.slow
def test_mixed_file_scores_each_family_by_hand(requests, tmp_path):
    p = mixed(requests, tmp_path / "mixed.jsonl")
    res = eval_cli(p, "-o", tmp_path / "ev")
    assert res.returncode == 0, res.stderr
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert list(m) == list(FAMILIES) == ["ocr", "table", "formula", "chart", "kie", "det"]
    assert {f: m[f]["samples"] for f in m} == {f: len(r) for f, r in requests.items()} \
        == {"ocr": 21, "table": 15, "formula": 20, "chart": 1, "kie": 6, "det": 9}
    ocr_ref = requests["ocr"][0].reference
    assert m["ocr"]["cer"] == pytest.approx(1 / len(ocr_ref) / 21, abs=1e-12)
    assert (m["table"]["teds_otsl"], m["table"]["teds_s_otsl"]) == (pytest.approx(14 / 15), pytest.approx(14 / 15))
    # official TEDS of the exact OTSL answers against the source HTML, as PubTabNet's code scores them
    # (sample 0, "no table here", renders as an empty table: the official code gives it 0.03401360544217691,
    # TEDS and TEDS-S, against example 0's HTML; same reference, commit and venv as OFFICIAL)
    official = [OFFICIAL[f"{k}_otsl_exact"] for k in range(1, 15)]
    junk = 0.03401360544217691
    assert m["table"]["teds"] == pytest.approx((junk + sum(v[0] for v in official)) / 15, abs=1e-9)
    assert m["table"]["teds_s"] == pytest.approx((junk + sum(v[1] for v in official)) / 15, abs=1e-9)
    assert (m["formula"]["exact_match"], m["formula"]["token_ned"]) == (19 / 20, 1 / 20)
    assert m["table"]["options"] == {"strict_official": False} and m["kie"]["options"] == {"normalisation": "casefold"}
    assert m["chart"]["options"] == {"outer_pipes": False, "rule_rows": False, "thousands": False, "number_theta": 0.1}
    assert m["chart"]["rms_f1"] == pytest.approx(11 / 12, abs=1e-12) and m["chart"]["relaxed_acc"] == 11 / 12
    assert m["kie"]["anls"] == pytest.approx((5 + 0.95) / 6, abs=1e-12) and m["kie"]["field_f1"] == 23 / 24
    n_boxes = m["det"]["ref_boxes"]
    assert (m["det"]["precision"], m["det"]["recall"]) == (1.0, (n_boxes - 1) / n_boxes)
    assert m["det"]["pred_boxes"] == n_boxes - 1


@pytest.mark.slow
def test_mixed_report_has_a_section_histogram_and_thumbnails_per_family(requests, tmp_path):
    from PIL import Image

    p = mixed(requests, tmp_path / "mixed.jsonl")
    out = tmp_path / "ev"
    assert eval_cli(p, "-o", out).returncode == 0
    report = (out / "report.md").read_text()
    sections = re.split(r"^## ", report, flags=re.M)[1:]
    assert [s.split("\n", 1)[0] for s in sections] == list(FAMILIES)
    for family, section in zip(FAMILIES, sections):
        main = FAMILIES[family].MAIN  # table: "teds", as every row carries its source HTML
        assert (out / f"{family}_{main}_histogram.png").stat().st_size > 0
        assert f"({family}_{main}_histogram.png)" in section
        thumbs = re.findall(r"\]\((thumbs/[^)]+\.png)\)", section)
        assert len(thumbs) == min(10, len(requests[family])), family
        for t in thumbs:
            with Image.open(out / t) as im:
                assert im.format == "PNG" and max(im.size) <= 160
        worst = section.split("| --- | --- | --- | --- |\n", 1)[1].split("\n", 1)[0]
        assert worst.startswith(f"| ![") and "thumbs/" + family + "_00.png" in worst
    # the damaged sample ranks first in its family
    kie = sections[4].split("| --- | --- | --- | --- |\n", 1)[1].split("\n", 1)[0]
    assert kie.startswith(f"| ![{requests['kie'][1].id}](thumbs/kie_00.png)") and kie.endswith("| 0.950 |")
    per_sample = [json.loads(l) for l in (out / "per_sample.jsonl").read_text().splitlines()]
    assert {r["family"] for r in per_sample} == set(FAMILIES)


def test_forced_task_scores_every_row_as_that_family(requests, tmp_path):
    rows = score_rows(mixed(requests, tmp_path / "mixed.jsonl"), "ocr")
    assert set(by_family(rows)) == {"ocr"} and len(rows) == 72


def test_compare_mixed_uses_each_familys_main_score(requests, tmp_path):
    base = mixed(requests, tmp_path / "base.jsonl")
    # the fine-tuned model fixes every damaged sample but breaks table sample 1
    sft = mixed(requests, tmp_path / "sft.jsonl",
                lambda f, i, r: "<fcel>oops<nl>" if (f, i) == ("table", 1) else r)
    res = compare(base, sft)
    assert res["samples"] == 72
    assert sorted(x["family"] for x, _ in res["fixed"]) == sorted(FAMILIES)
    assert [(x["family"], x["id"]) for x, _ in res["broken"]] == [("table", requests["table"][1].id)]
    assert res["delta"]["kie"]["anls"] == pytest.approx(0.05 / 6, abs=1e-12)
    assert res["delta"]["ocr"]["cer"] < 0 and res["delta"]["det"]["recall"] > 0
    report = compare_report(res, tmp_path / "cmp", base, sft).read_text()
    assert "## kie" in report and "6 fixed, 1 broken" in report
