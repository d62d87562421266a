"""`ocrsft parity`: real PaddleFormers data code on one side, real paddlex predictor on the other."""
from __future__ import annotations

import json
import re
import shutil

import pytest

from inference.export import export
from ocrsft.cli import main


@pytest.fixture(scope="module")
def exported(trained_run, tiny_model, tmp_path_factory):
    return export(trained_run, tmp_path_factory.mktemp("export") / "model", base=tiny_model)


@pytest.fixture(scope="module")
def val(digit_lines):
    """Three of the training lines (image paths relative to the JSONL) and one bad path."""
    lines = digit_lines.read_text().splitlines()[:3]
    bad = json.loads(lines[0])
    bad["image_info"][0]["image_url"] = "../../etc/passwd"
    path = digit_lines.parent / "parity_val.jsonl"
    path.write_text("\n".join(lines + [json.dumps(bad)]) + "\n")
    return path


def parity(model, data, capsys) -> tuple[int, str]:
    rc = main(["parity", str(model), "--data", str(data), "--samples", "4", "--device", "cpu"])
    said = [line for line in capsys.readouterr().out.splitlines() if line.startswith("parity:")]
    assert len(said) == 1
    return rc, said[0]


def broken(exported, tmp_path, name, edit):
    folder = tmp_path / name
    shutil.copytree(exported, folder)
    edit(folder)
    return folder


def test_the_export_serves_the_prompt_it_was_trained_on(exported, val, capsys):
    rc, said = parity(exported, val, capsys)
    assert rc == 0
    assert said.startswith("parity: 3 samples, identical (1 skipped; first ")
    assert "parity_val.jsonl:4: " in said  # no image there (no --image-root: not a path_escape)


def test_a_tokenizer_adding_bos_is_caught_at_token_0(exported, val, tmp_path, capsys):
    def flip(folder):
        cfg = json.loads((folder / "tokenizer_config.json").read_text())
        cfg["add_bos_token"] = True
        (folder / "tokenizer_config.json").write_text(json.dumps(cfg))

    rc, said = parity(broken(exported, tmp_path, "bos", flip), val, capsys)
    assert rc == 1
    assert said.startswith("parity: 3 of 3 samples differ; first parity_val.jsonl:1 at token 0: "
                           "trained '<|begin_of_sentence|>' (3), served '<s>' (1)")


def test_a_template_without_the_image_names_the_token_and_the_counts(exported, val, tmp_path,
                                                                     capsys):
    def drop_image(folder):
        path = folder / "chat_template.jinja"
        block = '"<|IMAGE_START|><|IMAGE_PLACEHOLDER|><|IMAGE_END|>"'
        assert block in path.read_text()
        path.write_text(path.read_text().replace(block, '""'))

    rc, said = parity(broken(exported, tmp_path, "template", drop_image), val, capsys)
    assert rc == 1
    # <|begin_of_sentence|> U s e r : ▁ -> token 7 is where the image block should open.
    assert "first parity_val.jsonl:1 at token 7: trained '<|IMAGE_START|>'" in said
    assert ", served 'O' (" in said and "image placeholders: trained " in said
    counts = re.search(r"image placeholders: trained (\d+), served 0 ", said)
    assert counts and int(counts[1]) > 0
