"""`ocrsft export RUN -o DIR [--base BASE]`: a run folder -> a folder that serves.

One command for every engine: engines/__init__.py tells which engine wrote RUN and
calls its export. A PaddleFormers or ERNIEKit run becomes a folder paddleocr /
paddlex load, as the base's PaddleOCR-VL version (engines/paddleformers/servable.py,
which lists the five fixes a raw output folder needs); a PyTorch-bridge run is
merged and saved by the bridge (engines/bridge/merge.py) and loads in transformers.
"""
from __future__ import annotations

from pathlib import Path

import engines
from models import model_folder


def export(run_dir: str | Path, out: str | Path, base: str | Path | None = None,
           verify: bool = True, model_version: str | None = None, device: str = "auto") -> Path:
    return engines.export(Path(run_dir), Path(out), Path(base) if base else None, verify=verify,
                          model_version=model_version, device=device)


def add_args(p) -> None:
    p.add_argument("run", type=Path, help="a training run's output folder")
    p.add_argument("-o", "--out", type=Path, required=True, help="folder to write")
    p.add_argument("--base", type=Path, help="the base model folder (default: from the run's config)")
    p.add_argument("--no-verify", action="store_true", help="skip loading the result with paddlex")
    p.add_argument("--model-version", choices=sorted(model_folder.VERSIONS),
                   help="the PaddleOCR-VL version to serve as (default: the recipe's model_version, "
                        "else read from the base folder)")
    p.add_argument("--device", default="auto", help="where the check loads it: auto, cpu or gpu:N")


def main(args) -> int:
    out = export(args.run, args.out, args.base, verify=not args.no_verify,
                 model_version=args.model_version, device=args.device)
    if engines.engine_of_model(out) == "torch":
        print(f"export: wrote {out} (loads in transformers; `ocrsft infer {out}` generates)")
    else:
        version, _ = model_folder.detect_version(out)
        print(f"export: wrote {out} (loads in paddlex as {version.paddlex_model_name}; "
              f"paddleocr doc_parser --pipeline_version {version.pipeline_version})")
    return 0
