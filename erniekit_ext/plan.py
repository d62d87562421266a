"""`ocrsft plan CONFIG`: the step arithmetic seed 002 leaves to the user.

    max_steps = ceil(D x E / (G x B x A))     warmup = ceil(1% of max_steps)

D samples, E epochs, G GPUs, B per-GPU batch (packing_size when packing), A
gradient-accumulation steps. Seed 002's worked example: D=29605, E=2, G=1, B=8,
A=8 gives 926. Recipes are written for one GPU; on G GPUs either keep G x B x A
fixed (`--scale keep-batch`: divide A, then B, by G) or keep B and A and scale
the learning rate by G (`--scale scale-lr`), as seed 002 describes.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from converters.errors import UserError
from converters.jsonl import iter_lines

RECIPE_GPUS = 1


def load_config(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(str(path), "config file not found")
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise UserError(where, f"invalid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(cfg, dict):
        raise UserError(str(path), "expected a mapping of keys to values")
    return cfg


def count_samples(dataset: str | Path) -> tuple[int, str]:
    """D: from the converter's stats file when present, else by streaming the JSONL."""
    dataset = Path(dataset)
    stats = dataset.with_suffix(".stats.json")
    if stats.is_file():
        return json.loads(stats.read_text())["written"], stats.name
    if not dataset.is_file():
        raise UserError("train_dataset_path", f"{dataset} not found")
    return sum(1 for _ in iter_lines(dataset)), f"{dataset.name} (counted)"


@dataclass
class Plan:
    D: int
    E: float
    G: int
    B: int
    A: int
    max_steps: int
    warmup_steps: int
    learning_rate: float
    notes: list[str] = field(default_factory=list)

    def table(self) -> str:
        rows = [("D  samples", self.D), ("E  epochs", round(self.E, 3)), ("G  GPUs", self.G),
                ("B  batch per GPU", self.B), ("A  grad accumulation", self.A),
                ("max_steps = ceil(DxE/(GxBxA))", self.max_steps),
                ("warmup_steps", self.warmup_steps), ("learning_rate", self.learning_rate)]
        width = max(len(r[0]) for r in rows)
        lines = ["plan:"] + [f"  {k.ljust(width)}  {v}" for k, v in rows]
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])


def positive(cfg: dict, key: str, default) -> float:
    value = cfg.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise UserError(key, f"must be a positive number, got {value!r}")
    return value


def plan_for(cfg: dict, gpus: int | None = None, scale: str = "keep-batch",
             dataset: str | Path | None = None) -> Plan:
    """Compute the plan and write max_steps/warmup_steps (and any rescaling) into cfg."""
    dataset = dataset or cfg.get("train_dataset_path")
    if not dataset:
        raise UserError("train_dataset_path", "is not set")
    D, source = count_samples(str(dataset).split(",")[0])
    G = int(gpus or RECIPE_GPUS)
    packing = bool(cfg.get("packing"))
    b_key = "packing_size" if packing and "packing_size" in cfg else "per_device_train_batch_size"
    B = int(positive(cfg, b_key, 1))
    A = int(positive(cfg, "gradient_accumulation_steps", 1))
    lr = positive(cfg, "learning_rate", 1e-5)
    notes = [f"D from {source}"]
    if G != RECIPE_GPUS:
        n = G / RECIPE_GPUS
        if scale == "keep-batch":
            while n > 1 and A % 2 == 0:
                A, n = A // 2, n / 2
            while n > 1 and B % 2 == 0:
                B, n = B // 2, n / 2
            notes.append(f"kept G x B x A near {RECIPE_GPUS * int(positive(cfg, b_key, 1)) * int(positive(cfg, 'gradient_accumulation_steps', 1))} for {G} GPUs")
        elif scale == "scale-lr":
            lr = lr * n
            notes.append(f"learning rate scaled by {n:g} for {G} GPUs")
        else:
            raise UserError("--scale", f"{scale!r} is not keep-batch or scale-lr")
    explicit = cfg.get("max_steps", -1)
    if isinstance(explicit, int) and explicit > 0:
        max_steps = explicit
        E = max_steps * G * B * A / D if D else 0.0
        notes.append("max_steps set in the config; E is what it implies")
    else:
        E = positive(cfg, "num_train_epochs", 1)
        max_steps = math.ceil(D * E / (G * B * A))
    if packing:
        notes.append("with packing, B counts packed sequences (packing_size)")
    warmup = cfg.get("warmup_steps")
    if not isinstance(warmup, int) or warmup <= 0:
        warmup = math.ceil(0.01 * max_steps)
    cfg.update({"max_steps": max_steps, "warmup_steps": warmup, b_key: B,
                "gradient_accumulation_steps": A, "learning_rate": lr})
    return Plan(D, E, G, B, A, max_steps, warmup, lr, notes)


def add_args(p) -> None:
    p.add_argument("config", type=Path)
    p.add_argument("--gpus", type=int, help=f"GPUs to plan for (recipes assume {RECIPE_GPUS})")
    p.add_argument("--dataset", type=Path, help="override train_dataset_path")
    p.add_argument("--scale", choices=("keep-batch", "scale-lr"), default="keep-batch")
    p.add_argument("--write", type=Path, help="write the resolved YAML here")


def main(args) -> int:
    cfg = load_config(args.config)
    plan = plan_for(cfg, args.gpus, args.scale, args.dataset)
    print(plan.table())
    if args.write:
        args.write.parent.mkdir(parents=True, exist_ok=True)
        args.write.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
        print(f"plan: wrote {args.write}")
    return 0
