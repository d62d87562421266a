"""PaddleOCR-VL weights from PaddleFormers to transformers and back.

    to_torch(Path("runs/x/model"), Path("runs/x/torch"))    # then engine: torch, or families.load
    to_paddle(Path("runs/x/torch"), Path("runs/x/paddle"), base=Path("runs/x/model"))

Both sides store tensors under the same names (transformers reads and writes
PaddleOCR-VL checkpoints under PaddleFormers' names). What has to be crossed:
- layout: in memory Paddle's nn.Linear weight is [in, out], torch's [out, in];
  each side's own loader reads the file, so only the in-memory tensors are transposed;
- config: transformers nests the LM keys under `text_config` and fills what is
  absent with its own defaults, two of which are not PaddleFormers':
  `rms_norm_eps` 1e-5 (Paddle 1e-6) and `tie_word_embeddings` True (Paddle False);
  to_torch writes every LM key, to_paddle flattens them and ties only equal weights;
- `packing_position_embedding` (32768 x vision width) is kept by PaddleFormers for
  vLLM and read by neither forward; transformers drops it, to_paddle restores it
  from `base` (zeros without one), as it does the vision head;
- the tokenizer config names the image token, which transformers' processor requires.

Logit parity holds on the image path too (tests/test_paddle_torch_parity.py), given
the same position ids for image tokens. transformers builds 3-D mRoPE ids only from
`mm_token_type_ids` (its processor and the bridge's Codec supply them); 1-D ids for
the image tokens move the tiny model's logits by ~2.2. PaddleFormers places only the
first image of each row, so samples with two images are not comparable.

Running either direction imports PaddleFormers, which hides torch from transformers
in that process: load the torch folder in another one.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from engines.bridge.families import read_config
from models import model_folder
from samples.errors import UserError
from samples.image_tokens import IMAGE_TOKEN
from samples.jsonl import write_json

TEXT_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
             "num_attention_heads", "num_key_value_heads", "head_dim", "hidden_act",
             "max_position_embeddings", "rms_norm_eps", "use_bias", "pad_token_id",
             "bos_token_id", "eos_token_id")
VISION_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
               "num_channels", "image_size", "patch_size", "hidden_act", "layer_norm_eps",
               "attention_dropout", "spatial_merge_size")
TOKEN_KEYS = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")
# transformers' PaddleOCR-VL has no switch for these; another value would not cross.
FIXED = {"rope_is_neox_style": True, "use_3d_rope": True}
ACT_ALIASES = {"gelu_tanh": "gelu_pytorch_tanh"}  # Paddle's default name for the same GELU
PACKING = "visual.vision_model.embeddings.packing_position_embedding.weight"
PADDLE_ONLY = (PACKING, "visual.vision_model.head.")
# transformers' module names, which some checkpoints are saved under.
HF_PREFIXES = {"model.language_model.": "model.", "model.projector.": "mlp_AR.",
               "model.visual.": "visual."}
FILES = ("tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
         "added_tokens.json", "preprocessor_config.json", "chat_template.jinja",
         "generation_config.json", "inference.yml")


def _paddle():
    from engines.paddleformers import compat

    compat.apply()
    import paddle
    from paddleformers.transformers import PaddleOCRVLForConditionalGeneration

    return paddle, PaddleOCRVLForConditionalGeneration


def linear_weights(model) -> set[str]:
    """State-dict names of the [in, out] nn.Linear weights (LMHead and Conv2D are not)."""
    import paddle

    return {f"{name}.weight" for name, layer in model.named_sublayers()
            if isinstance(layer, paddle.nn.Linear)}


def torch_config(cfg, raw: dict) -> dict:
    """transformers' nested config from a resolved PaddleFormers config, every LM key explicit
    (`raw`, its config.json, for the token ids PaddleFormers moves to generation settings)."""
    bad = {k: getattr(cfg, k) for k, v in FIXED.items() if getattr(cfg, k, v) != v}
    if bad:
        raise UserError("config.json", f"{bad} has no transformers equivalent (it assumes {FIXED})")
    text = {k: raw.get(k) if getattr(cfg, k, None) is None else getattr(cfg, k) for k in TEXT_KEYS}
    text["rope_parameters"] = {"rope_type": "default", "rope_theta": cfg.rope_parameters["rope_theta"],
                               "mrope_section": list(cfg.rope_scaling["mrope_section"])}
    tie = bool(cfg.tie_word_embeddings)
    vc = cfg.vision_config
    vision = {k: getattr(vc, k) for k in VISION_KEYS}
    vision["hidden_act"] = ACT_ALIASES.get(vision["hidden_act"], vision["hidden_act"])
    return {"architectures": ["PaddleOCRVLForConditionalGeneration"], "model_type": "paddleocr_vl",
            **{k: getattr(cfg, k) for k in TOKEN_KEYS}, "tie_word_embeddings": tie,
            "text_config": {"model_type": "paddleocr_vl_text", **text, "tie_word_embeddings": tie},
            "vision_config": {"model_type": "paddleocr_vl_vision", **vision}}


def paddle_config(src: Path) -> dict:
    """A flat PaddleFormers config from a transformers folder, resolved by transformers'
    own config class so that absent keys take the values torch ran with."""
    from transformers.models.paddleocr_vl.configuration_paddleocr_vl import PaddleOCRVLConfig

    hf = PaddleOCRVLConfig.from_pretrained(src)
    text, vc = hf.text_config, hf.vision_config
    rope = dict(text.rope_parameters)
    flat = {k: getattr(text, k) for k in TEXT_KEYS}
    flat.update({k: getattr(hf, k) for k in TOKEN_KEYS}, **FIXED)
    flat.update(architectures=["PaddleOCRVLForConditionalGeneration"], model_type="paddleocr_vl",
                rope_theta=rope["rope_theta"], fuse_rms_norm=False,  # compat 5
                rope_scaling={"mrope_section": list(rope["mrope_section"]), "rope_type": "default",
                              "type": "default"})
    flat["vision_config"] = {"model_type": "paddleocr_vl", "vision_use_head": False,
                             **{k: getattr(vc, k) for k in VISION_KEYS}}
    return flat


def _dtype(cfg: dict) -> str:
    return str(cfg.get("dtype") or cfg.get("torch_dtype") or cfg.get("text_config", {}).get("dtype")
               or "float32")


def _copy_files(src: Path, dst: Path, tokenizer_extra: dict) -> None:
    for name in FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
    tok = dst / "tokenizer_config.json"
    if tok.is_file():
        cfg = json.loads(tok.read_text())
        for k, v in tokenizer_extra.items():
            if v is None:
                cfg.pop(k, None)
            else:
                cfg[k] = v
        write_json(tok, cfg)


def to_torch(src: Path, dst: Path) -> Path:
    """A folder PaddleFormers loads -> one transformers' `PaddleOCRVLForConditionalGeneration` loads."""
    src, dst = Path(src), Path(dst)
    model_folder.check_model_folder(src)
    paddle, cls = _paddle()
    from safetensors.paddle import save_file

    raw = model_folder.read_config(src)
    model = cls.from_pretrained(str(src), dtype=_dtype(raw))
    config = torch_config(model.config, raw)
    linear = linear_weights(model)
    state = {k: (v.T.contiguous() if k in linear else v.contiguous())
             for k, v in model.state_dict().items() if not k.startswith(PADDLE_ONLY)}
    dst.mkdir(parents=True, exist_ok=True)
    save_file(state, str(dst / "model.safetensors"), metadata={"format": "pt"})
    write_json(dst / "config.json", {**config, "dtype": _dtype(raw)})
    _copy_files(src, dst, {"extra_special_tokens": {"image_token": IMAGE_TOKEN}})
    return dst


