"""Engine `paddleformers`: run PaddleFormers' VL-SFT trainer on a resolved config.

Read top to bottom: write the resolved YAML into the run folder, then either
launch workers through `paddle.distributed.launch` (on GPUs, or when the layout
asks for more than one process: CPU workers talk over gloo; several nodes meet
at MASTER_ADDR:MASTER_PORT), or, for one process on a machine without a GPU,
run the trainer in this process with the CPU settings — `paddleformers-cli`
itself cannot start there (compat 3).

Loss across ranks: PaddleFormers' causal-LM loss is the mean over each rank's own
label tokens; data parallelism then averages the ranks' gradients with equal
weight. A rank whose micro-batch holds 3 label tokens counts as much as one with
300, so N workers at batch B match one worker at batch N x B only when the ranks
hold equal label tokens (nn/criterion/sft_loss.py: sum over label tokens / their
count, per rank). PaddleFormers 1.2 has no switch for PaddleOCR-VL: its
`token_balance_loss` reaches only ERNIE-4.5-MoE-VL and the ERNIE pretrain models,
and divides by a fixed max_seq_len x batch rather than by label tokens;
`loss_subbatch_sequence_length` only splits the computation. The torch bridge
weights by tokens across micro-batches and ranks (bridge/train.py).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from engines.paddleformers import compat
from training import device
from training.distributed import Layout, paddle_launch_command
from training.recipe import absolute_paths, data_dir, dataset_paths
from training.run_folder import last_checkpoint, write_resolved


def paddle_weights_for_resume(ckpt: Path) -> None:
    """The trainer saves checkpoints in HF layout but resumes only from Paddle's
    `model_state.pdparams`; write that file from the checkpoint's own weights."""
    target = ckpt / "model_state.pdparams"
    if target.exists() or not (ckpt / "model.safetensors").exists():
        return
    # In a child process: building a model here would shift paddle's global parameter
    # names, and the optimizer state is keyed by them.
    code = ("import sys, paddle; from engines.paddleformers import compat; compat.apply(); "
            "from paddleformers.transformers import PaddleOCRVLForConditionalGeneration as M; "
            "m = M.from_pretrained(sys.argv[1], convert_from_hf=True, dtype='float32'); "
            "paddle.save(m.state_dict(), sys.argv[2])")
    subprocess.run([sys.executable, "-c", code, str(ckpt), str(target)], check=True,
                   capture_output=True)


def distributed_command(resolved: Path, lay: Layout, log_dir: Path | None = None) -> list[str]:
    """The launcher command for `lay`; each worker re-enters this module so the compat
    patches apply there too (distributed.py says why the script is the interpreter)."""
    return paddle_launch_command(lay, log_dir or resolved.parent / "launch_logs",
                                 "engines.paddleformers.train", str(resolved),
                                 devices=os.environ.get("CUDA_VISIBLE_DEVICES") or None)


def generation_eval(cfg: dict, samples: int, max_new_tokens: int) -> dict | None:
    """GenerationEval's arguments for the recipe's eval_generation_* keys, or None when off."""
    from training.recipe import evaluates

    if not samples or not evaluates(cfg):
        return None
    # Absolute now: the trainer runs from the data's folder (data_dir).
    return {"model_dir": str(Path(cfg["model_name_or_path"]).resolve()),
            "data": str(dataset_paths(cfg.get("eval_dataset_path"))[0].resolve()), "samples": samples,
            "max_new_tokens": max_new_tokens}


def launch(cfg: dict, run_dir: Path, *, resume: bool = False, augment: bool = True,
           generation: dict | None = None, lay: Layout | None = None) -> None:
    """Train. `cfg` holds paddleformers keys only; `augment` toggles the template's
    built-in image augmentation, which PaddleFormers exposes no key for;
    `generation` (see generation_eval) adds a decoded CER to each evaluation;
    `lay` (distributed.layout) says how many workers on how many nodes."""
    lay = lay or Layout()
    cfg = absolute_paths(cfg)
    run_dir = Path(run_dir).resolve()
    if resume:
        ckpt = last_checkpoint(Path(cfg["output_dir"]))
        if ckpt is not None:
            if cfg.get("fine_tuning", "LoRA").lower() == "full" and lay.node_rank == 0:
                paddle_weights_for_resume(ckpt)
            cfg["resume_from_checkpoint"] = str(ckpt)
    gpu = device.has_gpu()
    if not gpu:
        cfg.update(compat.cpu_launch_settings())
    if lay.node_rank == 0:
        resolved, log_dir = write_resolved(cfg, run_dir), run_dir / "launch_logs"
    else:  # node 0 owns the run folder (and may clear it): this node keeps its files apart
        log_dir = Path(tempfile.mkdtemp(prefix=f"ocrsft-node{lay.node_rank}-"))
        resolved = write_resolved(cfg, log_dir)
        print(f"train: node {lay.node_rank} writes its launcher logs to {log_dir}", flush=True)
    if gpu or lay.distributed:
        env = dict(os.environ, OCRSFT_TEMPLATE_AUGMENT="1" if augment else "0",
                   OCRSFT_GENERATION_EVAL=json.dumps(generation),
                   OCRSFT_RUN_DIR=str(run_dir))
        res = subprocess.run(distributed_command(resolved, lay, log_dir), env=env, cwd=data_dir(cfg))
        if res.returncode:
            raise RuntimeError(f"paddle.distributed.launch exited with {res.returncode}; "
                               f"the workers' logs are in {log_dir}/workerlog.*")
        return
    run_in_process(cfg, augment, generation, run_dir)


def run_in_process(cfg: dict, augment: bool, generation: dict | None = None,
                   run_dir: Path | None = None) -> None:
    compat.apply()
    from models import templates

    templates.register()  # paddleocr_vl_v15 (1.5/1.6), before the augmentation switch reads TEMPLATES
    compat.set_template_augmentation(augment)
    from paddleformers.cli.train.tuner import run_tuner

    from engines.paddleformers.hooks import install_trainer_hooks

    install_trainer_hooks(Path(run_dir or cfg["output_dir"]), generation)  # data counts, decoded CER

    here = os.getcwd()
    os.chdir(data_dir(cfg))
    try:
        run_tuner(cfg)
    finally:
        os.chdir(here)


if __name__ == "__main__":  # a worker started by paddle.distributed.launch
    run_in_process(yaml.safe_load(Path(sys.argv[1]).read_text()),
                   os.environ.get("OCRSFT_TEMPLATE_AUGMENT", "1") == "1",
                   json.loads(os.environ.get("OCRSFT_GENERATION_EVAL", "null")),
                   os.environ.get("OCRSFT_RUN_DIR"))
