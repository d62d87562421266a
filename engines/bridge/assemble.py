"""Assemble a LLaVA from a separate language model and vision encoder (seed 004).

    llava(Path("qwen2.5-0.5b-instruct"), Path("chinese-clip-vit-base-patch16"), Path("mllm_ch"))
    -> mllm_ch/: LlavaForConditionalGeneration = the LM's weights + the encoder's vision
       weights + a fresh (random) projector; tokenizer = the LM's plus `<image>`;
       image processor = the encoder's.

The encoder folder may hold a whole dual-encoder (CLIP, Chinese-CLIP, SigLIP:
only its `vision_model.*` weights are taken) or just a vision model. Stage 1
then trains the projector alone (`freeze_config: freeze_vision freeze_llm`).
"""
from __future__ import annotations

from pathlib import Path

from engines.bridge.families import read_config
from samples.errors import UserError

# model_type of a dual encoder or a bare vision model -> (vision config class, CLS token?)
ENCODERS = {
    "clip": ("CLIPVisionConfig", True), "clip_vision_model": ("CLIPVisionConfig", True),
    "chinese_clip": ("ChineseCLIPVisionConfig", True),
    "chinese_clip_vision_model": ("ChineseCLIPVisionConfig", True),
    "siglip": ("SiglipVisionConfig", False), "siglip_vision_model": ("SiglipVisionConfig", False),
}


def vision_parts(vision_model: Path):
    """(vision config, {name: tensor} in a vision model's own naming, has CLS)."""
    import transformers
    from safetensors.torch import load_file

    cfg = read_config(vision_model)
    kind = cfg.get("model_type", "")
    if kind not in ENCODERS:
        raise UserError(f"{vision_model}/config.json", f"model_type {kind!r} is not a CLIP-like "
                                                        f"encoder ({', '.join(ENCODERS)})")
    cls_name, has_cls = ENCODERS[kind]
    vcfg = getattr(transformers, cls_name)(**cfg.get("vision_config", cfg))
    files = sorted(Path(vision_model).glob("*.safetensors"))
    if not files:
        raise UserError(str(vision_model), "holds no *.safetensors weights")
    weights = {}
    for f in files:
        weights.update({k: v for k, v in load_file(str(f)).items() if k.startswith("vision_model.")})
    return vcfg, weights, has_cls


def llava(language_model: Path, vision_model: Path, out_dir: Path, seed: int = 0) -> Path:
    import torch
    import transformers as tf

    language_model, vision_model, out_dir = Path(language_model), Path(vision_model), Path(out_dir)
    torch.manual_seed(seed)
    lm = tf.AutoModelForCausalLM.from_pretrained(language_model, dtype=torch.float32)
    tokenizer = tf.AutoTokenizer.from_pretrained(language_model)
    if "<image>" not in tokenizer.get_vocab():
        tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    vcfg, vision_weights, has_cls = vision_parts(vision_model)
    strategy = "default" if has_cls else "full"
    config = tf.LlavaConfig(vision_config=vcfg, text_config=lm.config,
                            image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
                            vision_feature_select_strategy=strategy, vision_feature_layer=-2)
    model = tf.LlavaForConditionalGeneration(config)  # the projector stays freshly initialised
    tower = model.model.vision_tower
    if not any(k.startswith("vision_model.") for k in tower.state_dict()):
        # Some vision classes (Chinese-CLIP's under transformers 5) are the bare transformer.
        vision_weights = {k.removeprefix("vision_model."): v for k, v in vision_weights.items()}
    model.model.language_model.load_state_dict(lm.model.state_dict())
    model.lm_head.load_state_dict(lm.lm_head.state_dict())
    missing, unexpected = tower.load_state_dict(vision_weights, strict=False)
    if unexpected or [m for m in missing if "position_ids" not in m]:
        raise UserError(str(vision_model), f"vision weights do not fit {type(vcfg).__name__}: "
                                           f"missing {missing[:3]}, unexpected {unexpected[:3]}")
    if len(tokenizer) > model.config.text_config.vocab_size:
        model.resize_token_embeddings(len(tokenizer))
    processor = tf.LlavaProcessor(
        image_processor=tf.AutoImageProcessor.from_pretrained(vision_model), tokenizer=tokenizer,
        patch_size=vcfg.patch_size, vision_feature_select_strategy=strategy,
        num_additional_image_tokens=1 if has_cls else 0, image_token="<image>")
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    print(f"assemble: {language_model.name} + {vision_model.name} -> {out_dir} (fresh projector)",
          flush=True)
    return out_dir
