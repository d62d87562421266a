"""The three training engines, chosen here and nowhere else.

- `paddleformers` (default): PaddleFormers' trainer, in-process on CPU, through
  `paddle.distributed.launch` on GPUs or several processes (engines/paddleformers.py).
- `erniekit`: ERNIEKit's OCR-VL-SFT stage in its own venv (engines/erniekit.py).
- `torch`: the PyTorch bridge for models that are not Paddle-native (bridge/), under
  torchrun when several processes are asked for.

`launch` starts a recipe on its engine; `engine_of_run` tells which engine wrote a run
folder, which is how `ocrsft export` knows what it is turning into a servable folder.
"""
from __future__ import annotations

from pathlib import Path

from training.distributed import Layout
from erniekit_ext.launch import ERNIEKIT_RESOLVED
from training.run_folder import read_marker


def launch(recipe, cfg: dict, run_dir: Path, *, resume: bool, lay: Layout,
           nproc_per_node: int | None = None) -> None:
    """Train `cfg` (the recipe's engine keys, resolved) into `run_dir` on `recipe.engine`."""
    ours = recipe.ours
    if recipe.engine == "torch":
        from engines.bridge.launch import launch as bridge_launch

        bridge_launch(cfg, run_dir, resume=resume, lay=lay)
    elif recipe.engine == "erniekit":
        from erniekit_ext.launch import launch as erniekit_launch

        if nproc_per_node:  # `erniekit train` starts one worker per visible GPU itself
            print("train: engine erniekit ignores --nproc-per-node; choose GPUs with "
                  "CUDA_VISIBLE_DEVICES", flush=True)
        erniekit_launch(cfg, run_dir, resume=resume, where=recipe.where,
                        timeout_s=ours["erniekit_timeout_s"])
    else:
        from engines.paddleformers.train import generation_eval, launch as pf_launch

        pf_launch(cfg, run_dir, resume=resume, augment=ours["ocr_augmentation"],
                  generation=generation_eval(cfg, ours["eval_generation_samples"],
                                             ours["eval_generation_max_new_tokens"]), lay=lay)


def engine_of_run(run_dir: Path) -> str:
    """Which engine wrote `run_dir`: each leaves its own mark (the bridge its marker file,
    ERNIEKit its own recipe); anything else is a PaddleFormers run."""
    if read_marker(run_dir) is not None:
        return "torch"
    if (Path(run_dir) / ERNIEKIT_RESOLVED).is_file():
        return "erniekit"
    return "paddleformers"
