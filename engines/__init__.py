"""The one engine interface, and the one place an engine is chosen.

Every engine is a module (or package) with the same five names:

    launch(recipe, cfg, run_dir, *, resume, lay, nproc_per_node)   train into run_dir
    is_run(run_dir) -> bool           whether run_dir is one of its runs
    export(run_dir, out, base, *, verify, model_version, device) -> Path   a servable folder
    serves(model_dir) -> bool         whether its predictor is the one for this folder
    predictor(model_dir, max_new_tokens, device, batch_size)   Request -> answer

- `paddleformers` (default): PaddleFormers' trainer, in-process on CPU, through
  `paddle.distributed.launch` on GPUs or several processes; paddlex serves its folders.
- `erniekit`: ERNIEKit's OCR-VL-SFT stage in its own venv (erniekit_ext/); its export is
  a PaddleOCR-VL folder, so paddleformers' predictor serves it.
- `torch`: the PyTorch bridge for models that are not Paddle-native (bridge/), under
  torchrun when several processes are asked for; transformers serves its folders.

`ocrsft train` calls `launch`, `ocrsft export` calls `export`, `ocrsft infer` (and parity)
call `predictor`: none of them names an engine.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from samples.errors import UserError
from training.distributed import Layout

ENGINES = {"paddleformers": "engines.paddleformers", "erniekit": "engines.erniekit",
           "torch": "engines.bridge"}
# Who claims a run folder or a model folder first: paddleformers takes what is left.
CLAIM_ORDER = ("torch", "erniekit", "paddleformers")


def engine(name: str) -> ModuleType:
    return importlib.import_module(ENGINES[name])


def engine_of_run(run_dir: Path) -> str:
    """Which engine wrote `run_dir`: each leaves its own mark (the bridge its marker file,
    ERNIEKit its own recipe); anything else is a PaddleFormers run."""
    return next(name for name in CLAIM_ORDER if engine(name).is_run(Path(run_dir)))


def engine_of_model(model_dir: Path) -> str:
    """Which engine's predictor serves `model_dir`."""
    return next(name for name in CLAIM_ORDER if engine(name).serves(Path(model_dir)))


def launch(recipe, cfg: dict, run_dir: Path, *, resume: bool, lay: Layout,
           nproc_per_node: int | None = None) -> None:
    """Train `cfg` (the recipe's engine keys, resolved) into `run_dir` on `recipe.engine`."""
    engine(recipe.engine).launch(recipe, cfg, run_dir, resume=resume, lay=lay,
                                 nproc_per_node=nproc_per_node)


def export(run_dir: Path, out: Path, base: Path | None = None, *, verify: bool = True,
           model_version: str | None = None, device: str = "auto") -> Path:
    """A servable folder from any engine's run."""
    run_dir, out = Path(run_dir), Path(out)
    if not run_dir.is_dir():
        raise UserError(str(run_dir), "run folder not found")
    return engine(engine_of_run(run_dir)).export(run_dir, out, Path(base) if base else None,
                                                 verify=verify, model_version=model_version,
                                                 device=device)


def predictor(model_dir: Path, max_new_tokens: int, device: str = "auto", batch_size: int = 1):
    """A callable Request -> answer for `model_dir`, from the engine that serves it; those
    that batch also have `many(requests)` and a `batch` size."""
    return engine(engine_of_model(model_dir)).predictor(Path(model_dir), max_new_tokens, device,
                                                        batch_size)
