"""The steps `ocrsft demo` and `ocrsft pretrain-tiny` share, each a call into the real pipeline."""
from __future__ import annotations

import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class Stopwatch:
    def __init__(self):
        self.t0 = time.time()
        self.marks: dict[str, float] = {}
        self._last = self.t0

    def mark(self, name: str) -> float:
        now = time.time()
        self.marks[name] = now - self._last
        self._last = now
        return self.marks[name]

    @property
    def total(self) -> float:
        return time.time() - self.t0


def say(msg: str) -> None:
    print(f"[ocrsft] {msg}", flush=True)


def lines_dataset(root: Path, n: int, alphabet: str, seed: int, style=None) -> Path:
    """Render n lines, then convert their PaddleOCR labels like any user's dataset."""
    from converters.run import convert
    from converters.synth_lines import LineStyle, render_lines

    labels = render_lines(root, n, alphabet, seed, style or LineStyle())
    out = root / "data.jsonl"
    counts = convert("paddleocr-rec", [labels], out, image_root=root,
                     rejects=root / "rejects.jsonl")
    say(f"converted {counts.written}, rejected {counts.rejected} -> {out}")
    return out


def load_recipe(name: str, max_steps: int | None = None, **paths) -> tuple[dict, dict]:
    """A recipe from configs/paddleocr_vl, resolved and checked like `ocrsft train` does,
    with paths filled in -> (engine keys, ocrsft keys). `max_steps` shortens a run for a
    quick check; its warmup then falls back to the planner's 1%."""
    from training.recipe import resolve

    overrides = [f"{k}={v}" for k, v in paths.items()]
    if max_steps:
        overrides.append(f"max_steps={max_steps}")
    recipe = resolve(ROOT / "configs" / "paddleocr_vl" / name, overrides)
    cfg = recipe.cfg
    if max_steps:
        cfg["logging_steps"] = min(cfg.get("logging_steps", max_steps), max_steps)
        if cfg.get("warmup_steps", 0) >= max_steps:
            cfg.pop("warmup_steps")
    return cfg, recipe.ours


def train(cfg: dict, ours: dict, run_dir: Path) -> None:
    from engines.paddleformers.train import launch

    cfg.setdefault("output_dir", str(run_dir))
    cfg.setdefault("logging_dir", str(run_dir / "tensorboard"))
    launch(cfg, run_dir, augment=ours.get("ocr_augmentation", True))


def heldout_cer(model_dir: Path, data: Path, out: Path, max_new_tokens: int = 16) -> float:
    """Predict the held-out set through the `paddleocr doc_parser` pipeline and score CER."""
    from evaluation.evaluate import aggregate, score_rows, write_report
    from inference.predict import predict_file

    out.unlink(missing_ok=True)
    predict_file(model_dir, data, out, via="doc-parser", max_new_tokens=max_new_tokens,
                 progress=False)
    rows = score_rows(out, "ocr")
    metrics = aggregate(rows)
    write_report(rows, metrics, out.with_name(out.stem + "_eval"), f"Held-out: {model_dir}")
    return metrics["cer"]
