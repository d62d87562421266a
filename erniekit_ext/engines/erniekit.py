"""Engine `erniekit`: ERNIEKit's `erniekit train` with its OCR-VL-SFT stage.

ERNIEKit proper comes from an ERNIE repository checkout (the Docker image has
one, pinned to a release branch). The PyPI `erniekit` wheel is not enough: it
lacks the `ernie` and `data_processor` packages and the `OCR-VL-SFT` stage, so
this engine names exactly what is missing instead of failing mid-import.
"""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import yaml

from converters.errors import UserError

NEEDED = {
    "erniekit": "the erniekit package",
    "ernie": "the `ernie` package (top level of an ERNIE checkout, not in the PyPI wheel)",
    "data_processor": "the `data_processor` package (ERNIE checkout only)",
    "erniekit.train.ocr_vl_sft": "the OCR-VL-SFT stage (erniekit/train/ocr_vl_sft in the ERNIE repo)",
}


def missing() -> list[str]:
    out = []
    for module, what in NEEDED.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            out.append(what)
    if shutil.which("erniekit") is None:
        out.append("the `erniekit` command")
    return out


def to_erniekit(cfg: dict) -> dict:
    """PaddleFormers-style keys -> ERNIEKit's schema for PaddleOCR-VL SFT."""
    out = dict(cfg, stage="OCR-VL-SFT")
    out.pop("template", None)
    out.pop("template_backend", None)
    if out.pop("train_dataset_type", "erniekit") != "erniekit":
        raise UserError("train_dataset_type", "the erniekit engine reads ERNIEKit JSONL only")
    return out


def launch(cfg: dict, run_dir: Path, *, resume: bool = False) -> None:
    gaps = missing()
    if gaps:
        raise UserError("engine: erniekit", "ERNIEKit is not usable here; missing " + "; ".join(gaps)
                        + ". Use the Docker image (make docker-train) or engine: paddleformers")
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = run_dir / "resolved_erniekit.yaml"
    resolved.write_text(yaml.safe_dump(to_erniekit(cfg), sort_keys=False, allow_unicode=True))
    cmd = ["erniekit", "train", str(resolved)]
    if resume:
        cmd.append("resume_from_checkpoint=true")
    subprocess.run(cmd, check=True)
