"""Converter throughput against a plain JSON round trip, and memory as the input grows.

    .venv/bin/python bench/convert.py            # ~1-2 minutes: 20k lines, memory at 10k and 100k
    .venv/bin/python bench/convert.py --huge     # memory up to 1M lines (several minutes)

Throughput: each format converts N generated lines over the real ICDAR crops in
../shared/data/paddleocr_rec (so image decoding is cached, as for a text-only
format); the baseline is `json.dumps(json.loads(line))` of the same lines,
written to a file, in the same run. Memory: the peak RSS of a child process
converting 10k vs 100k (vs 1M) lines; only dedup grows (16 bytes per sample).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("OCRSFT_SHARED", ROOT.parent / "shared")) / "data"


def make_inputs(d: Path, n: int) -> dict[str, Path]:
    """The same n samples as ERNIEKit JSONL, messages JSONL and PaddleOCR rec labels."""
    shutil.copytree(SHARED / "paddleocr_rec/test", d / "test", dirs_exist_ok=True)
    names = sorted(p.name for p in (d / "test").iterdir())
    paths = {f: d / f"in.{f}" for f in ("erniekit", "messages", "paddleocr-rec")}
    with open(paths["erniekit"], "w") as ek, open(paths["messages"], "w") as ms, \
            open(paths["paddleocr-rec"], "w") as rec:
        for i in range(n):
            img, text = f"test/{names[i % len(names)]}", f"sample {i} Genaxis Théâtre \\ {i * 7919 % 10007}"
            ek.write(json.dumps({"image_info": [{"matched_text_index": 0, "image_url": img}],
                                 "text_info": [{"text": "OCR:", "tag": "mask"},
                                               {"text": text, "tag": "no_mask"}]}, ensure_ascii=False) + "\n")
            ms.write(json.dumps({"messages": [{"role": "user", "content": "<image>OCR:"},
                                              {"role": "assistant", "content": text}],
                                 "images": [img]}, ensure_ascii=False) + "\n")
            rec.write(f"{img}\t{text}\n")
    return paths


def json_round_trip(src: Path, dst: Path) -> float:
    t = time.perf_counter()
    with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as out:
        for line in f:
            if line.startswith("{"):
                out.write(json.dumps(json.loads(line), ensure_ascii=False) + "\n")
            else:  # rec labels are not JSON: the least a converter does is split and dump
                out.write(json.dumps(line.rstrip("\n").split("\t", 1), ensure_ascii=False) + "\n")
    return time.perf_counter() - t


def throughput(n: int, workers: int) -> None:
    from converters.run import convert

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        inputs = make_inputs(d, n)
        print(f"throughput, {n} lines, workers={workers} (samples/s; ratio = converter / JSON round trip)")
        for fmt, path in inputs.items():
            base = json_round_trip(path, d / "base.jsonl")
            t = time.perf_counter()
            c = convert(fmt, [path], d / f"out.{fmt}.jsonl", image_root=d, workers=workers)
            conv = time.perf_counter() - t
            assert c.written == n, c
            print(f"  {fmt:14s} convert {n / conv:9.0f}/s   json round trip {n / base:9.0f}/s   "
                  f"ratio {base / conv:.2f}")


def child_peak(n: int) -> None:
    """Run in a child: convert n lines, print peak RSS in MiB."""
    from converters.run import convert

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        path = make_inputs(d, n)["erniekit"]
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        convert("erniekit", [path], d / "out.jsonl", image_root=d)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"n": n, "peak_mib": round(peak / 1024, 1),
                          "before_mib": round(before / 1024, 1)}))


def memory(sizes: list[int]) -> None:
    print("memory (peak RSS of a child converting erniekit JSONL; dedup on)")
    for n in sizes:
        out = subprocess.run([sys.executable, __file__, "--child", str(n)], capture_output=True,
                             text=True, check=True).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        print(f"  {n:>9,d} lines: peak {r['peak_mib']:7.1f} MiB (after imports and input "
              f"generation {r['before_mib']:.1f} MiB)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=20000, help="lines for the throughput run")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--huge", action="store_true", help="also measure memory at 1M lines")
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        child_peak(a.child)
        return
    throughput(a.n, a.workers)
    memory([10_000, 100_000] + ([1_000_000] if a.huge else []))


if __name__ == "__main__":
    main()
