"""Training throughput of `ocrsft train`, and its overhead against calling PaddleFormers directly.

    .venv/bin/python bench/train.py              # ~3 minutes on 2 cores: 3 rounds of 120 steps
    .venv/bin/python bench/train.py --rounds 1 --steps 40

Both sides train the tiny PaddleOCR-VL on the same 512 rendered lines, with the
same resolved config (configs/paddleocr_vl/cpu_tiny.yaml), each in a fresh process:

  suite     `ocrsft train` as a user runs it: resolve, plan, data checks, the
            trainer hooks (data counts), training, the TensorBoard read-back and
            loss PNG at the end.
  baseline  the least anyone needs on this machine: compat.apply() and
            PaddleFormers' `run_tuner(resolved.yaml)` (`paddleformers-cli train`
            itself cannot start without a GPU; workaround 3).

Rounds alternate the two. Reported: the medians of wall time per run and of
PaddleFormers' own `train_runtime` (the training loop alone), as suite/baseline
ratios, and real tokens per second (tokens the collator saw, not PaddleFormers'
`interval_tokens_per_second`, which is samples x max_seq_len).
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CONFIG = ROOT / "configs" / "paddleocr_vl" / "cpu_tiny.yaml"

BASELINE = """
import os, sys, yaml
from engines.paddleformers import compat
compat.apply()
compat.set_template_augmentation(False)
from paddleformers.cli.train.tuner import run_tuner
cfg = yaml.safe_load(open(sys.argv[1]))
cfg.update(output_dir=sys.argv[2], logging_dir=sys.argv[2] + "/tensorboard")
os.chdir(sys.argv[3])
run_tuner(cfg)
"""


def make_data(work: Path, n: int) -> Path:
    from converters.run import convert
    from converters.synth_lines import render_lines

    labels = render_lines(work / "lines", n, "0123456789ABCDEFGH", seed=7, progress=False)
    out = work / "lines" / "train.jsonl"
    convert("paddleocr-rec", [labels], out, image_root=work / "lines")
    return out


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        sys.exit(f"bench: {' '.join(cmd[:4])} failed:\n{res.stderr[-3000:]}")
    return time.perf_counter() - start


def train_runtime(run: Path) -> float:
    return json.loads((run / "all_results.json").read_text())["train_runtime"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--samples", type=int, default=512)
    args = ap.parse_args()

    from engines.paddleformers.tiny_model import build_tiny_model

    work = Path(tempfile.mkdtemp(prefix="ocrsft-bench-train-"))
    try:
        model = build_tiny_model(work / "model", preset="test", seed=0)
        data = make_data(work, args.samples)
        suite = {"wall": [], "loop": [], "tps": []}
        base = {"wall": [], "loop": []}
        for r in range(args.rounds):
            run = work / f"suite{r}"
            suite["wall"].append(timed([
                sys.executable, "-m", "ocrsft", "train", str(CONFIG), f"model_name_or_path={model}",
                f"train_dataset_path={data}", f"output_dir={run}", f"max_steps={args.steps}",
                "do_eval=false", "evaluation_strategy=no", "save_strategy=no"]))
            suite["loop"].append(train_runtime(run))
            seen = json.loads((run / "data_seen.json").read_text())
            suite["tps"].append(seen["tokens_per_second"])
            tokens = seen["tokens"] / seen["sequences"] * args.steps * 4  # batch 4, A 1
            brun = work / f"base{r}"
            base["wall"].append(timed([sys.executable, "-c", BASELINE, str(run / "resolved.yaml"),
                                       str(brun), str(data.parent)]))
            base["loop"].append(train_runtime(brun))
            print(f"round {r + 1}: suite {suite['wall'][-1]:.1f} s (loop {suite['loop'][-1]:.2f} s), "
                  f"baseline {base['wall'][-1]:.1f} s (loop {base['loop'][-1]:.2f} s)", flush=True)
        med = {k: statistics.median(v) for k, v in suite.items()}
        bmed = {k: statistics.median(v) for k, v in base.items()}
        print(f"\ntiny PaddleOCR-VL, {args.steps} steps x batch 4, {args.samples} lines, "
              f"{args.rounds} rounds (medians)")
        print(f"  tokens/s (real tokens, suite)  {med['tps']:.0f}   "
              f"baseline {tokens / bmed['loop']:.0f}")
        print(f"  training loop  suite {med['loop']:.2f} s  baseline {bmed['loop']:.2f} s  "
              f"ratio {med['loop'] / bmed['loop']:.3f}")
        print(f"  whole run      suite {med['wall']:.1f} s  baseline {bmed['wall']:.1f} s  "
              f"ratio {med['wall'] / bmed['wall']:.3f}  "
              f"(fixed cost {med['wall'] - bmed['wall']:+.1f} s per run)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