def _torch_tensors(folder: Path, only: tuple = ("",)) -> dict:
    """{PaddleFormers name: tensor} in torch layout, from a folder's safetensors files."""
    from safetensors import safe_open

    files = model_folder.weight_files(folder)
    if not files:
        raise UserError(str(folder), "holds no *.safetensors weights")
    out = {}
    for f in files:
        with safe_open(str(f), framework="paddle") as r:
            for key in r.keys():
                name = next((pd + key[len(hf):] for hf, pd in HF_PREFIXES.items()
                             if key.startswith(hf)), key)
                if name.startswith(only):
                    out[name] = r.get_tensor(key)
    return out


def to_paddle(src: Path, dst: Path, base: Path | None = None) -> Path:
    """A transformers PaddleOCR-VL folder -> a PaddleFormers folder, saved by PaddleFormers itself.

    `base` (the Paddle folder the torch model came from) supplies the tensors
    transformers does not carry; without it the unused packing embedding is zeros.
    """
    src, dst = Path(src), Path(dst)
    dtype = _dtype(read_config(src))  # a UserError when src is no model folder
    paddle, cls = _paddle()
    from paddleformers.transformers.paddleocr_vl.configuration import PaddleOCRVLConfig

    flat = paddle_config(src)
    state = _torch_tensors(src)
    if base is not None:
        head = model_folder.read_config(base).get("vision_config", {}).get("vision_use_head", False)
        flat["vision_config"]["vision_use_head"] = bool(head)
        state = {**_torch_tensors(Path(base), PADDLE_ONLY), **state}
    embed = state.get("model.embed_tokens.weight")
    if "lm_head.weight" not in state and embed is not None:
        state["lm_head.weight"] = embed
    # transformers may write tie=True beside distinct weights (and then does not tie them).
    flat["tie_word_embeddings"] = bool(embed is not None and paddle.equal_all(
        state["lm_head.weight"], embed).item())
    model = cls._from_config(PaddleOCRVLConfig(**flat), dtype=dtype)
    expected = model.state_dict()
    if PACKING in expected and PACKING not in state:
        state[PACKING] = paddle.zeros(expected[PACKING].shape, dtype=expected[PACKING].dtype)
    linear = linear_weights(model)
    state = {k: (v.T if k in linear else v) for k, v in state.items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and list(state[k].shape) != list(expected[k].shape)]
    if missing or unexpected or wrong:
        raise UserError(str(src), f"weights do not fit this config: missing {missing[:3]}, "
                                  f"unexpected {unexpected[:3]}, wrong shape {wrong[:3]}")
    model.set_state_dict({k: v.astype(expected[k].dtype) for k, v in state.items()})
    dst.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dst) as tmp:
        model.save_pretrained(tmp)
        for f in Path(tmp).iterdir():
            if f.suffix == ".safetensors" or f.name in ("model.safetensors.index.json", "config.json"):
                f.replace(dst / f.name)
    model_folder.consolidate_safetensors(dst)
    _copy_files(src, dst, {"extra_special_tokens": None})
    if not (dst / "inference.yml").is_file():
        model_folder.write_inference_yml(dst)
    return model_folder.check_model_folder(dst)


def main(argv: list[str]) -> int:
    """python -m engines.bridge.paddle_cross to-torch|to-paddle SRC DST [--base BASE]"""
    import argparse

    ap = argparse.ArgumentParser(prog="paddle_cross", description=__doc__.splitlines()[0])
    ap.add_argument("direction", choices=("to-torch", "to-paddle"))
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--base", type=Path, help="to-paddle: the Paddle folder the model came from")
    a = ap.parse_args(argv)
    try:
        out = to_torch(a.src, a.dst) if a.direction == "to-torch" else to_paddle(a.src, a.dst, a.base)
    except UserError as e:
        print(f"paddle_cross: error: {e}", file=sys.stderr)
        return 2
    print(f"paddle_cross: {a.src} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
