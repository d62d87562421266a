"""`make demo`: fine-tune a tiny PaddleOCR-VL to read new characters, on CPU, offline.

The base (assets/tiny_digits_base, from `make pretrain-tiny`) reads digit
strings. The demo teaches it domain B, strings of capital letters it has never
seen, which is what users do: take a reader and fine-tune it to their script.

  render domain-B lines -> convert (paddleocr-rec) -> plan -> held-out CER of the
  base via `paddleocr doc_parser` -> train (configs/paddleocr_vl/demo_cpu.yaml)
  -> export -> parity (trained vs served token ids) -> held-out CER again
  -> loss curve + TensorBoard
"""
from __future__ import annotations

from pathlib import Path

from ocrsft import steps
from ocrsft.pretrain_tiny import ASSET, STYLE

LETTERS = "ACEHKMPRTX"


def add_args(p) -> None:
    p.add_argument("--out", type=Path, default=Path("runs/demo"))
    p.add_argument("--base", type=Path, help="the reader to fine-tune (default: assets/"
                   "tiny_digits_base if present, else a random tiny model built here)")
    p.add_argument("--lines", type=int, default=16000, help="domain-B training lines")
    p.add_argument("--heldout", type=int, default=100)
    p.add_argument("--steps", type=int, help="override max_steps (for a quick check)")


def main(args) -> int:
    from engines.paddleformers.tiny_model import build_tiny_model
    from inference.export import export
    from inference.parity import check as parity
    from models.model_folder import check_model_folder
    from ocrsft.pretrain_tiny import CHARSET
    from training.monitor import plot_loss
    from training.plan import plan_for

    clock = steps.Stopwatch()
    out = args.out
    if args.base is None and not (ASSET / "model.safetensors").is_file():
        steps.say(f"no base checkpoint in {ASSET}: starting from a random tiny model, so this run "
                  "shows the pipeline but cannot read yet (`make pretrain-tiny` builds the base)")
        args.base = build_tiny_model(out / "random_base", preset="demo", seed=0, charset=CHARSET)
    base = check_model_folder(args.base or ASSET, for_serving=True)
    train = steps.lines_dataset(out / "train", args.lines, LETTERS, seed=3, style=STYLE)
    held = steps.lines_dataset(out / "heldout", args.heldout, LETTERS, seed=4, style=STYLE)
    clock.mark("data")

    cfg, ours = steps.load_recipe("demo_cpu.yaml", max_steps=args.steps,
                                  model_name_or_path=base,
                                  train_dataset_path=train)
    print(plan_for(cfg).table(), flush=True)

    before = steps.heldout_cer(base, held, out / "pred_before.jsonl")
    steps.say(f"held-out CER before fine-tuning: {before:.3f}")
    clock.mark("before")

    run = out / "run"
    steps.train(cfg, ours, run)
    clock.mark("train")
    model = export(run, out / "model", base=base)
    same = parity(model, held, samples=8)
    steps.say(f"parity: {same['compared']} samples, "
              + ("identical token ids trained and served" if not same["differ"] else
                 f"{same['differ']} DIFFER; first {same['first']}"))
    after = steps.heldout_cer(model, held, out / "pred_after.jsonl")
    clock.mark("after")

    png = plot_loss(run / "tensorboard", out / "loss.png", title="demo: fine-tuning to letters")
    from evaluation.compare import compare, write_report

    report = write_report(compare(out / "pred_before.jsonl", out / "pred_after.jsonl"),
                          out / "compare", out / "pred_before.jsonl", out / "pred_after.jsonl")
    steps.say("=" * 60)
    steps.say(f"held-out CER ({args.heldout} lines of {LETTERS!r}): "
              f"{before:.3f} before -> {after:.3f} after")
    steps.say(f"wall time {clock.total / 60:.1f} min (train {clock.marks['train'] / 60:.1f} min)")
    steps.say(f"TensorBoard: tensorboard --logdir {run / 'tensorboard'}")
    steps.say(f"loss curve:  {png}")
    steps.say(f"model for paddleocr doc_parser: {model}")
    steps.say(f"base vs fine-tuned report: {report}")
    return 0
