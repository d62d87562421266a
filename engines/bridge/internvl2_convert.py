"""Convert an original InternVL2 checkpoint (InternViT + InternLM2, remote code) to the
native `InternVLForConditionalGeneration` (seed 001), which trains, generates and saves
under transformers 5 (the remote code only trains).

    vision_model.encoder.layers.0.attn.qkv.weight [3C, C]
        -> model.vision_tower.encoder.layer.0.attention.{q,k,v}_proj.weight  (rows q | k | v)
    language_model.model.layers.0.attention.wqkv.weight [(Hkv*(G+2)*D), H]
        -> model.language_model.layers.0.self_attn.{q,k,v}_proj.weight
           (InternLM2 interleaves per KV head: G query heads, then one key, one value)
    mlp1.{0,1,3}  ->  model.multi_modal_projector.{layer_norm,linear_1,linear_2}

    python -m engines.bridge.internvl2_convert SRC DST
"""
from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

from engines.bridge.families import read_config
from samples.errors import UserError

RENAMES = [  # (original, native) as regexes over the remaining names, applied in order
    (r"^vision_model\.embeddings\.class_embedding$", "model.vision_tower.embeddings.cls_token"),
    (r"^vision_model\.embeddings\.position_embedding$", "model.vision_tower.embeddings.position_embeddings"),
    (r"^vision_model\.embeddings\.patch_embedding\.", "model.vision_tower.embeddings.patch_embeddings.projection."),
    (r"^vision_model\.encoder\.layers\.(\d+)\.attn\.proj\.", r"model.vision_tower.encoder.layer.\1.attention.projection_layer."),
    (r"^vision_model\.encoder\.layers\.(\d+)\.attn\.q_norm\.", r"model.vision_tower.encoder.layer.\1.attention.q_norm."),
    (r"^vision_model\.encoder\.layers\.(\d+)\.attn\.k_norm\.", r"model.vision_tower.encoder.layer.\1.attention.k_norm."),
    (r"^vision_model\.encoder\.layers\.(\d+)\.ls1$", r"model.vision_tower.encoder.layer.\1.lambda_1"),
    (r"^vision_model\.encoder\.layers\.(\d+)\.ls2$", r"model.vision_tower.encoder.layer.\1.lambda_2"),
    (r"^vision_model\.encoder\.layers\.(\d+)\.norm1\.", r"model.vision_tower.encoder.layer.\1.layernorm_before."),
    (r"^vision_model\.encoder\.layers\.(\d+)\.norm2\.", r"model.vision_tower.encoder.layer.\1.layernorm_after."),
    (r"^vision_model\.encoder\.layers\.(\d+)\.mlp\.", r"model.vision_tower.encoder.layer.\1.mlp."),
    (r"^mlp1\.0\.", "model.multi_modal_projector.layer_norm."),
    (r"^mlp1\.1\.", "model.multi_modal_projector.linear_1."),
    (r"^mlp1\.3\.", "model.multi_modal_projector.linear_2."),
    (r"^language_model\.model\.tok_embeddings\.", "model.language_model.embed_tokens."),
    (r"^language_model\.model\.norm\.", "model.language_model.norm."),
    (r"^language_model\.output\.", "lm_head."),
    (r"^language_model\.model\.layers\.(\d+)\.attention\.wo\.", r"model.language_model.layers.\1.self_attn.o_proj."),
    (r"^language_model\.model\.layers\.(\d+)\.feed_forward\.w1\.", r"model.language_model.layers.\1.mlp.gate_proj."),
    (r"^language_model\.model\.layers\.(\d+)\.feed_forward\.w3\.", r"model.language_model.layers.\1.mlp.up_proj."),
    (r"^language_model\.model\.layers\.(\d+)\.feed_forward\.w2\.", r"model.language_model.layers.\1.mlp.down_proj."),
    (r"^language_model\.model\.layers\.(\d+)\.attention_norm\.", r"model.language_model.layers.\1.input_layernorm."),
    (r"^language_model\.model\.layers\.(\d+)\.ffn_norm\.", r"model.language_model.layers.\1.post_attention_layernorm."),
]
VIT_QKV = re.compile(r"^vision_model\.encoder\.layers\.(\d+)\.attn\.qkv\.(weight|bias)$")
LM_WQKV = re.compile(r"^language_model\.model\.layers\.(\d+)\.attention\.wqkv\.(weight|bias)$")


def split_wqkv(w, heads: int, kv_heads: int, head_dim: int):
    """InternLM2's fused projection -> (q, k, v), rows in the usual head-major order."""
    groups = heads // kv_heads
    rest = w.shape[1:]
    w = w.reshape(kv_heads, groups + 2, head_dim, *rest)
    q = w[:, :groups].reshape(heads * head_dim, *rest)
    return q, w[:, groups].reshape(kv_heads * head_dim, *rest), w[:, groups + 1].reshape(
        kv_heads * head_dim, *rest)


