"""`paddleocr-det` on the real ICDAR2015 labels, read back by paddlex's own spotting parser."""
from __future__ import annotations

import json

import pytest

from converters.run import convert
from formats import boxes


def load(path):
    return [json.loads(l) for l in path.read_text().splitlines()]


def labels(src):
    return [(l.split("\t")[0], json.loads(l.split("\t", 1)[1]))
            for l in (src / "test_icdar2015_label.txt").read_text().splitlines()]


def test_spotting_round_trips_through_paddlex_parser(shared_data, tmp_path):
    parser = pytest.importorskip("paddlex.inference.pipelines.paddleocr_vl.uilts")
    src = shared_data / "paddleocr_det"
    c = convert("paddleocr-det", [src / "test_icdar2015_label.txt"], tmp_path / "d.jsonl")
    assert (c.read, c.written, c.rejected, dict(c.reasons)) == (10, 9, 1, {"no_text": 1})  # img_1: all ###
    rows = load(tmp_path / "d.jsonl")
    legible = [(p, [i for i in items if i["transcription"] != "###"]) for p, items in labels(src)]
    legible = [x for x in legible if x[1]]
    for row, (path, items) in zip(rows, legible):
        assert row["text_info"][0]["text"] == "Spotting:"
        _, got = parser.post_process_for_spotting(row["text_info"][1]["text"], 1280, 720)
        assert got["rec_texts"] == [i["transcription"].strip() for i in items]
        for poly, item in zip(got["rec_polys"], items):  # 0-1000 costs < 1 px at 1280x720
            for (x, y), (ex, ey) in zip(poly, item["points"]):
                assert abs(x - min(max(ex, 0), 1280)) <= 0.65 and abs(y - min(max(ey, 0), 720)) <= 0.65


def test_internvl_style_and_keeping_illegible(shared_data, tmp_path):
    src = shared_data / "paddleocr_det"
    c = convert("paddleocr-det", [src / "test_icdar2015_label.txt"], tmp_path / "i.jsonl",
                style="internvl", illegible="keep")
    assert (c.written, c.rejected) == (10, 0)
    rows = load(tmp_path / "i.jsonl")
    by_image = dict(labels(src))
    for row in rows:
        items = by_image[row["image_info"][0]["image_url"].split("paddleocr_det/")[1]]
        got = boxes.parse_internvl(row["text_info"][1]["text"])
        assert [t for t, _ in got] == [i["transcription"] for i in items]
        for (_, box), item in zip(got, items):
            xs, ys = [p[0] for p in item["points"]], [p[1] for p in item["points"]]
            # InternVL's own rule: round(v / size * 1000), clamped to the image
            want = [min(1000, max(0, round(v / s * 1000))) for v, s in
                    ((min(xs), 1280), (min(ys), 720), (max(xs), 1280), (max(ys), 720))]
            assert list(box) == want
    assert rows[1]["text_info"][0]["text"] == "Detect all text and give boxes:"
    assert rows[1]["text_info"][1]["text"].startswith("<ref>JOINT</ref><box>[[617, 419, 705, 465]]</box>\n")


def test_bad_boxes_are_rejects(shared_data, tmp_path):
    src = shared_data / "paddleocr_det"
    img = "ch4_test_images/img_2.jpg"
    lab = tmp_path / "l.txt"
    lab.write_text("\n".join([
        f'{img}\t[{{"transcription": "a", "points": [[1, 2], [3, 4]]}}]',
        f'{img}\t[{{"transcription": "a", "points": [[1, 2], [3, "x"], [5, 6], [7, 8]]}}]',
        f'{img}\t[{{"points": [[1, 2], [3, 4], [5, 6], [7, 8]]}}]',
        f'{img}\tnot json',
        f'{img}\t{{"transcription": "a"}}',
        f'ch4_test_images/none.jpg\t[{{"transcription": "a", "points": [[1, 2], [3, 4], [5, 6], [7, 8]]}}]',
    ]) + "\n")
    c = convert("paddleocr-det", [lab], tmp_path / "o.jsonl", image_root=src)
    assert c.rejected == 6 and c.written == 0
    reasons = [json.loads(l)["reason"].split(":")[0] for l in (tmp_path / "o.rejects.jsonl").read_text().splitlines()]
    assert reasons == ["bad_box", "bad_box", "bad_box", "bad_json", "bad_json", "missing_image"]


def test_spotting_parser_reads_what_we_write():
    items = [("a b", [(0, 0), (10, 0), (10, 5), (0, 5)]), ("中文", [(1000, 1000)] * 4)]
    assert boxes.parse_spotting(boxes.format_items(items, "spotting")) == items
