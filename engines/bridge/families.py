"""One registry of the model families the bridge trains, and how to load each.

A family says which transformers class and processor a model folder needs,
what the prompt carries per image before the processor expands it, which chat
template frames a turn, where the towers sit in the module tree, and how the
usual LoRA target names (q/k/v/o/gate/up/down, LLaMA style) are spelled in
its vision tower:

    >>> lora_targets(model, FAMILIES["llava"], ["q_proj", "o_proj"], ("language", "vision"))
    ['model.language_model.layers.0.self_attn.q_proj', ...,
     'model.vision_tower.encoder.layers.0.self_attn.q_proj', ...,
     'model.vision_tower.encoder.layers.0.self_attn.out_proj', ...]

Adding a family is one `Family(...)` line here (and a tiny builder in tiny.py).
"""
from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path

from samples.errors import UserError
from samples.image_tokens import IMAGE_BLOCK
from training.recipe.bridge import CANONICAL  # the recipe's LoRA names, spelled per family here

SAME = {name: (name,) for name in CANONICAL}
# CLIP, Chinese-CLIP, SigLIP and PaddleOCR-VL's SigLIP-style encoder.
CLIP_NAMES = {"q_proj": ("q_proj",), "k_proj": ("k_proj",), "v_proj": ("v_proj",),
              "o_proj": ("out_proj",), "gate_proj": (), "up_proj": ("fc1",), "down_proj": ("fc2",)}
INTERNVIT_NAMES = {**CLIP_NAMES, "o_proj": ("projection_layer",)}
QWEN2_VIT_NAMES = {"q_proj": ("qkv",), "k_proj": ("qkv",), "v_proj": ("qkv",), "o_proj": ("proj",),
                   "gate_proj": (), "up_proj": ("fc1",), "down_proj": ("fc2",)}
QWEN25_VIT_NAMES = {**QWEN2_VIT_NAMES, "gate_proj": ("gate_proj",), "up_proj": ("up_proj",),
                    "down_proj": ("down_proj",)}
# The original InternVL2 checkpoints (InternLM2 + InternViT), remote code only.
INTERNLM2_NAMES = {"q_proj": ("wqkv",), "k_proj": ("wqkv",), "v_proj": ("wqkv",), "o_proj": ("wo",),
                   "gate_proj": ("w1",), "up_proj": ("w3",), "down_proj": ("w2",)}
INTERNVIT_ORIG_NAMES = {**QWEN2_VIT_NAMES}


@dataclass(frozen=True)
class Family:
    name: str
    model_types: tuple[str, ...]   # config.json `model_type` values that select it
    model_class: str               # transformers class; "" for remote code
    processor_class: str           # transformers processor class; "" for AutoProcessor
    image_placeholder: str         # what the prompt carries per image, before expansion
    template: str
    vision: str                    # module paths from the model root
    projector: str
    language: str
    vision_names: dict = field(default_factory=lambda: CLIP_NAMES)
    language_names: dict = field(default_factory=lambda: SAME)
    video_processor: bool = False  # the processor's __init__ wants a video processor
    remote_code: bool = False
    advice: str = ""               # what to do when the remote code is absent

    @property
    def towers(self) -> dict[str, str]:
        return {"vision": self.vision, "projector": self.projector, "language": self.language}


