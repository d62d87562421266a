"""`ocrsft convert FORMAT INPUT... -o OUT.jsonl`: the driver every format goes through.

For each raw record: convert -> validate (samples/sample.py check_sample: shape,
images under the root, decode, size) -> dedup (image bytes + answer) -> hashed
train/val split -> write.
Anything that fails becomes a row in the rejects file with its source, line and
reason, so `read = written + val + rejected` always holds; the counts are
printed and stored in OUT.stats.json. Outputs are written atomically, and the
output depends only on the inputs and flags: a killed run, rerun, writes the
same bytes.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from multiprocessing import Pool
from pathlib import Path

from tqdm import tqdm

from converters.images_out import export_image
from converters.registry import FORMATS, Record, get_converter
from samples import image_tokens
from samples.errors import SampleError, UserError
from samples.jsonl import AtomicWriter, dumps, write_json
from samples.sample import LocalImage, check_sample, image_size, relocate

EMIT_STYLES = ("erniekit", "messages")


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
    images_out: Path | None = None
    max_side: int | None = None
    emit: str = "erniekit"


@dataclass
class Result:
    """What a worker sends back: small, already serialised."""
    source: str
    line: int
    out_line: str | None = None
    reason: str | None = None
    key: bytes = b""
    answer_chars: int = 0
    tokens: int = 0
    sides: tuple = ()


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

    def add(self, r: Result) -> None:
        self.answer_chars[self.bucket(r.answer_chars)] += 1
        for side in r.sides:
            self.image_sides[self.bucket(side)] += 1
        self.tokens[self.bucket(r.tokens)] += 1
        self.token_sum += r.tokens
        self.token_max = max(self.token_max, r.tokens)

    def as_dict(self, n: int) -> dict:
        def hist(c):
            return {f"<={k}": v for k, v in sorted(c.items())}

        return {"answer_chars": hist(self.answer_chars), "image_max_side_px": hist(self.image_sides),
                "tokens_per_sample": {"mean": round(self.token_sum / n, 2) if n else 0,
                                      "max": self.token_max, "histogram": hist(self.tokens)},
                "token_estimate_note": "converters/image_tokens.sample_tokens for PaddleOCR-VL-0.9B: "
                                       "text ~ bytes/3, images at its default min/max pixels; "
                                       "`ocrsft plan`/`train` recount with your model's own "
                                       "tokenizer and processor"}


class SeenSet:
    """Dedup memory: every key kept whole (a 12-byte digest, split in two uint64 columns)
    in one open-addressing table, ~40 bytes per unique sample instead of ~100 in a
    Python set. Keeping the whole digest means two distinct samples are only ever
    merged if their 96-bit blake2b digests collide."""

    def __init__(self, capacity: int = 1 << 16):
        import numpy as np

        self._np = np
        self.keys = np.zeros((capacity, 2), dtype=np.uint64)
        self.used = np.zeros(capacity, dtype=bool)
        self.n = 0

    def add(self, key: bytes) -> bool:
        """Insert; return False if the very same key was already there."""
        k = (int.from_bytes(key[:8], "little"), int.from_bytes(key[8:16], "little"))
        if (self.n + 1) * 2 > len(self.used):
            self._grow()
        return self._insert(k)

    def _insert(self, k: tuple[int, int]) -> bool:
        mask = len(self.used) - 1
        i = k[0] & mask
        while self.used[i]:
            if int(self.keys[i, 0]) == k[0] and int(self.keys[i, 1]) == k[1]:
                return False
            i = (i + 1) & mask
        self.keys[i] = k
        self.used[i] = True
        self.n += 1
        return True

    def _grow(self) -> None:
        old = self.keys[self.used]
        self.keys = self._np.zeros((len(self.used) * 2, 2), dtype=self._np.uint64)
        self.used = self._np.zeros(len(self.keys), dtype=bool)
        self.n = 0
        for start in range(0, len(old), 1 << 16):  # chunks: no million-int list at once
            for hi, lo in old[start:start + (1 << 16)].tolist():
                self._insert((hi, lo))


@lru_cache(maxsize=4096)
def _file_digest(image: LocalImage) -> bytes:
    h = hashlib.blake2b(digest_size=12)
    with open(image.path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.digest()


def dedup_key(sample: dict, refs: list) -> bytes:
    """Hash of the images' bytes plus every text turn: equal only for true duplicates."""
    h = hashlib.blake2b(digest_size=12)
    for ref in refs:
        h.update(ref.encode() if isinstance(ref, str) else _file_digest(ref))
    for t in sample["text_info"]:
        h.update(t["text"].encode() + b"\0")
    return h.digest()


