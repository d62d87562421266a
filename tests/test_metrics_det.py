"""Detection metrics on the real ICDAR2015 labels, converted by the real converter in both styles, then damaged."""
from __future__ import annotations

import json

from converters.run import convert
from evaluation.metrics.det import aggregate, boxes, iou, score
from formats import boxes as fmt


def answers(shared_data, tmp_path, **options) -> list[str]:
    out = tmp_path / "d.jsonl"
    convert("paddleocr-det", [shared_data / "paddleocr_det/test_icdar2015_label.txt"], out, **options)
    return [json.loads(l)["text_info"][1]["text"] for l in out.read_text().splitlines()]


def legible_counts(shared_data) -> list[int]:
    lines = (shared_data / "paddleocr_det/test_icdar2015_label.txt").read_text().splitlines()
    counts = [sum(i["transcription"] != "###" for i in json.loads(l.split("\t", 1)[1])) for l in lines]
    return [c for c in counts if c]  # img_1 is all ###: the spotting converter drops it


def rect(box):
    x1, y1, x2, y2 = box
    return [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]


def test_iou_of_a_shifted_rectangle_by_hand():
    a = boxes("<ref>a</ref><box>[[100, 100, 200, 150]]</box>")[0][1]
    b = boxes("<ref>a</ref><box>[[125, 100, 225, 150]]</box>")[0][1]
    assert iou(a, b) == 75 / 125  # overlap 75x50, union 125x50


def test_spotting_damage_by_hand(shared_data, tmp_path):
    refs = answers(shared_data, tmp_path)
    counts = legible_counts(shared_data)
    assert [len(fmt.parse_spotting(r)) for r in refs] == counts
    n = sum(counts)
    perfect = aggregate([score(r, r) for r in refs])
    assert (perfect["precision"], perfect["recall"], perfect["f1"], perfect["e2e_f1"]) == (1, 1, 1, 1)
    assert perfect["ref_boxes"] == n

    items = fmt.parse_spotting(refs[0])
    far = [(t, [(x, min(1000, y + 300)) for x, y in q]) if k == 0 else (t, q) for k, (t, q) in enumerate(items)]
    renamed = [(t + "x", q) if k == 1 else (t, q) for k, (t, q) in enumerate(items)]
    s_far = score(fmt.format_items(far, "spotting"), refs[0])
    assert (s_far["tp"], s_far["e2e_tp"], s_far["pred_boxes"], s_far["ref_boxes"]) == (
        len(items) - 1, len(items) - 1, len(items), len(items))
    s_renamed = score(fmt.format_items(renamed, "spotting"), refs[0])
    assert (s_renamed["tp"], s_renamed["e2e_tp"], s_renamed["f1"]) == (len(items), len(items) - 1, 1.0)
    dropped = score(fmt.format_items(items[:-1], "spotting"), refs[0])
    assert (dropped["precision"], dropped["recall"]) == (1.0, (len(items) - 1) / len(items))

    # micro over all boxes: image 0 counted twice (far, renamed), the rest perfect
    m = aggregate([s_far, s_renamed] + [score(r, r) for r in refs[1:]])
    total = n + len(items)
    assert (m["pred_boxes"], m["ref_boxes"]) == (total, total)
    assert (m["precision"], m["recall"]) == ((total - 1) / total, (total - 1) / total)
    assert (m["e2e_precision"], m["e2e_recall"]) == ((total - 2) / total, (total - 2) / total)


def test_internvl_rectangles_and_dont_care_boxes(shared_data, tmp_path):
    refs = answers(shared_data, tmp_path, style="internvl", illegible="keep")
    assert len(refs) == 10 and {t for t, _ in fmt.parse_internvl(refs[0])} == {"###"}
    counts = [0] + legible_counts(shared_data)  # img_1 first, all ###
    rows = [score(r, r) for r in refs]
    assert [r["ref_boxes"] for r in rows] == counts and [r["pred_boxes"] for r in rows] == counts
    assert aggregate(rows)["f1"] == 1.0
    # leaving the ### boxes out costs nothing; the all-### image is then empty on both sides
    legible = [fmt.format_items([(t, rect(b)) for t, b in fmt.parse_internvl(r) if t != "###"], "internvl")
               for r in refs]
    assert [score(p, r)["f1"] for p, r in zip(legible, refs)] == [1.0] * 10
    # a box shifted by a quarter of its width still matches (IoU 3/5), by half it does not (1/3)
    items = [(t, b) for t, b in fmt.parse_internvl(refs[1]) if t != "###"]
    t, (x1, y1, x2, y2) = items[0]
    w = x2 - x1  # IoU after a shift dx is (w - dx) / (w + dx): >= 0.5 while dx <= w / 3
    for dx, matched in ((w // 4, True), (w // 2 + 1, False)):
        moved = [(t, rect((x1 + dx, y1, x2 + dx, y2)))] + [(u, rect(b)) for u, b in items[1:]]
        s = score(fmt.format_items(moved, "internvl"), refs[1])
        assert s["tp"] == len(items) - (0 if matched else 1), dx


def test_junk_predictions_score_0(shared_data, tmp_path):
    ref = answers(shared_data, tmp_path)[0]
    for junk in ("", "no boxes here", "<|LOC_1|><|LOC_2|>", "<ref>x</ref><box>[[1, 2]]</box>"):
        s = score(junk, ref)
        assert (s["precision"], s["recall"], s["f1"], s["pred_boxes"]) == (0.0, 0.0, 0.0, 0), junk
    assert score("", "")["f1"] == 1.0
