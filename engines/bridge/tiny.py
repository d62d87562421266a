"""Tiny random models of each native bridge family, with offline tokenizers.

Nothing can be downloaded here, so tests, the benchmark and the seed recipes'
stand-ins start from folders built by `build(kind, out_dir)`: a real
transformers architecture at toy width (LM hidden 64, vision hidden 32,
56-px images), random weights, a byte-level BPE tokenizer trained on the spot
(the byte alphabet covers any script) with the family's image tokens, and the
processor configs, saved so `families.load(out_dir)` reads them back.

    build("llava-clip", Path("tiny/llava"))  ->  tiny/llava/{config.json,
        model.safetensors, tokenizer.json, preprocessor_config.json, processor_config.json}
"""
from __future__ import annotations

import string
from pathlib import Path

from engines.bridge.runtime import isolated
from samples.errors import UserError

COMMON_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
IMAGE = 56      # pixels per side of the tiny towers' input
PATCH = 14
LM = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
          num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=False)
VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
# What the tokenizer learns from: enough to give digits, Latin and common CJK text
# short pieces; everything else falls back to bytes.
CORPUS = [string.digits * 4, string.ascii_letters * 2, string.punctuation,
          "OCR: Table Recognition: Formula Recognition: Chart Recognition: Describe the image.",
          "发票 金额 日期 合计 名称 税额 价税合计 表情包 文字 图片 描述",
          "invoice total date company address amount the of and to in is"]


