"""`im2latex` and `latex`: real im2markup formulas, display-math answers, ink cropping."""
from __future__ import annotations

import json

import pytest

from converters.run import convert
from formats.latex import check_braces, formula_answer
from samples.errors import SampleError


def load(path):
    return [json.loads(l) for l in path.read_text().splitlines()]


def test_im2latex_answers_are_the_indexed_formulas(shared_data, tmp_path):
    src = shared_data / "im2latex"
    c = convert("im2latex", [src / "test20.lst"], tmp_path / "f.jsonl")
    formulas = (src / "formulas.lst").read_bytes().split(b"\n")  # im2markup splits on \n only
    lst = [l.split() for l in (src / "test20.lst").read_text().splitlines()]
    assert (c.written, c.rejected) == (len(lst), 0)
    for row, (idx, stem, _) in zip(load(tmp_path / "f.jsonl"), lst):
        assert row["image_info"][0]["image_url"].endswith(f"images/{stem}.png")
        answer = row["text_info"][1]["text"]
        assert answer.startswith("\\[") and answer.endswith("\\]")
        raw = formulas[int(idx)].decode()
        assert answer == formula_answer(raw) and "\\label" not in answer
        check_braces(answer)


@pytest.mark.slow
def test_crop_to_ink_shrinks_pages_and_keeps_the_formula(shared_data, tmp_path):
    from PIL import Image, ImageChops

    src = shared_data / "im2latex"
    out = tmp_path / "f.jsonl"
    c = convert("im2latex", [src / "test20.lst"], out, crop_ink=True)
    assert c.written == 20
    cropped = json.loads(out.with_suffix(".stats.json").read_text())["tokens_per_sample"]
    convert("im2latex", [src / "test20.lst"], tmp_path / "pages.jsonl")
    pages = json.loads((tmp_path / "pages.stats.json").read_text())["tokens_per_sample"]
    assert cropped["mean"] < pages["mean"] / 4  # the point of cropping: far fewer image tokens
    for row in load(out):
        crop = Image.open(out.parent / row["image_info"][0]["image_url"])
        stem = row["image_info"][0]["image_url"].rsplit("/", 1)[1]
        page = Image.open(src / "images" / stem)
        assert crop.width * crop.height < page.width * page.height / 20
        # the crop is a window of the page: find it and compare pixels
        page_rgb = Image.new("RGB", page.size, "white")
        page_rgb.paste(page.convert("RGBA"), mask=page.convert("RGBA"))
        gray = page_rgb.convert("L").point(lambda v: 255 if v < 200 else 0)
        l, t, r, b = gray.getbbox()
        assert crop.size == (min(page.width, r + 8) - max(0, l - 8), min(page.height, b + 8) - max(0, t - 8))
        window = page_rgb.crop((max(0, l - 8), max(0, t - 8), min(page.width, r + 8), min(page.height, b + 8)))
        assert ImageChops.difference(window, crop.convert("RGB")).getbbox() is None


def test_latex_labels_and_brace_rejects(shared_data, tmp_path):
    from PIL import Image

    Image.new("RGB", (120, 40), "white").save(tmp_path / "f.png")
    lab = tmp_path / "l.txt"
    lab.write_text("f.png\t$$x^{2}$$\nf.png\t\\frac{a}{b\nf.png\t  \nf.png\t\\{a\\} + b}\n"
                   "f.png\t\\[t_{n}\\in[0,\\infty]\\]\n")
    c = convert("latex", [lab], tmp_path / "o.jsonl", dedup=False)
    assert [r["text_info"][1]["text"] for r in load(tmp_path / "o.jsonl")] == \
        ["\\[x^{2}\\]", "\\[t_{n}\\in[0,\\infty]\\]"]
    assert [r["reason"].split(":")[0] for r in load(tmp_path / "o.rejects.jsonl")] == \
        ["unbalanced_braces", "empty_answer", "unbalanced_braces"]


@pytest.mark.parametrize("latex,ok", [("{}", True), ("\\{", True), ("}{", False), ("a\\\\}", False),
                                      ("{\\}}", True), ("{{}", False)])
def test_brace_rule(latex, ok):
    if ok:
        check_braces(latex)
    else:
        with pytest.raises(SampleError):
            check_braces(latex)


def test_blank_page_crop_is_a_reject(tmp_path):
    from PIL import Image

    Image.new("RGB", (200, 200), "white").save(tmp_path / "blank.png")
    (tmp_path / "l.txt").write_text("blank.png\tx\n")
    c = convert("latex", [tmp_path / "l.txt"], tmp_path / "o.jsonl", crop_ink=True)
    assert dict(c.reasons) == {"blank_image": 1}
