"""The paddleformers engine (the default): PaddleFormers' trainer; paddlex serves the result.

    launch     train.py (in-process on CPU, paddle.distributed.launch on GPUs or workers)
    is_run     any run folder the other engines do not claim
    export     servable.py (LoRA merged first, merge.py)
    serves     any model folder the bridge does not claim (paddlex checks it)
    predictor  predict.py (paddlex's PaddleOCR-VL predictor)
"""
from __future__ import annotations

from pathlib import Path


def launch(recipe, cfg: dict, run_dir: Path, *, resume: bool, lay, nproc_per_node=None) -> None:
    from engines.paddleformers.train import generation_eval
    from engines.paddleformers.train import launch as train

    ours = recipe.ours
    train(cfg, run_dir, resume=resume, augment=ours["ocr_augmentation"],
          generation=generation_eval(cfg, ours["eval_generation_samples"],
                                     ours["eval_generation_max_new_tokens"]), lay=lay)


def is_run(run_dir: Path) -> bool:
    return True


def export(run_dir: Path, out: Path, base: Path | None = None, **kw) -> Path:
    from engines.paddleformers.servable import export as paddle_export

    return paddle_export(run_dir, out, base, **kw)


def serves(model_dir: Path) -> bool:
    return True


def predictor(model_dir: Path, max_new_tokens: int, device: str = "auto", batch_size: int = 1):
    from engines.paddleformers.predict import predictor as paddlex_predictor

    return paddlex_predictor(model_dir, max_new_tokens, device, batch_size)
