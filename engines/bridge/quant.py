"""4-bit / 8-bit loading through bitsandbytes (seed 000's `use_4bit` / `use_8bit`).

Gated: without bitsandbytes the run stops with one line saying how to get it;
on a machine without CUDA it runs (bitsandbytes has CPU kernels) but warns,
because it is far slower than fp32 there (measured on a tiny LLaVA: ~15x for
4-bit, ~100x for 8-bit). The vision tower, the projector and lm_head stay in
full precision: a quantised projector could not be trained whole
(modules_to_save). Merging always reloads the base in full precision.
"""
from __future__ import annotations

import importlib.util
import sys

from engines.bridge.families import Family
from samples.errors import UserError


def mode(cfg: dict) -> str | None:
    four, eight = bool(cfg.get("use_4bit")), bool(cfg.get("use_8bit"))
    if four and eight:
        raise UserError("use_4bit/use_8bit", "choose one of them")
    return "4bit" if four else "8bit" if eight else None


def installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def config_for(cfg: dict, fam: Family, available=installed):
    """A BitsAndBytesConfig, or None when the recipe does not quantise."""
    which = mode(cfg)
    if which is None:
        return None
    if not available("bitsandbytes"):
        raise UserError(f"use_{which}", "needs bitsandbytes, which is not installed: "
                                        "pip install bitsandbytes==0.50.2 (or make setup-torch)")
    import torch
    from transformers import BitsAndBytesConfig

    if not torch.cuda.is_available():
        print(f"train: WARNING {which} quantisation on CPU is slow (about "
              f"{'15' if which == '4bit' else '100'}x fp32 time); it is meant for a GPU",
              file=sys.stderr, flush=True)
    # Paths from the root: a bare name would also match inside other modules.
    skip = [fam.vision, fam.projector, "lm_head"]
    if which == "4bit":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                  bnb_4bit_use_double_quant=True,
                                  bnb_4bit_compute_dtype=torch.float32 if not torch.cuda.is_available()
                                  else torch.bfloat16, llm_int8_skip_modules=skip)
    return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)


def prepare(model, gradient_checkpointing: bool):
    from peft import prepare_model_for_kbit_training

    return prepare_model_for_kbit_training(
        model, use_gradient_checkpointing=gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False})
