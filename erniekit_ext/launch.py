"""Engine `erniekit`: ERNIEKit's `erniekit train` with its OCR-VL-SFT stage, in ERNIEKit's own venv.

ERNIEKit pins paddleformers 0.4.0, so it never shares the project's venv:
`make setup-erniekit` builds `.venv-erniekit` (ERNIE itself as a wheel from a
local checkout, see install.py) and this engine starts that venv's python as a
subprocess, under a timeout (a dataset whose every sample fails makes the
stage loop forever, vl_sft_dataset_json.py:668):

    .venv-erniekit/bin/python -m erniekit_ext.compat train resolved_erniekit.yaml

erniekit_ext.compat applies its workarounds and runs ERNIEKit's in-process launcher
(`erniekit train` itself cannot start without a GPU). On a GPU machine the
same module is each worker of `paddle.distributed.launch` on every visible GPU;
the multi-node variables (NNODES, MASTER_ADDR, MASTER_PORT, PADDLE_NODE_RANK)
pass through. OCRSFT_ERNIEKIT_PYTHON names another interpreter (the Docker image's).

Recipes are written with PaddleFormers' keys; `to_erniekit` rewrites them in
the schema of ERNIE's examples/configs/PaddleOCR-VL/sft/run_ocr_vl_sft_16k.yaml:

    per_device_train_batch_size: 8      ->  batch_size: 1
    padding_free: true                      packing: true, packing_size: 8, padding: false
    per_device_train_batch_size: 4      ->  batch_size: 1, gradient_accumulation_steps: 4 x A
    padding_free: false                     (unpacked, the stage steps one sample at a time)
    fine_tuning: full                   ->  fine_tuning: Full
    bf16: true                          ->  compute_type: bf16 (the stage accepts no fp32)
    _attn_implementation: flashmask     ->  use_flash_attention: true, use_sparse_flash_attn: true
    tensor_model_parallel_size          ->  tensor_parallel_degree (pipeline_... likewise)

and adds what the stage needs to train the base on the paddleocr_vl prompt
(STAGE_KEYS). ERNIEKit drops unknown keys silently, so a key it does not read
is an error here, named with the recipe line it came from.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

from samples.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
NEEDED = {
    "erniekit": "the erniekit package",
    "ernie": "the `ernie` package (top level of an ERNIE checkout, not in the PyPI wheel)",
    "data_processor": "the `data_processor` package (ERNIE checkout only)",
    "erniekit.train.ocr_vl_sft": "the OCR-VL-SFT stage (erniekit/train/ocr_vl_sft in the ERNIE repo)",
    "erniekit.launcher": "ERNIEKit's in-process launcher",
}

RENAMED = {"tensor_model_parallel_size": "tensor_parallel_degree",
           "pipeline_model_parallel_size": "pipeline_parallel_degree"}
# PaddleFormers-only keys with no ERNIEKit counterpart (or replaced by the rewrites above).
DROPPED = ("template", "template_backend", "padding_free", "packing", "truncate_packing",
           "mix_strategy", "per_device_train_batch_size", "_attn_implementation",
           "use_attn_mask_startend_row_indices", "save_checkpoint_format",
           "load_checkpoint_format", "recompute_method", "recompute_num_layers",
           "max_estimate_samples", "copy_custom_file_list", "warmup_ratio", "bf16", "fp16",
           "per_device_eval_batch_size", "eval_dataset_type", "eval_dataset_path",
           "eval_dataset_prob", "do_eval", "evaluation_strategy", "eval_steps")
# What OCR-VL-SFT needs that its defaults get wrong (values of ERNIE's own
# run_ocr_vl_sft_16k.yaml; measured in ../shared/notes/erniekit-facts.md).
STAGE_KEYS = {
    "from_scratch": 0,           # the default 1 builds a random model and never loads the base
    "use_pic_id": False,         # else the prompt gains "Picture 1:"
    "sft_replace_ids": True,     # else the prompt ends in <|end_of_sentence|>, not </s>
    "sft_image_normalize": True,  # else pixels reach the model unscaled (1-214)
    "sft_image_rescale": True,
    # Read only for the zero image of a sample that fails to load (processor.py:563);
    # kept as ERNIE's own recipe writes it.
    "image_dtype": "float32",
}

ERNIEKIT_RESOLVED = "resolved_erniekit.yaml"  # the run's recipe in ERNIEKit's schema; marks its runs


def is_run(run_dir: Path) -> bool:
    """Whether `run_dir` is a run this engine wrote."""
    return (Path(run_dir) / ERNIEKIT_RESOLVED).is_file()


def erniekit_python() -> Path:
    return Path(os.environ.get("OCRSFT_ERNIEKIT_PYTHON") or ROOT / ".venv-erniekit" / "bin" / "python")


def erniekit_env() -> dict:
    """erniekit_ext.compat comes from this checkout; an ERNIE_ROOT (an editable install of
    a clone, whose `ernie`/`data_processor` only import from its root) goes first."""
    paths = [os.environ["ERNIE_ROOT"]] if os.environ.get("ERNIE_ROOT") else []
    paths += [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONUNBUFFERED": "1"}


def in_venv(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(erniekit_python()), "-c", code], capture_output=True, text=True,
                          env=erniekit_env(), timeout=timeout)


def missing() -> list[str]:
    """What ERNIEKit's venv lacks, in words; [] for a correct install (wheel or editable)."""
    py = erniekit_python()
    if not py.exists():
        return [f"ERNIEKit's venv ({py}; `make setup-erniekit` builds it)"]
    probe = ("import importlib.util, json, sys\n"
             "def found(m):\n"
             "    try:\n        return importlib.util.find_spec(m) is not None\n"
             "    except ImportError:\n        return False\n"
             f"print(json.dumps([m for m in {list(NEEDED)!r} if not found(m)]))")
    res = in_venv(probe)
    if res.returncode != 0:
        return [f"a working python at {py} ({res.stderr.strip().splitlines()[-1:]})"]
    return [NEEDED[m] for m in json.loads(res.stdout.strip().splitlines()[-1])]


