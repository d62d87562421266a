"""Engine `erniekit`: ERNIEKit's `erniekit train` with its OCR-VL-SFT stage.

ERNIEKit proper comes from an ERNIE repository checkout (the Docker image has
one, pinned to a release branch). The PyPI `erniekit` wheel is not enough: it
lacks the `ernie` and `data_processor` packages and the `OCR-VL-SFT` stage, so
this engine names exactly what is missing instead of failing mid-import.

Recipes are written with PaddleFormers' keys; `to_erniekit` rewrites them in
ERNIEKit's schema, the one of the ERNIE repo's
examples/configs/PaddleOCR-VL/sft/run_ocr_vl_sft_16k.yaml:

    per_device_train_batch_size: 8      ->  batch_size: 1
    padding_free: true                      packing: true, packing_size: 8, padding: false
    fine_tuning: full                   ->  fine_tuning: Full
    bf16: true                          ->  compute_type: bf16
    _attn_implementation: flashmask     ->  use_flash_attention: true, use_sparse_flash_attn: true
    tensor_model_parallel_size          ->  tensor_parallel_degree (pipeline_... likewise)

`erniekit train` launches its own workers on every visible GPU and reads the
multi-node variables (NNODES, MASTER_ADDR, MASTER_PORT, PADDLE_NODE_RANK)
itself, so they pass through the environment untouched.
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

RENAMED = {"tensor_model_parallel_size": "tensor_parallel_degree",
           "pipeline_model_parallel_size": "pipeline_parallel_degree",
           "per_device_eval_batch_size": "eval_batch_size"}
# PaddleFormers-only keys with no ERNIEKit counterpart (or replaced by the rewrites above).
DROPPED = ("template", "template_backend", "padding_free", "packing", "truncate_packing",
           "mix_strategy", "per_device_train_batch_size", "_attn_implementation",
           "use_attn_mask_startend_row_indices", "save_checkpoint_format",
           "load_checkpoint_format", "recompute_method", "recompute_num_layers",
           "max_estimate_samples", "copy_custom_file_list", "warmup_ratio", "bf16", "fp16")


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
    """A resolved PaddleFormers-keyed config in ERNIEKit's OCR-VL-SFT schema."""
    if cfg.get("train_dataset_type", "erniekit") != "erniekit":
        raise UserError("train_dataset_type", "the erniekit engine reads ERNIEKit JSONL only")
    if cfg.get("packing"):
        raise UserError("packing", "ERNIEKit packs packing_size samples per sequence; for engine "
                        "erniekit use padding_free: true with per_device_train_batch_size: N")
    out = {RENAMED.get(k, k): v for k, v in cfg.items() if k not in DROPPED}
    batch = cfg.get("per_device_train_batch_size", 1)
    if cfg.get("padding_free"):
        out.update(batch_size=1, packing=True, packing_size=batch, padding=False)
    else:
        out.update(batch_size=batch, packing=False)
    out.update(stage="OCR-VL-SFT", multimodal=True,
               fine_tuning="LoRA" if str(cfg.get("fine_tuning", "LoRA")).lower() == "lora" else "Full",
               compute_type="bf16" if cfg.get("bf16") else "fp16" if cfg.get("fp16") else "fp32")
    if str(cfg.get("_attn_implementation", "")).lower() == "flashmask":
        out.update(use_flash_attention=True, use_sparse_flash_attn=True)
    if cfg.get("recompute_granularity"):
        out["recompute"] = True
    out.setdefault("convert_from_hf", True)
    out.setdefault("save_to_hf", True)
    return out


def launch(cfg: dict, run_dir: Path, *, resume: bool = False) -> None:
    gaps = missing()
    if gaps:
        raise UserError("engine: erniekit", "ERNIEKit is not usable here; missing " + "; ".join(gaps)
                        + ". Use the Docker image (make docker-train) or engine: paddleformers")
    from erniekit_ext.engines.paddleformers import last_checkpoint

    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = run_dir / "resolved_erniekit.yaml"
    ernie = to_erniekit(cfg)
    ckpt = last_checkpoint(Path(cfg["output_dir"])) if resume else None
    if ckpt is not None:
        ernie["resume_from_checkpoint"] = str(ckpt)
    resolved.write_text(yaml.safe_dump(ernie, sort_keys=False, allow_unicode=True))
    subprocess.run(["erniekit", "train", str(resolved)], check=True)
