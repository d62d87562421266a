"""What a bridge run leaves on disk, and reading it back.

    <run>/ocrsft_run.json        marker: {"engine": "torch", "family", "base_model", ...}
    <run>/checkpoint-<step>/     trainable.safetensors, optimizer.pt, scheduler.pt, state.json
    <run>/final/                 the LoRA adapter (+ whole-trained projector) or the full model
    <run>/tensorboard/, loss.png, data.json (counts and rejects)

Tower checksums (sha1 of every base weight, per tower) are taken before and
after training so a run proves what stayed frozen. LoRA deltas live apart from
the base weights, so under LoRA only whole-trained modules change them.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from engines.bridge.families import Family, tower_of
from samples.jsonl import write_json
from training.run_folder import checkpoints


def base_name(name: str) -> str | None:
    """The base model's parameter name behind a PEFT-wrapped one; None for adapter-only."""
    if "lora_" in name or ".original_module." in name:
        return None
    name = name.removeprefix("base_model.model.")
    return name.replace(".base_layer.", ".").replace(".modules_to_save.default.", ".")


def tower_checksums(model, fam: Family) -> dict[str, str]:
    """`model`: a module, or a full state dict (what a sharded model gathers)."""
    import torch

    digests = {t: hashlib.sha1() for t in ("vision", "projector", "language")}
    named = model.items() if isinstance(model, dict) else model.named_parameters()
    for name, p in sorted(named):
        name = base_name(name)
        if name is None:
            continue
        data = p.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
        digests[tower_of(name, fam)].update(name.encode() + data.tobytes())
    return {t: d.hexdigest() for t, d in digests.items()}


def save(run_dir: Path, step: int, model, optimizer, scheduler, state: dict, keep: int,
         rng_states: list | None = None) -> Path:
    """`rng_states`: every rank's torch RNG state (default: this process's), so each
    rank resumes its own dropout stream."""
    import torch
    from safetensors.torch import save_file

    ckpt = run_dir / f"checkpoint-{step}"
    tmp = run_dir / f".checkpoint-{step}.part"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({n: p.detach().cpu().contiguous() for n, p in model.named_parameters()
               if p.requires_grad}, str(tmp / "trainable.safetensors"))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    torch.save(rng_states or [torch.get_rng_state()], tmp / "rng.pt")
    write_json(tmp / "state.json", state)
    shutil.rmtree(ckpt, ignore_errors=True)
    tmp.rename(ckpt)  # a killed save leaves a .part folder, never a half checkpoint
    for old in checkpoints(run_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(old)
    return ckpt


def load(ckpt: Path, model, optimizer, scheduler, rank: int = 0) -> dict:
    import torch
    from safetensors.torch import load_file

    weights = load_file(str(ckpt / "trainable.safetensors"))
    params = dict(model.named_parameters())
    missing = [n for n, p in params.items() if p.requires_grad and n not in weights]
    if missing:
        raise RuntimeError(f"{ckpt} does not match this model/recipe: no {missing[:3]}")
    with torch.no_grad():
        for n, w in weights.items():
            params[n].copy_(w)
    optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=True))
    scheduler.load_state_dict(torch.load(ckpt / "scheduler.pt", weights_only=True))
    rng = torch.load(ckpt / "rng.pt", weights_only=True)
    rng = [rng] if isinstance(rng, torch.Tensor) else rng  # one process's state, as saved before
    torch.set_rng_state(rng[rank % len(rng)])
    return json.loads((ckpt / "state.json").read_text())
