"""The torch engine: the PyTorch bridge, for models that are not Paddle-native.

    launch     start.py (this process, or torchrun for several) -> train.py
    is_run     a run folder with the bridge's marker (training/run_folder.py)
    export     merge.py (LoRA merged into its base, checked on a probe)
    serves     a folder the bridge exported, or of a family it knows (generate.py)
    predictor  generate.py (greedy `generate`, the prompt framed as in training)
"""
from __future__ import annotations

from pathlib import Path


def launch(recipe, cfg: dict, run_dir: Path, *, resume: bool, lay, nproc_per_node=None) -> None:
    from engines.bridge.start import launch as start

    start(cfg, run_dir, resume=resume, lay=lay)


def is_run(run_dir: Path) -> bool:
    from training.run_folder import read_marker

    return read_marker(run_dir) is not None


def export(run_dir: Path, out: Path, base: Path | None = None, **_) -> Path:
    """`base`, `verify`, `model_version`, `device` are for PaddleOCR-VL folders: a bridge
    run records its own base, and its export checks itself (merge.py)."""
    from engines.bridge.merge import export as merge_export

    return merge_export(run_dir, out)


def serves(model_dir: Path) -> bool:
    from engines.bridge.generate import is_bridge_model

    return is_bridge_model(model_dir)


class BridgePredictor:
    def __init__(self, model_dir: Path, max_new_tokens: int, device: str = "auto",
                 batch_size: int = 1):
        from engines.bridge.generate import open_predictor

        self.predictor = open_predictor(Path(model_dir), max_new_tokens, device)
        self.batch = batch_size

    def __call__(self, req) -> str:
        return self.predictor(req.prompt, req.image)

    def many(self, reqs: list) -> list[str]:
        """One left-padded batched `generate`."""
        return self.predictor.many([(r.prompt, r.image) for r in reqs])

    def close(self) -> None:
        getattr(self.predictor, "close", lambda: None)()  # a Remote in a fresh interpreter


def predictor(model_dir: Path, max_new_tokens: int, device: str = "auto", batch_size: int = 1):
    return BridgePredictor(model_dir, max_new_tokens, device, batch_size)
