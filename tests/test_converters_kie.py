"""`sroie` and `xfund`: key-value extraction answers from the real receipts and forms."""
from __future__ import annotations

import json
import shutil

from converters.run import convert


def load(path):
    return [json.loads(l) for l in path.read_text().splitlines()]


def test_sroie_answers_are_the_key_files(shared_data, tmp_path):
    src = shared_data / "sroie"
    c = convert("sroie", [src], tmp_path / "s.jsonl", with_ocr=True)
    keys = sorted((src / "key").glob("*.json"))
    assert (c.read, c.written, c.rejected) == (len(keys), len(keys), 0)
    for row, key in zip(load(tmp_path / "s.jsonl"), keys):
        assert row["image_info"][0]["image_url"].endswith(f"sroie/img/{key.stem}.jpg")
        prompts = [t["text"] for t in row["text_info"][0::2]]
        assert prompts == ["OCR:", "Extract the key information as JSON:"]
        assert json.loads(row["text_info"][3]["text"]) == json.loads(key.read_text())
        box_lines = (src / "box" / f"{key.stem}.csv").read_bytes().decode().splitlines()
        want = [l.split(",", 8)[8] for l in box_lines if l.strip()]
        assert row["text_info"][1]["text"].split("\n") == want
        assert "\r" not in row["text_info"][1]["text"]  # CRLF files read like LF ones
    first = load(tmp_path / "s.jsonl")[0]["text_info"][1]["text"]
    assert "NO.53 55,57 & 59, JALAN SAGU 18," in first  # commas inside the text survive


def test_sroie_missing_parts_are_rejects(shared_data, tmp_path):
    d = tmp_path / "sroie"
    shutil.copytree(shared_data / "sroie", d)
    (d / "img/001.jpg").unlink()
    (d / "key/003.json").write_text('{"company": 5}')
    (d / "box/004.csv").write_text("1,2,3,TEXT\n")
    c = convert("sroie", [d], tmp_path / "o.jsonl", with_ocr=True)
    reasons = {r["source"].rsplit("/", 1)[1]: r["reason"].split(":")[0] for r in load(tmp_path / "o.rejects.jsonl")}
    assert reasons == {"001.json": "missing_image", "003.json": "bad_key", "004.json": "bad_box"}
    assert c.written == 3


def test_xfund_pairs_come_from_linking(shared_data, tmp_path):
    src = shared_data / "xfund_zh"
    c = convert("xfund", [src / "val.json"], tmp_path / "x.jsonl", image_root=src / "image")
    assert (c.written, c.rejected) == (3, 0)
    rows = load(tmp_path / "x.jsonl")
    first = json.loads(rows[0]["text_info"][1]["text"])
    assert first["报销人姓名"] == "符山彤" and first["医疗单位名称"] == "山西省人民医院"
    for row, line in zip(rows, (src / "val.json").read_text().splitlines()):
        items = json.loads(line.split("\t", 1)[1])
        by_id = {i["id"]: i for i in items}
        pairs = {(by_id[q]["transcription"], by_id[a]["transcription"]) for i in items
                 for q, a in i["linking"] if by_id[q]["label"] == "question" and by_id[a]["label"] == "answer"}
        answer = json.loads(row["text_info"][1]["text"])
        for q, a in pairs:  # every linked answer appears under its question
            assert any(k == q or k.startswith(q + " (") for k in answer if a in answer[k].split(" ")) \
                or a in answer.get(q, ""), (q, a)


def test_xfund_with_ocr_lists_every_text(shared_data, tmp_path):
    src = shared_data / "xfund_zh"
    convert("xfund", [src / "val.json"], tmp_path / "x.jsonl", image_root=src / "image", with_ocr=True)
    row = load(tmp_path / "x.jsonl")[0]
    items = json.loads((src / "val.json").read_text().splitlines()[0].split("\t", 1)[1])
    assert row["text_info"][1]["text"].split("\n") == [i["transcription"] for i in items]
