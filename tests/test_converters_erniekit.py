"""`erniekit`: normalising existing ERNIEKit JSONL, and `ocrsft validate` on converter output."""
from __future__ import annotations

import json
import subprocess
import sys

from converters.run import convert
from converters.validate import validate


def test_normalise_keeps_what_readers_use(shared_data, tmp_path):
    rec = shared_data / "paddleocr_rec"
    convert("paddleocr-rec", [rec / "rec_gt_test.txt"], tmp_path / "a.jsonl", image_root=rec)
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    messy = []
    for l in lines:
        row = json.loads(l)
        row["source"] = "icdar"
        row["text_info"][0]["id"] = 7
        del row["image_info"][0]["matched_text_index"]
        messy.append(json.dumps(row))
    (tmp_path / "messy.jsonl").write_text("\n".join(messy + [
        '{"text_info": [{"text": "OCR:", "tag": "mask"}]}',
        '{"text_info": [{"text": "OCR:", "tag": "mask"}, {"text": "x", "tag": "no_mask"}],'
        ' "image_info": [{"image_url": "a.png", "matched_text_index": 5}]}',
        "not json"]) + "\n")
    c = convert("erniekit", [tmp_path / "messy.jsonl"], tmp_path / "out" / "b.jsonl", image_root=shared_data)
    assert (c.read, c.written, c.rejected) == (len(lines) + 3, len(lines), 3)
    assert [json.loads(l)["reason"].split(":")[0] for l in (tmp_path / "out/b.rejects.jsonl").read_text().splitlines()] \
        == ["bad_tags", "bad_index", "bad_json"]
    clean = [json.loads(l) for l in (tmp_path / "out/b.jsonl").read_text().splitlines()]
    for row, orig in zip(clean, lines):
        orig = json.loads(orig)
        assert set(row) == {"image_info", "text_info"}
        assert row["text_info"] == orig["text_info"]
        assert (tmp_path / "out" / row["image_info"][0]["image_url"]).resolve() == \
            (tmp_path / orig["image_info"][0]["image_url"]).resolve()
    assert validate(tmp_path / "out/b.jsonl", image_root=shared_data) == (len(lines), [])


def test_validate_cli_names_bad_lines(shared_data, tmp_path):
    rec = shared_data / "paddleocr_rec"
    convert("paddleocr-rec", [rec / "rec_gt_test.txt"], tmp_path / "a.jsonl", image_root=rec)
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    bad = json.loads(lines[0])
    bad["text_info"][1]["tag"] = "mask"
    (tmp_path / "a.jsonl").write_text("\n".join(lines[:2] + [json.dumps(bad)]) + "\n")
    res = subprocess.run([sys.executable, "-m", "ocrsft", "validate", str(tmp_path / "a.jsonl"),
                          "--image-root", str(shared_data)], capture_output=True, text=True)
    assert res.returncode == 1
    assert f"{tmp_path / 'a.jsonl'}:3: bad_tags" in res.stdout
    assert res.stdout.strip().splitlines()[-1] == "validated 3, invalid 1"


def test_convert_and_validate_are_one_validator(shared_data, tmp_path):
    """The same bad sample gets the same reason from `convert` and from `validate`:
    both run samples/sample.py check_sample."""
    from PIL import Image

    word = shared_data / "paddleocr_rec" / "test" / "word_1.png"
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "ok.png").write_bytes(word.read_bytes())
    (tmp_path / "img" / "text.png").write_text("not an image")
    Image.new("RGB", (2, 2)).save(tmp_path / "img" / "tiny.png")
    (tmp_path / "img" / "folder.png").mkdir()
    (tmp_path / "outside.png").write_bytes(word.read_bytes())

    def line(url):
        return json.dumps({"text_info": [{"text": "OCR:", "tag": "mask"}, {"text": "x", "tag": "no_mask"}],
                           "image_info": [{"image_url": url, "matched_text_index": 0}]})

    urls = ["ok.png", "missing.png", "text.png", "tiny.png", "folder.png", "../outside.png",
            "https://example.com/a.png", ""]
    src = tmp_path / "img" / "in.jsonl"
    src.write_text("\n".join(line(u) for u in urls) + "\n")
    c = convert("erniekit", [src], tmp_path / "out" / "a.jsonl", image_root=tmp_path / "img")
    converted = [json.loads(l)["reason"].split(":")[0]
                 for l in (tmp_path / "out" / "a.rejects.jsonl").read_text().splitlines()]
    n, problems = validate(src, image_root=tmp_path / "img")
    validated = [p.split(": ", 2)[1].split(":")[0] for p in problems]
    assert (c.read, c.written, n) == (len(urls), 1, len(urls))
    assert converted == validated == ["missing_image", "bad_image", "image_size", "missing_image",
                                      "path_escape", "url_not_allowed", "bad_image"]
