"""The erniekit engine: ERNIEKit's own `erniekit train` (stage OCR-VL-SFT) in its own venv.

What runs inside ERNIEKit lives in erniekit_ext/; this module is its face to the
engine interface (engines/__init__.py). Its output is a PaddleOCR-VL folder, so the
export is paddleformers' with one difference, and paddleformers' predictor serves it.
"""
from __future__ import annotations

from pathlib import Path

from erniekit_ext import launch as erniekit

# An ERNIEKit run's config.json is ERNIE's schema, with the vision hidden_act rewritten to
# gelu_new (ernie/siglip/configuration.py:76, which paddleformers 1.2 rejects) and the
# special-token ids dropped; its added_tokens.json adds a <mask:0> beyond the embedding.
# SFT changes neither the architecture nor the vocabulary, so the base's files serve.
FROM_BASE = ("config.json",)
NOT_SERVED = ("added_tokens.json",)


def is_run(run_dir: Path) -> bool:
    return erniekit.is_run(run_dir)


def launch(recipe, cfg: dict, run_dir: Path, *, resume: bool, lay, nproc_per_node=None) -> None:
    if nproc_per_node:  # `erniekit train` starts one worker per visible GPU itself
        print("train: engine erniekit ignores --nproc-per-node; choose GPUs with "
              "CUDA_VISIBLE_DEVICES", flush=True)
    erniekit.launch(cfg, run_dir, resume=resume, where=recipe.where,
                    timeout_s=recipe.ours["erniekit_timeout_s"])


def export(run_dir: Path, out: Path, base: Path | None = None, **kw) -> Path:
    from engines.paddleformers.servable import export as paddle_export

    return paddle_export(run_dir, out, base, from_base=FROM_BASE, not_served=NOT_SERVED, **kw)


def serves(model_dir: Path) -> bool:
    return False  # an exported ERNIEKit run is a PaddleOCR-VL folder like any other


def predictor(model_dir: Path, max_new_tokens: int, device: str = "auto", batch_size: int = 1):
    from engines.paddleformers import predictor as paddle_predictor

    return paddle_predictor(model_dir, max_new_tokens, device, batch_size)
