"""The tiny PaddleOCR-VL factory: real architecture, loadable by paddleformers and paddlex."""
from __future__ import annotations

import json

import pytest

from models import model_folder
from samples.errors import UserError


def test_folder_has_every_file_paddlex_needs(tiny_model):
    model_folder.check_model_folder(tiny_model, for_serving=True)
    assert [p.name for p in model_folder.weight_files(tiny_model)] == ["model.safetensors"]
    yml = (tiny_model / "inference.yml").read_text()
    assert model_folder.PADDLEX_MODEL_NAME in yml


def test_vocab_size_matches_tokenizer(tiny_model):
    import sentencepiece as spm

    cfg = json.loads((tiny_model / "config.json").read_text())
    sp = spm.SentencePieceProcessor(model_file=str(tiny_model / "tokenizer.model"))
    assert cfg["vocab_size"] == sp.get_piece_size()
    assert sp.id_to_piece(cfg["image_token_id"]) == "<|IMAGE_PLACEHOLDER|>"
    assert sp.id_to_piece(cfg["vision_start_token_id"]) == "<|IMAGE_START|>"
    assert cfg["fuse_rms_norm"] is False
    assert sum(cfg["rope_scaling"]["mrope_section"]) * 2 == cfg["head_dim"]


def test_paddleformers_and_paddlex_tokenize_the_prompt_identically(tiny_model):
    from engines.paddleformers import compat

    compat.apply()
    from paddleformers.transformers import AutoTokenizer
    from paddlex.inference.models.common.tokenizer import LlamaTokenizer

    text = ("<|begin_of_sentence|>User: <|IMAGE_START|><|IMAGE_PLACEHOLDER|><|IMAGE_END|>"
            "OCR:\nAssistant: 12 ab</s>")
    train = AutoTokenizer.from_pretrained(str(tiny_model)).encode(text, add_special_tokens=False)
    train = train["input_ids"] if isinstance(train, dict) else train
    serve = LlamaTokenizer.from_pretrained(str(tiny_model), vocab_file=str(
        tiny_model / "tokenizer.model"))(text, add_special_tokens=True)["input_ids"]
    assert list(train) == list(serve)


def test_paddlex_loads_and_generates(tiny_model, tmp_path):
    from PIL import Image

    from engines.paddleformers.predict import load_native

    img = tmp_path / "x.png"
    Image.new("RGB", (140, 28), "white").save(img)
    model = load_native(tiny_model)
    out = next(iter(model.predict([{"image": str(img), "query": "OCR:"}], max_new_tokens=4)))
    assert isinstance(out["result"], str)


def test_missing_file_is_a_clear_error(tiny_model, tmp_path):
    import shutil

    broken = tmp_path / "m"
    shutil.copytree(tiny_model, broken)
    (broken / "inference.yml").unlink()
    with pytest.raises(UserError, match="inference.yml"):
        model_folder.check_model_folder(broken, for_serving=True)


def test_unknown_preset_is_a_user_error(tmp_path):
    from engines.paddleformers.tiny_model import build_tiny_model

    with pytest.raises(UserError, match="preset"):
        build_tiny_model(tmp_path, preset="huge")
