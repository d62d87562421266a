"""`make pretrain-tiny`: build the demo's base checkpoint, seeded, from nothing.

A random tiny PaddleOCR-VL learns to read digit strings (domain A) rendered in
DejaVu Sans. On this project's 2-core machines that takes about half an hour,
which is why the demo starts from its result instead (assets/tiny_digits_base,
committed) and fine-tunes it to a new domain in minutes.

  render 60k lines -> convert -> random tiny model -> train (configs/paddleocr_vl/
  pretrain_tiny_cpu.yaml) -> export -> held-out CER -> copy into assets/
"""
from __future__ import annotations

import shutil
from pathlib import Path

from converters.synth_lines import LineStyle
from ocrsft import steps

# Domain A and B share this layout: 4-8 characters on a 28x140 line (5 image tokens).
STYLE = LineStyle()
DIGITS = "0123456789"
# The tokenizer covers the demo's new characters too, so fine-tuning needs no vocab surgery.
CHARSET = DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ASSET = steps.ROOT / "assets" / "tiny_digits_base"


def add_args(p) -> None:
    p.add_argument("--out", type=Path, default=Path("runs/pretrain-tiny"))
    p.add_argument("--lines", type=int, default=60000)
    p.add_argument("--steps", type=int, help="override max_steps (for a quick check)")
    p.add_argument("--no-install", action="store_true", help="do not copy the result into assets/")


def main(args) -> int:
    from engines.paddleformers.tiny_model import build_tiny_model
    from inference.export import export

    clock = steps.Stopwatch()
    out = args.out
    train = steps.lines_dataset(out / "train", args.lines, DIGITS, seed=1, style=STYLE)
    held = steps.lines_dataset(out / "heldout", 100, DIGITS, seed=2, style=STYLE)
    base = build_tiny_model(out / "random", preset="demo", seed=0, charset=CHARSET)
    cfg, ours = steps.load_recipe("pretrain_tiny_cpu.yaml", max_steps=args.steps,
                                  model_name_or_path=base,
                                  train_dataset_path=train)
    steps.train(cfg, ours, out / "run")
    model = export(out / "run", out / "model", base=base)
    cer = steps.heldout_cer(model, held, out / "heldout_pred.jsonl")
    steps.say(f"pretrain-tiny: held-out CER on domain A (digits) = {cer:.3f} "
              f"after {cfg['max_steps']} steps, {clock.total / 60:.1f} min")
    if not args.no_install:
        shutil.rmtree(ASSET, ignore_errors=True)
        shutil.copytree(model, ASSET)
        (ASSET / "PROVENANCE.txt").write_text(
            f"Produced by `make pretrain-tiny` (ocrsft/pretrain_tiny.py) with "
            f"configs/paddleocr_vl/pretrain_tiny_cpu.yaml, {args.lines} rendered digit lines "
            f"(seed 1), model seed 0, {cfg['max_steps']} steps.\n"
            f"Held-out CER on 100 digit lines (seed 2): {cer:.3f}\n")
        steps.say(f"installed the base checkpoint in {ASSET}")
    return 0