FAMILIES = {f.name: f for f in (
    # LLaVA-1.5 layout with any CLIP-like tower: CLIP, Chinese-CLIP, SigLIP (seeds 003, 004).
    Family("llava", ("llava",), "LlavaForConditionalGeneration", "LlavaProcessor", "<image>",
           "chatml", "model.vision_tower", "model.multi_modal_projector", "model.language_model"),
    Family("llava_onevision", ("llava_onevision",), "LlavaOnevisionForConditionalGeneration",
           "LlavaOnevisionProcessor", "<image>", "chatml", "model.vision_tower",
           "model.multi_modal_projector", "model.language_model", video_processor=True),
    # InternVL 2.5/3 in HF layout, and InternVL2 after internvl2_convert (seed 001).
    Family("internvl", ("internvl",), "InternVLForConditionalGeneration", "InternVLProcessor",
           "<IMG_CONTEXT>", "chatml", "model.vision_tower", "model.multi_modal_projector",
           "model.language_model", vision_names=INTERNVIT_NAMES, video_processor=True),
    Family("qwen2_vl", ("qwen2_vl",), "Qwen2VLForConditionalGeneration", "Qwen2VLProcessor",
           "<|vision_start|><|image_pad|><|vision_end|>", "chatml", "model.visual",
           "model.visual.merger", "model.language_model", vision_names=QWEN2_VIT_NAMES,
           video_processor=True),
    Family("qwen2_5_vl", ("qwen2_5_vl",), "Qwen2_5_VLForConditionalGeneration", "Qwen2_5_VLProcessor",
           "<|vision_start|><|image_pad|><|vision_end|>", "chatml", "model.visual",
           "model.visual.merger", "model.language_model", vision_names=QWEN25_VIT_NAMES,
           video_processor=True),
    Family("paddleocr_vl", ("paddleocr_vl",), "PaddleOCRVLForConditionalGeneration",
           "PaddleOCRVLProcessor", IMAGE_BLOCK,
           "paddleocr_vl", "model.visual", "model.projector", "model.language_model"),
    # Remote code only (bridge-facts.md): RiceViT + Qwen3 with a Qwen2-VL-style processor (seed 000).
    Family("llava_ov_1_5", ("llavaonevision1_5", "llava_onevision1_5"), "", "",
           "<|vision_start|><|image_pad|><|vision_end|>", "chatml", "model.visual",
           "model.visual.merger", "model.language_model", vision_names=QWEN25_VIT_NAMES,
           remote_code=True,
           advice="copy the model repository's *.py files (named in config.json auto_map) into the folder"),
    # The original InternVL2 (InternLM2 + InternViT): train it after conversion.
    Family("internvl_chat", ("internvl_chat",), "", "", "<image>", "chatml", "vision_model", "mlp1",
           "language_model", vision_names=INTERNVIT_ORIG_NAMES, language_names=INTERNLM2_NAMES,
           remote_code=True,
           advice="convert it to the native InternVL class: "
                  "python -m engines.bridge.internvl2_convert SRC DST, then train DST"),
)}


def read_config(model_dir: Path) -> dict:
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise UserError(str(model_dir), "is not a model folder (no config.json); nothing is downloaded")
    return json.loads(path.read_text())


def family_for(model_dir: Path) -> Family:
    model_type = read_config(model_dir).get("model_type", "")
    for fam in FAMILIES.values():
        if model_type in fam.model_types:
            return fam
    known = ", ".join(t for f in FAMILIES.values() for t in f.model_types)
    raise UserError(f"{model_dir}/config.json", f"model_type {model_type!r} is not a bridge family "
                                                 f"(known: {known})")


def check_remote_code(model_dir: Path, fam: Family) -> None:
    """Remote code runs only from files inside the folder; say what is missing."""
    auto_map = read_config(model_dir).get("auto_map", {})
    files = sorted({ref.split("--")[-1].split(".")[0] + ".py"
                    for ref in (v for vals in auto_map.values()
                                for v in (vals if isinstance(vals, list) else [vals])) if ref})
    missing = [f for f in files if not (Path(model_dir) / f).is_file()]
    if not auto_map or missing:
        raise UserError(str(model_dir), f"{fam.name} is remote code only and its code is absent "
                                        f"({', '.join(missing) or 'no auto_map in config.json'}); "
                                        f"{fam.advice}")


def lora_targets(model, fam: Family, names: list[str], towers: tuple[str, ...]) -> list[str]:
    """Full module names for LoRA: `names` (LLaMA spelling) mapped per tower.

    The projector is never a LoRA target (it is trained whole, modules_to_save).
    """
    import torch

    unknown = [n for n in names if n not in CANONICAL]
    if unknown:
        raise UserError("lora_target_modules", f"{unknown} are not among {list(CANONICAL)}")
    spell = {"language": fam.language_names, "vision": fam.vision_names}
    out = []
    for tower in towers:
        if tower not in spell:
            raise UserError("lora_towers", f"{tower!r} is not one of {sorted(spell)}")
        prefix = getattr(fam, tower) + "."
        leaves = {leaf for n in names for leaf in spell[tower][n]}
        found = [name for name, mod in model.named_modules()
                 if name.startswith(prefix) and not name.startswith(fam.projector + ".")
                 and isinstance(mod, torch.nn.Linear) and name.rsplit(".", 1)[-1] in leaves]
        if not found:
            raise UserError("lora_target_modules", f"no {sorted(leaves)} layer under {prefix[:-1]} "
                                                   f"in this {fam.name} model")
        out += found
    return out


