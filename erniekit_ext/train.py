"""`ocrsft train CONFIG [--resume] [--overwrite] [key=value ...]`: plan, check, launch.

Read top to bottom: load the recipe and overrides, split ocrsft's own keys from
the engine's, print the plan, run the checks a user would otherwise discover an
hour into a GPU job, then hand the resolved config to the engine named by
`engine:` (paddleformers by default, erniekit, or torch for the bridge).
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import yaml

from converters.errors import UserError
from converters.jsonl import iter_lines
from erniekit_ext import model_folder
from erniekit_ext.plan import load_config, plan_for

ENGINES = ("paddleformers", "erniekit", "torch")
OCRSFT_KEYS = ("engine", "ocr_augmentation", "gpus", "scale")


def parse_overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise UserError(item, "overrides are key=value")
        key, value = item.split("=", 1)
        parsed = yaml.safe_load(value)
        if isinstance(parsed, str):
            try:  # YAML 1.1 reads "5e-3" as a string; users mean a number
                parsed = float(parsed)
            except ValueError:
                pass
        out[key] = parsed
    return out


def split_keys(cfg: dict) -> tuple[dict, dict]:
    ours = {k: cfg.pop(k) for k in OCRSFT_KEYS if k in cfg}
    engine = ours.get("engine", "paddleformers")
    if engine not in ENGINES:
        raise UserError("engine", f"{engine!r} is not one of {', '.join(ENGINES)}")
    return cfg, ours


def check_dataset(cfg: dict) -> None:
    """The data is readable, and how many samples max_seq_len would cut."""
    from converters.image_tokens import image_tokens, text_tokens

    path = Path(str(cfg["train_dataset_path"]).split(",")[0])
    limit = int(cfg.get("max_seq_len", 4096))
    pre = {}
    model = Path(str(cfg.get("model_name_or_path", "")))
    if (model / "preprocessor_config.json").is_file():
        pre = json.loads((model / "preprocessor_config.json").read_text())
    n = over = longest = image_sum = 0
    from PIL import Image

    for line_no, line in iter_lines(path):
        try:
            sample = json.loads(line)
            texts = sample["text_info"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise UserError(f"{path}:{line_no}", "not an ERNIEKit sample (run `ocrsft validate`)") from None
        tokens = sum(text_tokens(t.get("text", "")) for t in texts) + 8
        for im in sample.get("image_info", []):
            ref = Path(im.get("image_url", ""))
            ref = ref if ref.is_absolute() else path.parent / ref
            try:
                with Image.open(ref) as img:
                    w, h = img.size
            except OSError:
                raise UserError(f"{path}:{line_no}", f"image {ref} cannot be read") from None
            cost = image_tokens(w, h, pre.get("min_pixels", 112896), pre.get("max_pixels", 1003520))
            tokens += cost
            image_sum += cost
        n += 1
        longest = max(longest, tokens)
        over += tokens > limit
        if n >= 2000:  # a sample of the head is enough for a warning
            break
    if n == 0:
        raise UserError(str(path), "holds no samples")
    print(f"check: {n} samples read, ~{image_sum / n:.0f} image tokens per sample, "
          f"longest ~{longest} tokens (max_seq_len {limit})")
    if over:
        print(f"check: WARNING {over} of the first {n} samples exceed max_seq_len and would be truncated")


def check_output(cfg: dict, resume: bool, overwrite: bool) -> Path:
    out = Path(cfg.get("output_dir") or "")
    if not str(out) or str(out) == ".":
        raise UserError("output_dir", "is not set")
    if out.exists() and any(out.iterdir()) and not (resume or overwrite):
        raise UserError(str(out), "exists and is not empty; pass --resume to continue it "
                                  "or --overwrite to start over")
    return out


def run(config: Path, overrides: list[str] = (), resume: bool = False, overwrite: bool = False,
        gpus: int | None = None) -> Path:
    cfg = load_config(config)
    cfg.update(parse_overrides(list(overrides)))
    cfg, ours = split_keys(cfg)
    engine = ours.get("engine", "paddleformers")
    if engine == "torch":
        from erniekit_ext.bridge.train import run as bridge_run

        out = check_output(cfg, resume, overwrite)
        bridge_run(cfg, out, resume=resume)
        return out
    for key in ("model_name_or_path", "train_dataset_path", "output_dir"):
        if not cfg.get(key):
            raise UserError(key, f"is not set in {config}")
    plan = plan_for(cfg, gpus or ours.get("gpus"), ours.get("scale", "keep-batch"))
    print(plan.table(), flush=True)
    model_folder.check_model_folder(cfg["model_name_or_path"])
    check_dataset(cfg)
    out = check_output(cfg, resume, overwrite)
    cfg.setdefault("logging_dir", str(Path(cfg["output_dir"]) / "tensorboard"))
    cfg.setdefault("report_to", "tensorboard")
    if engine == "erniekit":
        from erniekit_ext.engines.erniekit import launch as erniekit_launch

        erniekit_launch(cfg, out, resume=resume)
    else:
        from erniekit_ext.engines.paddleformers import launch

        launch(cfg, out, resume=resume, augment=ours.get("ocr_augmentation", True))
    from erniekit_ext.monitor import plot_loss

    png = plot_loss(cfg["logging_dir"], out / "loss.png")
    print(f"train: done -> {out}\ntrain: TensorBoard: tensorboard --logdir {cfg['logging_dir']}"
          + (f"\ntrain: loss curve {png}" if png else ""))
    return out


def erniekit_available() -> bool:
    return all(importlib.util.find_spec(m) for m in ("erniekit", "ernie", "data_processor"))


def add_args(p) -> None:
    p.add_argument("config", type=Path)
    p.add_argument("overrides", nargs="*", help="key=value, applied on top of the YAML")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="reuse a non-empty output_dir")
    p.add_argument("--gpus", type=int, help="plan for this many GPUs")


def main(args) -> int:
    run(args.config, args.overrides, args.resume, args.overwrite, args.gpus)
    return 0
