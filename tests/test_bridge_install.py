"""`make setup-torch`: a CPU torch, no torchvision, no CUDA wheels, and paddle still works beside it."""
from __future__ import annotations

import pytest

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

LOCK = Path(__file__).resolve().parent.parent / "requirements-torch.lock"


def pins() -> dict[str, str]:
    return dict(line.split("==") for line in LOCK.read_text().splitlines()
                if line.strip() and not line.startswith("#"))


def test_torch_is_the_cpu_build_and_the_pins_hold():
    for name, version in pins().items():
        assert metadata.version(name).split("+")[0] == version, name
    assert metadata.version("torch").endswith("+cpu")
    installed = {d.metadata["Name"].lower() for d in metadata.distributions()}
    assert "torchvision" not in installed
    assert not [n for n in installed if n.startswith("nvidia-") or n == "triton-cuda"]


@pytest.mark.slow
def test_pip_check_reports_only_the_known_pins():
    out = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True).stdout
    problems = [line for line in out.splitlines() if re.match(r"^\S+ [\d.]+ has requirement", line)]
    known = ("fast-dataindex", "paddleformers 1.2.0 has requirement transformers")
    assert problems and all(line.startswith(known) for line in problems), problems


@pytest.mark.slow
def test_paddle_and_torch_import_in_either_order():
    for first, second in (("paddle", "torch"), ("torch", "paddle")):
        code = (f"import {first}, {second}; import torch, paddle; "
                "print(torch.tensor([1.0, 2.0]).sum().item(), float(paddle.to_tensor([1.0, 2.0]).sum()))")
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
        assert res.stdout.split()[-2:] == ["3.0", "3.0"]