def check_towers(model, fam: Family) -> None:
    modules = dict(model.named_modules())
    absent = {t: p for t, p in fam.towers.items() if p not in modules}
    if absent:
        top = sorted({n.split(".")[0] + ("." + n.split(".")[1] if "." in n else "")
                      for n in modules if n})[:12]
        raise UserError(fam.name, f"module(s) {absent} not found in the model; it has {top}")


def tower_of(param_name: str, fam: Family) -> str:
    """'projector' wins over 'vision' (Qwen2-VL's merger sits inside the vision tower)."""
    for tower in ("projector", "vision", "language"):
        if param_name.startswith(getattr(fam, tower) + "."):
            return tower
    return "language"  # lm_head and tied embeddings belong with the LLM


def model_class(fam: Family):
    import transformers

    return getattr(transformers, fam.model_class)


def processor_class(fam: Family):
    """The family's processor; without torchvision some refuse `video_processor=None`,
    so those get a subclass that builds without one (images only)."""
    import transformers

    base = getattr(transformers, fam.processor_class)
    if not fam.video_processor:
        return base

    class ImagesOnly(base):
        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            kwargs.pop("video_processor", None)
            super().__init__(image_processor=image_processor, tokenizer=tokenizer,
                             video_processor=None, chat_template=chat_template, **kwargs)

    # The processor saves the keys its __init__ signature names: show it the base's.
    sig = inspect.signature(base.__init__)
    ImagesOnly.__init__.__signature__ = sig.replace(
        parameters=[p for n, p in sig.parameters.items() if n != "video_processor"])
    ImagesOnly.__name__ = ImagesOnly.__qualname__ = base.__name__
    return ImagesOnly


def load_processor(model_dir: Path, fam: Family):
    from transformers import AutoImageProcessor, AutoProcessor, AutoTokenizer

    model_dir = Path(model_dir)
    if fam.remote_code:
        return AutoProcessor.from_pretrained(model_dir, trust_remote_code=True)
    kwargs = {}
    cfg_file = model_dir / "processor_config.json"
    if cfg_file.is_file():
        kwargs = {k: v for k, v in json.loads(cfg_file.read_text()).items()
                  if k != "processor_class" and not k.endswith("_processor")}
    image_processor = AutoImageProcessor.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return processor_class(fam)(image_processor=image_processor, tokenizer=tokenizer, **kwargs)


def load_model(model_dir: Path, fam: Family, dtype=None, quantization_config=None, device_map=None):
    import torch

    if fam.name == "paddleocr_vl" and "text_config" not in read_config(model_dir):
        # transformers would fill the LM keys PaddleFormers left out with its own defaults
        # (rms_norm_eps 1e-5, not 1e-6), and its processor wants the image token named.
        raise UserError(str(model_dir), "is a PaddleFormers folder; convert it first: python -m "
                                        "engines.bridge.paddle_cross to-torch SRC DST")

    kwargs = dict(dtype=dtype or torch.float32)
    if quantization_config is not None:
        kwargs["quantization_config"] = quantization_config
    if device_map is not None:  # 4/8-bit under torchrun: each rank's weights on its own GPU
        kwargs["device_map"] = device_map
    if fam.remote_code:
        check_remote_code(model_dir, fam)
        if fam.name == "internvl_chat":
            raise UserError(str(model_dir), f"InternVL2 remote code trains but cannot generate or "
                                            f"save under transformers 5; {fam.advice}")
        from transformers import AutoModelForImageTextToText

        return AutoModelForImageTextToText.from_pretrained(model_dir, trust_remote_code=True, **kwargs)
    return model_class(fam).from_pretrained(model_dir, **kwargs)


def load(model_dir: Path, dtype=None, quantization_config=None):
    """(family, model, processor) for a local folder."""
    fam = family_for(model_dir)
    model = load_model(model_dir, fam, dtype, quantization_config)
    check_towers(model, fam)
    return fam, model, load_processor(model_dir, fam)