def in_val(key: bytes, val_ratio: float) -> bool:
    """Deterministic: a sample's side depends only on its content, never on order."""
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64 < val_ratio


def sample_tokens(sample: dict, sizes: list[tuple[int, int]]) -> int:
    return image_tokens.sample_tokens([t["text"] for t in sample["text_info"]], sizes)


def emit(sample: dict, style: str) -> dict:
    if style == "messages":
        from converters.messages import to_messages

        return to_messages(sample)
    return sample


def place_images(conv, opts: Options, sample: dict, refs: list) -> list[tuple[int, int]]:
    """Check, copy/resize if asked, and rewrite local image paths for the output."""
    sizes = []
    for im, ref in zip(sample.get("image_info", []), refs):
        if isinstance(ref, str):
            continue  # an allowed URL stays as it is
        path = ref.path
        size = image_size(ref) if opts.check_images else None
        if opts.images_out:
            out, size = export_image(Path(path), opts.image_root, opts.images_out, opts.max_side,
                                     conv.transform_image)
            path = str(out)
        if size:
            sizes.append(size)
        im["image_url"] = relocate(path, opts.image_root, opts.out_dir, opts.absolute_paths,
                                   resolved=True)
    return sizes


def process(conv, opts: Options, record: Record) -> Result:
    """Convert, validate, place and serialise one record; failures become a reason."""
    res = Result(record.source, record.line)
    try:
        sample = conv.convert(record)
        refs = check_sample(sample, opts.image_root, opts.allow_urls, opts.check_images)
        res.key = dedup_key(sample, refs)
        sizes = place_images(conv, opts, sample, refs)
        res.answer_chars = sum(len(t["text"]) for t in sample["text_info"][1::2])
        res.tokens = sample_tokens(sample, sizes)
        res.sides = tuple(max(s) for s in sizes)
        res.out_line = dumps(emit(sample, opts.emit))
    except SampleError as e:
        res.reason = e.reason
    except UserError:
        raise
    except Exception as e:  # a malformed record must never end the run
        res.reason = f"bad_record: {type(e).__name__}: {e}"
    return res


_worker: tuple | None = None


def _init_worker(fmt: str, opts: Options) -> None:
    global _worker
    _worker = (get_converter(fmt)(opts.image_root, **opts.fmt_options), opts)


def _process_in_worker(record: Record) -> Result:
    return process(_worker[0], _worker[1], record)


def convert(fmt: str, inputs: list[Path], out: Path, *, image_root: Path | None = None,
            val_ratio: float = 0.0, val_out: Path | None = None, rejects: Path | None = None,
            strict: bool = False, allow_urls: bool = False, absolute_paths: bool = False,
            dedup: bool = True, shard: tuple[int, int] = (0, 1), workers: int = 1,
            check_images: bool = True, progress: bool = False, images_out: Path | None = None,
            max_side: int | None = None, emit_style: str = "erniekit", **fmt_options) -> Counts:
    """Convert `inputs` of format `fmt` into `out` (ERNIEKit JSONL); return the counts.

    Also writes OUT.stats.json and the rejects file (default OUT.rejects.jsonl);
    with `val_ratio`, a hashed share goes to `val_out` (default OUT.val.jsonl).
    `fmt_options` are the format's own OPTIONS (see `ocrsft convert --help`).
    """
    try:
        cls = get_converter(fmt)
    except KeyError as e:
        raise UserError("FORMAT", str(e.args[0])) from None
    if emit_style not in EMIT_STYLES:
        raise UserError("--emit", f"{emit_style!r} is not one of {', '.join(EMIT_STYLES)}")
    inputs = [Path(p) for p in inputs]
    for p in inputs:
        if not p.exists():
            raise UserError(str(p), "input not found")
    out = Path(out)
    if val_ratio and val_out is None:
        val_out = out.with_name(out.stem + ".val.jsonl")
    rejects = Path(rejects) if rejects else out.with_name(out.stem + ".rejects.jsonl")
    image_root = Path(image_root) if image_root else (inputs[0] if inputs[0].is_dir()
                                                      else inputs[0].parent)
    conv = cls(image_root.resolve(), **fmt_options)
    if (max_side or conv.copies_images()) and not images_out:
        images_out = out.with_name(out.stem + "_images")
    opts = Options(image_root.resolve(), out.parent.resolve(), allow_urls, absolute_paths,
                   check_images, fmt, fmt_options,
                   Path(images_out).resolve() if images_out else None, max_side, emit_style)
    k, n = shard
    records = (r for i, r in enumerate(itertools.chain.from_iterable(
        conv.records(p) for p in inputs)) if i % n == k)

    counts, stats, seen = Counts(), Stats(), SeenSet()
    pool = Pool(workers, _init_worker, (fmt, opts)) if workers > 1 else None
    results = (pool.imap(_process_in_worker, records, chunksize=64) if pool
               else (process(conv, opts, r) for r in records))
    try:
        with AtomicWriter(out) as fout, AtomicWriter(rejects) as frej, \
                (AtomicWriter(val_out) if val_out else open(os.devnull, "w")) as fval:
            for r in tqdm(results, desc=f"convert {fmt}", unit="rec", disable=not progress):
                counts.read += 1
                if r.out_line is not None and dedup and not seen.add(r.key):
                    r.out_line, r.reason = None, "duplicate: same images and text as an earlier sample"
                if r.out_line is None:
                    if strict:
                        raise UserError(f"{r.source}:{r.line}", r.reason)
                    counts.rejected += 1
                    counts.reasons[r.reason.split(":", 1)[0]] += 1
                    frej.write(dumps({"source": r.source, "line": r.line, "reason": r.reason}) + "\n")
                    continue
                stats.add(r)
                if val_ratio and in_val(r.key, val_ratio):
                    counts.val += 1
                    fval.write(r.out_line + "\n")
                else:
                    counts.written += 1
                    fout.write(r.out_line + "\n")
    finally:
        if pool:
            pool.terminate()
    assert counts.reconciles()
    write_json(stats_path(out),
               {"format": fmt, "inputs": [str(p) for p in inputs], "shard": f"{k}/{n}",
                **{f: getattr(counts, f) for f in ("read", "written", "val", "rejected")},
                "rejected_by_reason": dict(sorted(counts.reasons.items())),
                **stats.as_dict(counts.written + counts.val)})
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


