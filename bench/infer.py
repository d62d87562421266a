"""Inference throughput: `ocrsft infer --batch-size N` against one sample per call, in one run.

    .venv/bin/python bench/infer.py                      # ~1 minute on 2 cores
    .venv/bin/python bench/infer.py --batch-size 16 --samples 64 --device gpu:0

A tiny random LLaVA (engines/bridge/tiny.py, `llava-clip`) greedily decodes the
real ICDAR word crops in ../shared/data/paddleocr_rec, cycled to --samples requests,
through the bridge predictor that `ocrsft infer` uses: once one request per
`generate` call, once --batch-size requests per call (left-padded), alternating
which goes first over --rounds. Both runs must produce the same predictions (the
benchmark stops otherwise). Reported: median samples/s of each and the ratio
batched / unbatched. Native PaddleOCR-VL prediction is not measured: paddlex 3.7.2
predicts a local PaddleOCR-VL one sample per call (see inference/predict.py).

Measured here (2 cores, shared, no GPU), 2026-12-04, the default run (24 s in all):
  unbatched 22.68 samples/s, batch 8 150.87 samples/s; ratio batched / unbatched 6.65
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
REC = ROOT.parent / "shared" / "data" / "paddleocr_rec"


def requests(n: int) -> list[tuple[str, str]]:
    lines = (REC / "rec_gt_test.txt").read_text(encoding="utf-8").splitlines()
    return [("OCR:", str(REC / lines[i % len(lines)].split("\t")[0])) for i in range(n)]


def timed(predictor, reqs, batch: int) -> tuple[float, list[str]]:
    start, out = time.perf_counter(), []
    for i in range(0, len(reqs), batch):
        chunk = reqs[i:i + batch]
        out += predictor.many(chunk) if batch > 1 else [predictor(*chunk[0])]
    return len(reqs) / (time.perf_counter() - start), out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (CPU)")
    args = ap.parse_args()

    import torch

    from engines.bridge import tiny
    from engines.bridge.generate import Predictor

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model = tiny.build("llava-clip", Path(tmp) / "model")
        predictor = Predictor(model, args.max_new_tokens, args.device)
        reqs = requests(args.samples)
        timed(predictor, reqs[:args.batch_size], args.batch_size)  # warm-up
        speeds: dict[str, list[float]] = {"unbatched": [], "batched": []}
        for r in range(args.rounds):
            order = [("unbatched", 1), ("batched", args.batch_size)]
            outputs = {}
            for name, batch in order if r % 2 == 0 else order[::-1]:
                speed, outputs[name] = timed(predictor, reqs, batch)
                speeds[name].append(speed)
            if outputs["batched"] != outputs["unbatched"]:
                print("bench: batched predictions differ from unbatched ones", file=sys.stderr)
                return 1
    med = {k: statistics.median(v) for k, v in speeds.items()}
    print(f"infer  unbatched {med['unbatched']:.2f} samples/s   batch {args.batch_size} "
          f"{med['batched']:.2f} samples/s   ({args.samples} samples, {args.rounds} rounds, "
          f"{predictor.device})")
    print(f"ratio batched / unbatched: samples/s {med['batched'] / med['unbatched']:.2f}")
    print(json.dumps({"bench": "infer", "device": str(predictor.device), "batch_size": args.batch_size,
                      "samples_per_second": med, "ratio": med["batched"] / med["unbatched"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
