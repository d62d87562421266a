"""What a PaddleOCR-VL model folder must hold, and how to make one whole.

One home for the facts in ../shared/notes/inference-facts.md: paddlex (pipeline
v1) wants exactly one `model.safetensors` with HF names and layout, plus the
files below; paddleformers wants `config.json`, the tokenizer and the weights.
"""
from __future__ import annotations

import json
from pathlib import Path

from converters.errors import UserError

PADDLEX_MODEL_NAME = "PaddleOCR-VL-0.9B"
TRAIN_FILES = ("config.json", "tokenizer.model", "tokenizer_config.json", "preprocessor_config.json")
SERVE_FILES = TRAIN_FILES + ("inference.yml", "chat_template.jinja", "model.safetensors",
                             "generation_config.json")


def weight_files(model_dir: Path) -> list[Path]:
    return sorted(p for p in Path(model_dir).glob("*.safetensors") if not p.name.startswith("."))


def check_model_folder(model_dir: str | Path, for_serving: bool = False) -> Path:
    """Raise a UserError naming the first missing file; return the folder."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise UserError(str(model_dir), "model folder not found")
    for name in SERVE_FILES if for_serving else TRAIN_FILES:
        if not (model_dir / name).is_file():
            raise UserError(str(model_dir / name), "missing from the model folder")
    if not weight_files(model_dir):
        raise UserError(str(model_dir), "holds no *.safetensors weights")
    cfg = read_config(model_dir)
    if cfg.get("model_type") != "paddleocr_vl":
        raise UserError(str(model_dir / "config.json"),
                        f"model_type is {cfg.get('model_type')!r}, expected 'paddleocr_vl'")
    return model_dir


def read_config(model_dir: Path) -> dict:
    path = Path(model_dir) / "config.json"
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{e.lineno}", f"invalid JSON ({e.msg})") from None


def consolidate_safetensors(model_dir: Path) -> Path:
    """Merge sharded `model-*.safetensors` (+ index) into the one file paddlex accepts."""
    from safetensors.numpy import load_file, save_file

    model_dir = Path(model_dir)
    target = model_dir / "model.safetensors"
    shards = [p for p in weight_files(model_dir) if p != target]
    if not shards:
        return target
    tensors = {}
    if target.exists():
        tensors.update(load_file(target))
    for shard in shards:
        tensors.update(load_file(shard))
    tmp = model_dir / ".model.safetensors.part"
    save_file(tensors, tmp, metadata={"format": "pt"})
    tmp.replace(target)
    for shard in shards:
        shard.unlink()
    for leftover in ("model.safetensors.index.json", "saved_signal_0"):
        (model_dir / leftover).unlink(missing_ok=True)
    return target


def write_inference_yml(model_dir: Path) -> None:
    """paddlex checks Global.model_name against --vl_rec_model_name."""
    (Path(model_dir) / "inference.yml").write_text(
        f"Global:\n  model_name: {PADDLEX_MODEL_NAME}\n")
