"""A served PaddleOCR-VL folder, predicted through paddlex's own predictor.

This is what `ocrsft infer --via native` calls for a PaddleOCR-VL folder (whichever
Paddle engine trained it), and the export's proof that a folder loads.
"""
from __future__ import annotations

from pathlib import Path

from models import model_folder
from samples.sample import Request


def load_native(model_dir: Path, device: str = "auto"):
    """paddlex's PaddleOCR-VL predictor for the folder's version."""
    model_folder.check_model_folder(model_dir, for_serving=True)
    from paddlex import create_model

    from training.device import paddle_device

    version, _ = model_folder.detect_version(model_dir)
    return create_model(version.paddlex_model_name, model_dir=str(model_dir),
                        device=paddle_device(device))


class NativePredictor:
    def __init__(self, model_dir: Path, max_new_tokens: int, device: str = "auto"):
        self.model = load_native(model_dir, device)
        self.max_new_tokens = max_new_tokens

    def __call__(self, req: Request) -> str:
        out = next(iter(self.model.predict([{"image": req.image, "query": req.prompt}],
                                           max_new_tokens=self.max_new_tokens)))
        return out["result"]


def predictor(model_dir: Path, max_new_tokens: int, device: str = "auto", batch_size: int = 1):
    model_folder.check_local_batch(batch_size)
    return NativePredictor(model_dir, max_new_tokens, device)