def convert_state(state: dict, llm: dict) -> dict:
    heads, kv = llm["num_attention_heads"], llm.get("num_key_value_heads", llm["num_attention_heads"])
    head_dim = llm["hidden_size"] // heads
    out = {}
    for name, t in state.items():
        if m := VIT_QKV.match(name):
            base = f"model.vision_tower.encoder.layer.{m[1]}.attention."
            for part, piece in zip(("q_proj", "k_proj", "v_proj"), t.chunk(3, dim=0)):
                out[f"{base}{part}.{m[2]}"] = piece.contiguous()
            continue
        if m := LM_WQKV.match(name):
            base = f"model.language_model.layers.{m[1]}.self_attn."
            for part, piece in zip(("q_proj", "k_proj", "v_proj"), split_wqkv(t, heads, kv, head_dim)):
                out[f"{base}{part}.{m[2]}"] = piece.contiguous()
            continue
        for pattern, repl in RENAMES:
            new, hit = re.subn(pattern, repl, name)
            if hit:
                out[new] = t
                break
        else:
            raise UserError(name, "is not an InternVL2 weight this converter knows")
    return out


def native_config(src_cfg: dict, image_token_id: int):
    import transformers as tf

    v, llm = src_cfg["vision_config"], src_cfg["llm_config"]
    image = src_cfg.get("force_image_size") or v["image_size"]
    vision = tf.InternVLVisionConfig(
        hidden_size=v["hidden_size"], num_attention_heads=v["num_attention_heads"],
        intermediate_size=v["intermediate_size"], num_hidden_layers=v["num_hidden_layers"],
        image_size=image, patch_size=v["patch_size"], layer_norm_eps=v.get("layer_norm_eps", 1e-6),
        attention_bias=v.get("qkv_bias", True), use_qk_norm=v.get("qk_normalization", False),
        norm_type=v.get("norm_type", "layer_norm"), hidden_act=v.get("hidden_act", "gelu"),
        use_mean_pooling=True)  # True means no final LayerNorm, as in InternViT
    text = tf.LlamaConfig(
        hidden_size=llm["hidden_size"], intermediate_size=llm["intermediate_size"],
        num_hidden_layers=llm["num_hidden_layers"], num_attention_heads=llm["num_attention_heads"],
        num_key_value_heads=llm.get("num_key_value_heads", llm["num_attention_heads"]),
        vocab_size=llm["vocab_size"], rms_norm_eps=llm.get("rms_norm_eps", 1e-6),
        max_position_embeddings=llm.get("max_position_embeddings", 32768),
        rope_parameters={"rope_type": "default", "rope_theta": llm.get("rope_theta", 1e6)},
        tie_word_embeddings=False)
    ratio = src_cfg.get("downsample_ratio", 0.5)
    seq = int((image // v["patch_size"]) ** 2 * ratio ** 2)
    return tf.InternVLConfig(vision_config=vision, text_config=text, image_token_id=image_token_id,
                             image_seq_length=seq, downsample_ratio=ratio,
                             vision_feature_layer=src_cfg.get("select_layer", -1)), image, seq


def convert(src: Path, dst: Path) -> Path:
    import torch
    import transformers as tf
    from safetensors.torch import load_file

    from engines.bridge.families import FAMILIES, processor_class

    src, dst = Path(src), Path(dst)
    src_cfg = read_config(src)
    if src_cfg.get("model_type") != "internvl_chat":
        raise UserError(f"{src}/config.json", "is not an original InternVL2 (model_type internvl_chat)")
    if not (src / "tokenizer.json").is_file():
        raise UserError(str(src), "needs tokenizer.json (a fast tokenizer); save one with the "
                                  "model's own tokenizer code first")
    names = {"start_image_token": "<img>", "end_image_token": "</img>",
             "context_image_token": "<IMG_CONTEXT>", "video_token": "<video>"}
    tok = tf.PreTrainedTokenizerFast(tokenizer_file=str(src / "tokenizer.json"),
                                     **_special_tokens(src))
    tok.add_special_tokens({"additional_special_tokens": [t for t in names.values()
                                                          if t not in tok.get_vocab()]})
    tok = tf.PreTrainedTokenizerFast(tokenizer_object=tok.backend_tokenizer,
                                     model_specific_special_tokens=names, **_special_tokens(src))
    state = {}
    for f in sorted(src.glob("*.safetensors")):
        state.update(load_file(str(f)))
    config, image, seq = native_config(src_cfg, tok.convert_tokens_to_ids("<IMG_CONTEXT>"))
    model = tf.InternVLForConditionalGeneration(config).to(torch.float32)
    result = model.load_state_dict(convert_state(state, src_cfg["llm_config"]), strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise UserError(str(src), f"weights do not fit the native class: missing "
                                  f"{result.missing_keys[:4]}, unexpected {result.unexpected_keys[:4]}")
    if len(tok) > config.text_config.vocab_size:
        model.resize_token_embeddings(len(tok))
    ip = tf.GotOcr2ImageProcessorPil(size={"height": image, "width": image}, crop_to_patches=False)
    processor = processor_class(FAMILIES["internvl"])(image_processor=ip, tokenizer=tok,
                                                      image_seq_length=seq)
    if dst.exists():
        shutil.rmtree(dst)
    model.save_pretrained(dst)
    processor.save_pretrained(dst)
    print(f"internvl2_convert: {src} -> {dst} ({len(state)} tensors)", flush=True)
    return dst


def _special_tokens(src: Path) -> dict:
    cfg_file = src / "tokenizer_config.json"
    cfg = json.loads(cfg_file.read_text()) if cfg_file.is_file() else {}
    return {k: cfg[k] for k in ("eos_token", "pad_token", "bos_token", "unk_token")
            if isinstance(cfg.get(k), str)}


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m engines.bridge.internvl2_convert SRC DST")
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