def parse_options(items: list[str]) -> dict:
    opts = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError("-O", f"{item!r} is not KEY=VALUE")
        opts[key.strip().replace("-", "_")] = value
    return opts


def format_help() -> str:
    lines = []
    for name in sorted(FORMATS):
        try:
            cls = get_converter(name)
        except KeyError:  # a format whose module is missing is reported when used
            continue
        for key, (default, help_) in cls.OPTIONS.items():
            lines.append(f"{name}: -O {key}={default}  {help_}")
    return "\n".join(lines)


def add_args(p) -> None:
    import argparse

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = "format options:\n" + format_help()
    p.add_argument("format", help=f"one of: {', '.join(sorted(FORMATS))}")
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
    p.add_argument("--images-out", type=Path, help="copy images (cropped/resized) into this folder")
    p.add_argument("--max-side", type=int, help="shrink images whose longer side exceeds this "
                   "(copies into --images-out, default OUT_images/)")
    p.add_argument("--emit", choices=EMIT_STYLES, default="erniekit",
                   help="output style: ERNIEKit text_info/image_info or messages+images")
    p.add_argument("-O", "--option", action="append", metavar="KEY=VALUE",
                   help="a format option (listed below)")


def main(args) -> int:
    if not 0 <= args.val_ratio < 1:
        raise UserError("--val-ratio", f"{args.val_ratio} is not in [0, 1)")
    if args.workers < 1:
        raise UserError("--workers", f"{args.workers} must be at least 1")
    if args.max_side is not None and args.max_side < 28:
        raise UserError("--max-side", f"{args.max_side} is below one 28-px image token")
    c = convert(args.format, args.inputs, args.out, image_root=args.image_root,
                val_ratio=args.val_ratio, val_out=args.val_out, rejects=args.rejects,
                strict=args.strict, allow_urls=args.allow_urls, absolute_paths=args.absolute_paths,
                dedup=not args.no_dedup, shard=parse_shard(args.shard), workers=args.workers,
                progress=sys.stderr.isatty(), images_out=args.images_out, max_side=args.max_side,
                emit_style=args.emit, **parse_options(args.option))
    if c.reasons:
        print("rejected by reason: " + ", ".join(f"{k} {v}" for k, v in c.reasons.most_common()))
    if c.val:
        print(f"validation split: {c.val}")
    print(f"converted {c.written + c.val}, rejected {c.rejected}")
    if c.read and not (c.written + c.val):
        print(f"ocrsft convert: error: every one of the {c.read} records was rejected "
              f"(see {args.rejects or Path(args.out).with_name(Path(args.out).stem + '.rejects.jsonl')}"
              f"{'; check --image-root' if args.image_root else ''})", file=sys.stderr)
        return 1
    return 0
