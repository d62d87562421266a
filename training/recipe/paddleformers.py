"""The PaddleFormers section of the recipe schema (engines paddleformers and erniekit).

A recipe's engine keys are PaddleFormers' own names, so a recipe from its
examples/best_practices works as is; `check` coerces each value to the type
PaddleFormers declares and refuses unknown keys and contradictions. The erniekit
engine shares it: its recipe is written in these names and rewritten to
ERNIEKit's at launch (erniekit_ext/launch.py).
"""
from __future__ import annotations

import dataclasses
import difflib
import enum
import typing

from training.recipe import FREEZE, Recipe, evaluates

# Keys users bring from ERNIEKit recipes (seed 002) that PaddleFormers spells differently.
ERNIEKIT_SPELLINGS = {
    "packing_size": "per_device_train_batch_size with padding_free: true (B samples per step)",
    "batch_size": "per_device_train_batch_size",
    "tensor_parallel_degree": "tensor_model_parallel_size",
    "pipeline_parallel_degree": "pipeline_model_parallel_size",
    "use_flash_attention": "_attn_implementation: flashmask",
    "multimodal": "stage: VL-SFT (PaddleFormers needs no multimodal switch)",
    "recompute": "recompute_granularity",
}



def check(r: Recipe) -> None:
    coerce_and_check_keys(r)
    check_consistency(r)


def paddleformers_fields() -> dict[str, type]:
    """Every key PaddleFormers' `train` accepts -> its declared type (Optional unwrapped)."""
    from paddleformers.cli.hparams import parser

    out = {}
    for cls in parser._TRAIN_ARGS:
        for f in dataclasses.fields(cls):
            tp = f.type
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if typing.get_origin(tp) is typing.Union and len(args) == 1:
                tp = args[0]
            out[f.name] = tp
    return out


def coerce(value, tp):
    """A YAML value as the type PaddleFormers declares; ValueError if it cannot be."""
    if value is None or not isinstance(tp, type):
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ValueError("must be true or false")
    if isinstance(value, bool) and issubclass(tp, enum.Enum):
        # YAML 1.1 reads `evaluation_strategy: no` as false (the "Norway problem")
        choices = [str(m.value) for m in tp]
        spelled = [w for w in (("yes", "true") if value else ("no", "false")) if w in choices]
        if spelled:
            return spelled[0]
        raise ValueError(f"must be one of {', '.join(choices)}")
    if isinstance(value, bool):
        raise ValueError(f"must be {tp.__name__}, not true/false")
    if tp is float:
        return float(value)  # YAML 1.1 reads "5e-6" as a string
    if tp is int:
        number = float(value)
        if number != int(number):
            raise ValueError("must be a whole number")
        return int(number)
    if tp is str and isinstance(value, (int, float)):
        return str(value)  # e.g. train_dataset_prob: 1.0
    return value


def coerce_and_check_keys(r: Recipe) -> None:
    known = paddleformers_fields()
    for key in list(r.cfg):
        if key not in known:
            hint = ERNIEKIT_SPELLINGS.get(key)
            if hint:
                reason = f"is ERNIEKit's key; PaddleFormers uses {hint}"
            else:
                close = difflib.get_close_matches(key, known, n=1)
                reason = "unknown key" + (f" (did you mean {close[0]}?)" if close else "")
            raise r.fail(key, reason + "; PaddleFormers would stop on it "
                         "(\"not used by the PdArgumentParser\")")
        try:
            r.cfg[key] = coerce(r.cfg[key], known[key])
        except (TypeError, ValueError) as e:
            reason = str(e) if "must" in str(e) else f"must be {known[key].__name__}"
            raise r.fail(key, f"{r.cfg[key]!r}: {reason}") from None


def check_consistency(r: Recipe) -> None:
    """Contradictions PaddleFormers would accept silently or fail on an hour in."""
    c = r.cfg
    if "fine_tuning" not in c:
        raise r.fail("fine_tuning", "is not set; PaddleFormers would quietly default to LoRA "
                     "(write full or LoRA)")
    tuning = str(c["fine_tuning"]).lower()
    if tuning not in ("full", "lora"):
        raise r.fail("fine_tuning", f"{c['fine_tuning']!r} is neither full nor LoRA "
                     "(PaddleFormers would quietly run a full fine-tune)")
    if tuning == "full":
        for key in ("lora_rank", "lora_path", "rslora", "lora_plus_scale"):
            if key in c:
                raise r.fail(key, "is a LoRA setting but fine_tuning is full")
    if "lora_alpha" in c and c["lora_alpha"] != 2 * c.get("lora_rank", 8):
        raise r.fail("lora_alpha", "PaddleFormers ignores it (alpha is always 2 x lora_rank); "
                     "remove it or set lora_rank")
    if c.get("stage") == "OCR-VL-SFT" and r.engine == "paddleformers":
        raise r.fail("stage", "OCR-VL-SFT is ERNIEKit's stage; PaddleFormers calls it VL-SFT")
    freeze = str(c.get("freeze_config") or "").split()
    unknown = [t for t in freeze if t not in FREEZE]
    if unknown:
        raise r.fail("freeze_config", f"{unknown[0]!r} is not one of {', '.join(FREEZE)} "
                     "(space-separated)")
    if set(freeze) == set(FREEZE) and tuning == "full":
        raise r.fail("freeze_config", "freezes vision, aligner and LLM: nothing would train")
    if c.get("bf16") and c.get("fp16"):
        raise r.fail("fp16", "bf16 and fp16 are both true")
    lr, min_lr = c.get("learning_rate"), c.get("min_lr")
    if isinstance(lr, float) and isinstance(min_lr, float) and min_lr > lr:
        raise r.fail("min_lr", f"{min_lr} is above learning_rate {lr}")
    if str(c.get("_attn_implementation", "")).lower() == "flashmask" \
            and c.get("use_attn_mask_startend_row_indices") is False:
        raise r.fail("use_attn_mask_startend_row_indices", "must stay true with flashmask attention")
    for key in ("max_seq_len", "per_device_train_batch_size", "gradient_accumulation_steps",
                "save_steps", "eval_steps", "logging_steps"):
        if key in c and (not isinstance(c[key], int) or c[key] < 1):
            raise r.fail(key, f"must be a whole number >= 1, got {c[key]!r}")
    if evaluates(c) and not c.get("eval_dataset_path"):
        raise r.fail("eval_dataset_path" if "eval_dataset_path" in c else "do_eval",
                     "evaluation is on but eval_dataset_path is not set")
    for split in ("train", "eval"):
        paths, probs = c.get(f"{split}_dataset_path"), c.get(f"{split}_dataset_prob")
        if paths and probs and len(str(paths).split(",")) != len(str(probs).split(",")):
            raise r.fail(f"{split}_dataset_prob", f"gives {len(str(probs).split(','))} weights "
                         f"for {len(str(paths).split(','))} datasets")