def train_tokenizer(specials: list[str], named: dict[str, str] | None = None,
                    vocab_size: int = 600):
    """A byte-level BPE wrapped as a fast tokenizer; `named` become attributes
    (`image_token`, ...) that the processors look up."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=COMMON_TOKENS + specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(CORPUS * 8, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", extra_special_tokens=named or {})


def _text_config(tokenizer, cls_name: str = "Qwen2Config"):
    import transformers

    return getattr(transformers, cls_name)(vocab_size=len(tokenizer), **LM)


def _llava(vision: str):
    import transformers as tf

    tok = train_tokenizer(["<image>"], {"image_token": "<image>"})
    common = dict(image_size=IMAGE, patch_size=PATCH, **VISION)
    if vision == "siglip":
        vc, strategy, extra = tf.SiglipVisionConfig(**common), "full", 0
        ip = tf.SiglipImageProcessorPil(size={"height": IMAGE, "width": IMAGE})
    else:
        cfg_cls, ip_cls = {"clip": (tf.CLIPVisionConfig, tf.CLIPImageProcessorPil),
                           "chinese_clip": (tf.ChineseCLIPVisionConfig,
                                            tf.ChineseCLIPImageProcessorPil)}[vision]
        vc, strategy, extra = cfg_cls(**common), "default", 1  # CLS token, dropped by "default"
        ip = ip_cls(size={"shortest_edge": IMAGE}, crop_size={"height": IMAGE, "width": IMAGE})
    cfg = tf.LlavaConfig(vision_config=vc, text_config=_text_config(tok),
                         image_token_id=tok.convert_tokens_to_ids("<image>"),
                         vision_feature_select_strategy=strategy, vision_feature_layer=-2)
    proc = tf.LlavaProcessor(image_processor=ip, tokenizer=tok, patch_size=PATCH,
                             vision_feature_select_strategy=strategy,
                             num_additional_image_tokens=extra, image_token="<image>")
    return tf.LlavaForConditionalGeneration(cfg), proc


def _llava_onevision():
    import transformers as tf

    from engines.bridge.families import FAMILIES, processor_class

    tok = train_tokenizer(["<image>", "<video>"], {"image_token": "<image>", "video_token": "<video>"})
    grid = [[IMAGE, IMAGE], [IMAGE, 2 * IMAGE], [2 * IMAGE, IMAGE]]
    cfg = tf.LlavaOnevisionConfig(
        vision_config=tf.SiglipVisionConfig(image_size=IMAGE, patch_size=PATCH, **VISION),
        text_config=_text_config(tok), image_token_id=tok.convert_tokens_to_ids("<image>"),
        video_token_id=tok.convert_tokens_to_ids("<video>"), image_grid_pinpoints=grid,
        vision_feature_select_strategy="full", vision_feature_layer=-1)
    ip = tf.LlavaOnevisionImageProcessorPil(size={"height": IMAGE, "width": IMAGE},
                                            image_grid_pinpoints=grid)
    proc = processor_class(FAMILIES["llava_onevision"])(
        image_processor=ip, tokenizer=tok, num_image_tokens=(IMAGE // PATCH) ** 2,
        vision_feature_select_strategy="full", vision_aspect_ratio="anyres_max_9")
    return tf.LlavaOnevisionForConditionalGeneration(cfg), proc


def _internvl():
    import transformers as tf

    from engines.bridge.families import FAMILIES, processor_class

    names = {"start_image_token": "<img>", "end_image_token": "</img>",
             "context_image_token": "<IMG_CONTEXT>", "video_token": "<video>"}
    tok = train_tokenizer(list(names.values()))
    tok = type(tok)(tokenizer_object=tok.backend_tokenizer, eos_token="<|im_end|>",
                    pad_token="<|endoftext|>", model_specific_special_tokens=names)
    seq = (IMAGE // PATCH) ** 2 // 4  # downsample_ratio 0.5 on each side
    cfg = tf.InternVLConfig(
        vision_config=tf.InternVLVisionConfig(image_size=IMAGE, patch_size=PATCH, **VISION),
        text_config=_text_config(tok), image_token_id=tok.convert_tokens_to_ids("<IMG_CONTEXT>"),
        image_seq_length=seq, downsample_ratio=0.5)
    ip = tf.GotOcr2ImageProcessorPil(size={"height": IMAGE, "width": IMAGE}, crop_to_patches=False)
    proc = processor_class(FAMILIES["internvl"])(image_processor=ip, tokenizer=tok, image_seq_length=seq)
    return tf.InternVLForConditionalGeneration(cfg), proc


def _qwen2_vl(version: str):
    import transformers as tf

    from engines.bridge.families import FAMILIES, processor_class

    specials = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
    tok = train_tokenizer(specials, {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"})
    ids = {k: tok.convert_tokens_to_ids(t) for k, t in (
        ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>"))}
    text = dict(vocab_size=len(tok), **LM, rope_parameters={
        "rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]})
    if version == "2":
        vision = tf.Qwen2VLVisionConfig(depth=2, embed_dim=32, hidden_size=64, num_heads=2,
                                        mlp_ratio=2, patch_size=PATCH, spatial_merge_size=2)
        cfg, model_cls, fam = tf.Qwen2VLConfig(text_config=text, vision_config=vision, **ids), \
            tf.Qwen2VLForConditionalGeneration, FAMILIES["qwen2_vl"]
        ip_cls = tf.Qwen2VLImageProcessorPil
    else:
        vision = tf.Qwen2_5_VLVisionConfig(depth=2, hidden_size=32, out_hidden_size=64, num_heads=2,
                                           intermediate_size=64, patch_size=PATCH,
                                           spatial_merge_size=2, fullatt_block_indexes=[1],
                                           window_size=56)
        cfg, model_cls, fam = tf.Qwen2_5_VLConfig(text_config=text, vision_config=vision, **ids), \
            tf.Qwen2_5_VLForConditionalGeneration, FAMILIES["qwen2_5_vl"]
        ip_cls = tf.Qwen2VLImageProcessorPil
    ip = ip_cls(patch_size=PATCH, merge_size=2, min_pixels=IMAGE * IMAGE, max_pixels=4 * IMAGE * IMAGE)
    return model_cls(cfg), processor_class(fam)(image_processor=ip, tokenizer=tok)


def _qwen2_lm():
    """A bare LM with its tokenizer (no image token: assembly adds it), for seed 004."""
    import transformers as tf

    tok = train_tokenizer([])
    return tf.Qwen2ForCausalLM(_text_config(tok)), tok


def _chinese_clip():
    """A whole Chinese-CLIP dual encoder, as published; assembly takes its vision half."""
    import transformers as tf

    cfg = tf.ChineseCLIPConfig(
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, vocab_size=100),
        vision_config=dict(image_size=IMAGE, patch_size=PATCH, **VISION), projection_dim=16)
    ip = tf.ChineseCLIPImageProcessorPil(size={"shortest_edge": IMAGE},
                                        crop_size={"height": IMAGE, "width": IMAGE})
    return tf.ChineseCLIPModel(cfg), ip


BUILDERS = {
    "llava-clip": lambda: _llava("clip"),
    "llava-chinese-clip": lambda: _llava("chinese_clip"),
    "llava-siglip": lambda: _llava("siglip"),
    "llava-onevision": _llava_onevision,
    "internvl": _internvl,
    "qwen2-vl": lambda: _qwen2_vl("2"),
    "qwen2.5-vl": lambda: _qwen2_vl("2.5"),
    "qwen2-lm": _qwen2_lm,
    "chinese-clip": _chinese_clip,
}


def internvl2_original(out_dir: Path, seed: int = 0) -> Path:
    """An InternVL2-shaped checkpoint as the original repository lays it out (InternViT +
    InternLM2 names, fused wqkv, mlp1), random weights, no remote code: what
    internvl2_convert reads and what families reports as remote-code-only."""
    import json

    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer(["<img>", "</img>", "<IMG_CONTEXT>"])
    tok.save_pretrained(out_dir)
    c, f, hid, ffn, heads, kv = VISION["hidden_size"], VISION["intermediate_size"], 64, 128, 4, 2
    d = hid // heads
    ps = (IMAGE // PATCH) ** 2

    def r(*shape):
        return torch.randn(*shape, generator=g) * 0.05

    sd = {"vision_model.embeddings.class_embedding": r(1, 1, c),
          "vision_model.embeddings.position_embedding": r(1, ps + 1, c),
          "vision_model.embeddings.patch_embedding.weight": r(c, 3, PATCH, PATCH),
          "vision_model.embeddings.patch_embedding.bias": r(c),
          "mlp1.0.weight": 1 + r(4 * c), "mlp1.0.bias": r(4 * c), "mlp1.1.weight": r(hid, 4 * c),
          "mlp1.1.bias": r(hid), "mlp1.3.weight": r(hid, hid), "mlp1.3.bias": r(hid),
          "language_model.model.tok_embeddings.weight": r(len(tok), hid),
          "language_model.model.norm.weight": 1 + r(hid), "language_model.output.weight": r(len(tok), hid)}
    for i in range(2):
        v, t = f"vision_model.encoder.layers.{i}.", f"language_model.model.layers.{i}."
        sd.update({v + "attn.qkv.weight": r(3 * c, c), v + "attn.qkv.bias": r(3 * c),
                   v + "attn.proj.weight": r(c, c), v + "attn.proj.bias": r(c),
                   v + "ls1": r(c), v + "ls2": r(c), v + "norm1.weight": 1 + r(c), v + "norm1.bias": r(c),
                   v + "norm2.weight": 1 + r(c), v + "norm2.bias": r(c), v + "mlp.fc1.weight": r(f, c),
                   v + "mlp.fc1.bias": r(f), v + "mlp.fc2.weight": r(c, f), v + "mlp.fc2.bias": r(c),
                   t + "attention.wqkv.weight": r((heads + 2 * kv) * d, hid),
                   t + "attention.wo.weight": r(hid, hid), t + "feed_forward.w1.weight": r(ffn, hid),
                   t + "feed_forward.w3.weight": r(ffn, hid), t + "feed_forward.w2.weight": r(hid, ffn),
                   t + "attention_norm.weight": 1 + r(hid), t + "ffn_norm.weight": 1 + r(hid)})
    save_file(sd, str(out_dir / "model.safetensors"))
    (out_dir / "config.json").write_text(json.dumps({
        "model_type": "internvl_chat", "architectures": ["InternVLChatModel"],
        "auto_map": {"AutoConfig": "configuration_internvl_chat.InternVLChatConfig",
                     "AutoModel": "modeling_internvl_chat.InternVLChatModel"},
        "downsample_ratio": 0.5, "force_image_size": IMAGE, "select_layer": -1, "ps_version": "v2",
        "template": "internlm2-chat",
        "vision_config": {"hidden_size": c, "intermediate_size": f, "num_hidden_layers": 2,
                          "num_attention_heads": VISION["num_attention_heads"], "image_size": IMAGE,
                          "patch_size": PATCH, "qkv_bias": True, "qk_normalization": False,
                          "norm_type": "layer_norm", "layer_norm_eps": 1e-6},
        "llm_config": {"architectures": ["InternLM2ForCausalLM"], "hidden_size": hid,
                       "intermediate_size": ffn, "num_hidden_layers": 2, "num_attention_heads": heads,
                       "num_key_value_heads": kv, "vocab_size": len(tok), "rms_norm_eps": 1e-6,
                       "rope_theta": 10000.0, "max_position_embeddings": 4096}}, indent=2))
    return out_dir


@isolated
def build(kind: str, out_dir: Path, seed: int = 0) -> Path:
    """Write a tiny random model of `kind` (one of BUILDERS) to out_dir."""
    import torch

    if kind not in BUILDERS:
        raise UserError("kind", f"{kind!r} is not one of {', '.join(BUILDERS)}")
    torch.manual_seed(seed)
    model, processor = BUILDERS[kind]()
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir
