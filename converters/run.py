"""`ocrsft convert FORMAT INPUT... -o OUT.jsonl`: the driver every format goes through.

For each raw record: convert -> validate (shape, image under the root, decodes,
size) -> dedup (image bytes + answer) -> hashed train/val split -> write.
Anything that fails becomes a row in the rejects file with its source, line and
reason, so `read = written + val + rejected` always holds; the counts are
printed and stored in OUT.stats.json. Outputs are written atomically.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from multiprocessing import Pool
from pathlib import Path

from tqdm import tqdm

from converters import image_tokens
from converters.errors import SampleError, UserError
from converters.jsonl import AtomicWriter, dumps, write_json
from converters.registry import FORMAT_MODULES, Record, get_converter
from converters.sample import check_sample, is_url, relocate


@dataclass
class Counts:
    read: int = 0
    written: int = 0
    val: int = 0
    rejected: int = 0
    reasons: Counter = field(default_factory=Counter)

    def reconciles(self) -> bool:
        return self.read == self.written + self.val + self.rejected


@dataclass
class Options:
    image_root: Path
    out_dir: Path
    allow_urls: bool = False
    absolute_paths: bool = False
    check_images: bool = True
    fmt: str = ""
    fmt_options: dict = field(default_factory=dict)


class Stats:
    """Distributions for OUT.stats.json; fixed memory whatever the data size."""

    def __init__(self):
        self.answer_chars = Counter()   # bucketed by powers of two
        self.image_sides = Counter()
        self.tokens = Counter()
        self.token_sum = 0
        self.token_max = 0

    @staticmethod
    def bucket(n: int) -> int:
        return 1 << max(0, n - 1).bit_length()

    def add(self, sample: dict, sizes: list[tuple[int, int]]) -> None:
        answer = sum(len(t["text"]) for t in sample["text_info"][1::2])
        tokens = sum(image_tokens.text_tokens(t["text"]) for t in sample["text_info"])
        tokens += sum(image_tokens.image_tokens(w, h) for w, h in sizes)
        self.answer_chars[self.bucket(answer)] += 1
        for w, h in sizes:
            self.image_sides[self.bucket(max(w, h))] += 1
        self.tokens[self.bucket(tokens)] += 1
        self.token_sum += tokens
        self.token_max = max(self.token_max, tokens)

    def as_dict(self, n: int) -> dict:
        def hist(c):
            return {f"<={k}": v for k, v in sorted(c.items())}

        return {"answer_chars": hist(self.answer_chars), "image_max_side_px": hist(self.image_sides),
                "tokens_per_sample": {"mean": round(self.token_sum / n, 2) if n else 0,
                                      "max": self.token_max, "histogram": hist(self.tokens)},
                "token_estimate_note": "text ~ bytes/3; images at PaddleOCR-VL's default "
                                       "min/max pixels (converters/image_tokens.py)"}


def process(conv, opts: Options, record: Record) -> tuple[Record, dict | None, str | None, list]:
    """Convert and validate one record -> (record, sample, reject reason, image sizes)."""
    try:
        sample = conv.convert(record)
        sizes = check_sample(sample, opts.image_root, opts.allow_urls, opts.check_images)
        for im in sample.get("image_info", []):
            im["image_url"] = relocate(im["image_url"], opts.image_root, opts.out_dir,
                                       opts.absolute_paths)
        return record, sample, None, sizes
    except SampleError as e:
        return record, None, e.reason, []
    except Exception as e:  # a malformed record must never end the run
        return record, None, f"bad_record: {type(e).__name__}: {e}", []


def dedup_key(sample: dict, image_root: Path, out_dir: Path) -> bytes:
    h = hashlib.blake2b(digest_size=12)
    for im in sample.get("image_info", []):
        ref = im["image_url"]
        if is_url(ref):
            h.update(ref.encode())
        else:
            path = Path(ref) if Path(ref).is_absolute() else out_dir / ref
            h.update(hashlib.blake2b(path.read_bytes(), digest_size=12).digest())
    for t in sample["text_info"]:
        h.update(t["text"].encode() + b"\0")
    return h.digest()


def in_val(key: bytes, val_ratio: float) -> bool:
    """Deterministic: a sample's side depends only on its content, never on order."""
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64 < val_ratio


_worker: tuple | None = None


def _init_worker(fmt: str, opts: Options) -> None:
    global _worker
    _worker = (get_converter(fmt)(opts.image_root, **opts.fmt_options), opts)


def _process_in_worker(record: Record):
    return process(_worker[0], _worker[1], record)