def train_fields() -> set[str]:
    """Every key ERNIEKit's train parser reads, asked of ERNIEKit itself."""
    res = subprocess.run([str(erniekit_python()), "-m", "erniekit_ext.compat", "fields"],
                         capture_output=True, text=True, env=erniekit_env(), timeout=600)
    if res.returncode != 0:
        raise UserError("engine: erniekit", "cannot read ERNIEKit's arguments: "
                        + (res.stderr.strip().splitlines() or ["no output"])[-1])
    return set(json.loads(res.stdout.strip().splitlines()[-1]))


def _fail(where, key: str, reason: str) -> UserError:
    return UserError(where(key) if where else key, reason)


def to_erniekit(cfg: dict, *, gpu: bool, known: set[str] | None = None, where=None) -> dict:
    """A resolved PaddleFormers-keyed config in ERNIEKit's OCR-VL-SFT schema.

    `known`: the keys ERNIEKit reads (train_fields); `where(key)`: the recipe's
    "file:line: key" for an error (Recipe.where)."""
    if cfg.get("train_dataset_type", "erniekit") != "erniekit":
        raise _fail(where, "train_dataset_type", "the erniekit engine reads ERNIEKit JSONL only")
    if cfg.get("packing"):
        raise _fail(where, "packing", "ERNIEKit packs packing_size samples per sequence; for engine "
                    "erniekit use padding_free: true with per_device_train_batch_size: N")
    from training.recipe import evaluates

    if evaluates(cfg):
        key = "do_eval" if cfg.get("do_eval") else "evaluation_strategy"
        raise _fail(where, key, "ERNIEKit's OCR-VL-SFT stage cannot evaluate (it sets eval_dataset "
                    "= None, erniekit/train/ocr_vl_sft/workflow.py:644, and stops at the first eval "
                    "step); set do_eval: false and evaluation_strategy: no, or use engine: paddleformers")
    if gpu and not (cfg.get("bf16") or cfg.get("fp16")):
        raise _fail(where, "bf16", "ERNIEKit's OCR-VL-SFT stage trains in bf16 or fp16 only "
                    "(erniekit/hparams/finetuning_args.py:517 rejects fp32); set bf16: true")
    out = {RENAMED.get(k, k): v for k, v in cfg.items() if k not in DROPPED}
    origin = {RENAMED.get(k, k): k for k in cfg}
    batch = cfg.get("per_device_train_batch_size", 1)
    if cfg.get("padding_free"):
        out.update(batch_size=1, packing=True, packing_size=batch, padding=False)
    else:
        # Unpacked, the stage feeds one sample per micro-step whatever batch_size says
        # (measured: batch_size 4 gives input_ids of shape [1, L]), so B samples per
        # optimizer step are B accumulation steps.
        out.update(batch_size=1, packing=False, padding=True,
                   gradient_accumulation_steps=batch * cfg.get("gradient_accumulation_steps", 1))
    out.update(stage="OCR-VL-SFT", multimodal=True,
               fine_tuning="LoRA" if str(cfg.get("fine_tuning", "LoRA")).lower() == "lora" else "Full",
               # On CPU erniekit_ext.compat turns bf16 off again: the stage needs a value it accepts.
               compute_type="fp16" if cfg.get("fp16") else "bf16")
    flash = gpu and str(cfg.get("_attn_implementation", "")).lower() == "flashmask"
    out.update(use_flash_attention=flash, use_sparse_flash_attn=flash)
    if cfg.get("recompute_granularity"):
        out["recompute"] = True
    if not gpu:
        out.update(dataloader_num_workers=0, distributed_dataloader=False, sharding="",
                   tensor_parallel_degree=1, pipeline_parallel_degree=1)
    out.update(STAGE_KEYS)
    out.setdefault("convert_from_hf", True)
    out.setdefault("save_to_hf", True)
    # ocrsft train already refused a non-empty output_dir unless --resume/--overwrite, and
    # wrote its plan there; ERNIEKit's own check would now refuse the plan files.
    out["overwrite_output_dir"] = True
    # The stage's own TensorBoardCallback always writes to logging_dir; report_to's would
    # open a second writer there whose event file (same second, same name) clobbers it.
    out["report_to"] = "none"
    if known is not None:
        for key in out:
            if key not in known:
                raise _fail(where, origin.get(key, key), "ERNIEKit's train parser has no such key "
                            "and would drop it silently; remove it or use engine: paddleformers")
    return out


