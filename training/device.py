"""`--device auto|cpu|gpu:N` for inference, parity, the export check and the generation eval.

`auto` takes GPU 0 when paddle or torch sees a GPU, else the CPU. Paddle spells a
device `gpu:N`, torch `cuda:N`; `paddle_device` and `torch_device` translate.
"""
from __future__ import annotations

import re

from samples.errors import UserError

CHOICES = "auto, cpu or gpu:N"


def has_gpu() -> bool:
    """Whether paddle can train on a GPU here (a CUDA build that sees one)."""
    import paddle

    return paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0


def gpu_seen() -> bool:
    from training.distributed import visible_gpus

    return visible_gpus() > 0


def resolve(device: str | None = "auto") -> str:
    """'cpu' or 'gpu:N' for what the user asked."""
    device = (device or "auto").strip().lower()
    if device == "auto":
        return "gpu:0" if gpu_seen() else "cpu"
    if device == "cpu":
        return device
    m = re.fullmatch(r"(?:gpu|cuda)(?::(\d+))?", device)
    if not m:
        raise UserError("--device", f"{device!r} is not {CHOICES}")
    return f"gpu:{m.group(1) or 0}"


def paddle_device(device: str | None = "auto") -> str:
    return resolve(device)


def torch_device(device: str | None = "auto") -> str:
    d = resolve(device)
    return "cpu" if d == "cpu" else "cuda:" + d.split(":")[1]