def convert(fmt: str, inputs: list[Path], out: Path, *, image_root: Path | None = None,
            val_ratio: float = 0.0, val_out: Path | None = None, rejects: Path | None = None,
            strict: bool = False, allow_urls: bool = False, absolute_paths: bool = False,
            dedup: bool = True, shard: tuple[int, int] = (0, 1), workers: int = 1,
            check_images: bool = True, progress: bool = False, **fmt_options) -> Counts:
    try:
        cls = get_converter(fmt)
    except KeyError as e:
        raise UserError("FORMAT", str(e.args[0])) from None
    inputs = [Path(p) for p in inputs]
    for p in inputs:
        if not p.exists():
            raise UserError(str(p), "input not found")
    out = Path(out)
    if val_ratio and val_out is None:
        val_out = out.with_name(out.stem + ".val.jsonl")
    rejects = Path(rejects) if rejects else out.with_name(out.stem + ".rejects.jsonl")
    image_root = Path(image_root) if image_root else inputs[0].parent
    opts = Options(image_root.resolve(), out.parent.resolve(), allow_urls, absolute_paths,
                   check_images, fmt, fmt_options)
    conv = cls(opts.image_root, **fmt_options)
    k, n = shard
    records = (r for i, r in enumerate(itertools.chain.from_iterable(
        conv.records(p) for p in inputs)) if i % n == k)

    counts, stats, seen = Counts(), Stats(), set()
    pool = Pool(workers, _init_worker, (fmt, opts)) if workers > 1 else None
    results = (pool.imap(_process_in_worker, records, chunksize=64) if pool
               else (process(conv, opts, r) for r in records))
    try:
        with AtomicWriter(out) as fout, AtomicWriter(rejects) as frej, \
                (AtomicWriter(val_out) if val_out else open(os.devnull, "w")) as fval:
            for record, sample, reason, sizes in tqdm(results, desc=f"convert {fmt}",
                                                      unit="rec", disable=not progress):
                counts.read += 1
                key = dedup_key(sample, opts.image_root, opts.out_dir) if sample else b""
                if sample is not None and dedup:
                    if key in seen:
                        sample, reason = None, "duplicate: same images and text as an earlier sample"
                    seen.add(key)
                if sample is None:
                    if strict:
                        raise UserError(f"{record.source}:{record.line}", reason)
                    counts.rejected += 1
                    counts.reasons[reason.split(":", 1)[0]] += 1
                    frej.write(dumps({"source": record.source, "line": record.line,
                                      "reason": reason}) + "\n")
                    continue
                stats.add(sample, sizes)
                if val_ratio and in_val(key, val_ratio):
                    counts.val += 1
                    fval.write(dumps(sample) + "\n")
                else:
                    counts.written += 1
                    fout.write(dumps(sample) + "\n")
    finally:
        if pool:
            pool.terminate()
    assert counts.reconciles()
    write_json(stats_path(out),
               {"format": fmt, "inputs": [str(p) for p in inputs], "shard": f"{k}/{n}",
                **{f: getattr(counts, f) for f in ("read", "written", "val", "rejected")},
                "rejected_by_reason": dict(counts.reasons), **stats.as_dict(counts.written + counts.val)})
    return counts


def stats_path(out: Path) -> Path:
    """train.jsonl -> train.stats.json (the planner reads it)."""
    return Path(out).with_suffix(".stats.json")


def parse_shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(x) for x in text.split("/"))
        assert 0 <= k < n
        return k, n
    except (ValueError, AssertionError):
        raise UserError("--shard", f"{text!r} is not K/N with 0 <= K < N") from None


def add_args(p) -> None:
    p.add_argument("format", help=f"one of: {', '.join(sorted(FORMAT_MODULES))}")
    p.add_argument("inputs", nargs="+", type=Path)
    p.add_argument("-o", "--out", type=Path, required=True)
    p.add_argument("--image-root", type=Path, help="images are resolved under this folder "
                   "(default: the first input's folder); paths outside it are rejected")
    p.add_argument("--val-ratio", type=float, default=0.0)
    p.add_argument("--val-out", type=Path)
    p.add_argument("--rejects", type=Path, help="default: OUT.rejects.jsonl")
    p.add_argument("--strict", action="store_true", help="stop at the first invalid sample")
    p.add_argument("--allow-urls", action="store_true", help="keep http(s) image URLs")
    p.add_argument("--absolute-paths", action="store_true", help="write absolute image paths")
    p.add_argument("--no-dedup", action="store_true")
    p.add_argument("--shard", default="0/1", help="K/N: convert every N-th record from the K-th")
    p.add_argument("--workers", type=int, default=1)


def main(args) -> int:
    if not 0 <= args.val_ratio < 1:
        raise UserError("--val-ratio", f"{args.val_ratio} is not in [0, 1)")
    c = convert(args.format, args.inputs, args.out, image_root=args.image_root,
                val_ratio=args.val_ratio, val_out=args.val_out, rejects=args.rejects,
                strict=args.strict, allow_urls=args.allow_urls, absolute_paths=args.absolute_paths,
                dedup=not args.no_dedup, shard=parse_shard(args.shard), workers=args.workers,
                progress=sys.stderr.isatty())
    if c.reasons:
        print("rejected by reason: " + ", ".join(f"{k} {v}" for k, v in c.reasons.most_common()))
    if c.val:
        print(f"validation split: {c.val}")
    print(f"converted {c.written + c.val}, rejected {c.rejected}")
    return 0