def launch(cfg: dict, run_dir: Path, *, resume: bool = False, where=None,
           timeout_s: float | None = None) -> None:
    gaps = missing()
    if gaps:
        raise UserError("engine: erniekit", "ERNIEKit is not usable here; missing " + "; ".join(gaps)
                        + ". Run `make setup-erniekit`, use the Docker image (make docker-train) "
                        "or engine: paddleformers")
    from training import device
    from training.recipe import absolute_paths, data_dir
    from training.run_folder import last_checkpoint

    gpu = device.has_gpu()
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    ernie = to_erniekit(absolute_paths(cfg), gpu=gpu, known=train_fields(), where=where)
    ckpt = last_checkpoint(Path(ernie["output_dir"])) if resume else None
    if ckpt is not None:
        ernie["resume_from_checkpoint"] = str(ckpt)
    resolved = run_dir / ERNIEKIT_RESOLVED
    tmp = resolved.with_suffix(".part")
    tmp.write_text(yaml.safe_dump(ernie, sort_keys=False, allow_unicode=True))
    tmp.replace(resolved)
    cmd = command(resolved, gpu)
    try:
        subprocess.run(cmd, check=True, env=erniekit_env(), cwd=data_dir(cfg), timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise UserError("engine: erniekit", f"ERNIEKit did not finish within {timeout_s:.0f} s "
                        "(erniekit_timeout_s); a dataset whose every sample fails makes it loop "
                        "forever: check the log above") from None
    except subprocess.CalledProcessError as e:
        raise UserError("engine: erniekit", f"ERNIEKit exited with status {e.returncode}; "
                        "its log is above") from None


def command(resolved: Path, gpu: bool) -> list[str]:
    py = str(erniekit_python())
    entry = ["-m", "erniekit_ext.compat", "train", str(resolved)]
    if not gpu:
        return [py, *entry]
    cmd = [py, "-m", "paddle.distributed.launch"]
    master = os.environ.get("MASTER_ADDR")
    if master:
        cmd += ["--master", f"{master}:{os.environ.get('MASTER_PORT', '8090')}"]
    for env, flag in (("NNODES", "--nnodes"), ("PADDLE_NODE_RANK", "--rank")):
        if os.environ.get(env):
            cmd += [flag, os.environ[env]]
    if os.environ.get("CUDA_VISIBLE_DEVICES"):
        cmd += ["--gpus", os.environ["CUDA_VISIBLE_DEVICES"]]
    return cmd + ["--log_dir", str(resolved.parent / "launch_logs"), *entry]
