"""`ocrsft validate DATA.jsonl`: check an ERNIEKit JSONL file and its images, line by line.

Problems are reported grouped by reason (the code before the first colon, e.g.
`missing_image`), most frequent first, with a count and the first examples of
each, so two real errors are not buried under a hundred of one kind.
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from samples.errors import SampleError
from samples.jsonl import iter_lines
from samples.sample import check_sample

EXAMPLES_PER_REASON = 3


def validate(path: Path, image_root: Path | None = None, allow_urls: bool = False,
             limit: int = 20) -> tuple[int, list[str]]:
    """Return (samples read, problems as 'file:line: reason'), streaming.

    Relative image paths resolve against the JSONL's folder; `image_root`, when
    given, confines them (samples/sample.py resolve_image)."""
    import json

    base = Path(path).parent
    image_root = Path(image_root) if image_root else None
    n, problems = 0, []
    for line_no, line in iter_lines(path):
        n += 1
        try:
            check_sample(json.loads(line), image_root, allow_urls, base=base)
        except json.JSONDecodeError as e:
            problems.append(f"{path}:{line_no}: bad_json: {e.msg}")
        except SampleError as e:
            problems.append(f"{path}:{line_no}: {e.reason}")
    return n, problems


def reason_code(problem: str) -> str:
    """'f.jsonl:3: missing_image: x.png' -> 'missing_image'."""
    parts = problem.split(": ", 2)
    return parts[1].split(":", 1)[0] if len(parts) > 1 else problem


def grouped(problems: list[str], examples: int = EXAMPLES_PER_REASON) -> list[str]:
    """Report lines: one header per reason (count), then its first `examples` problems."""
    groups: "OrderedDict[str, list[str]]" = OrderedDict()
    for p in problems:
        groups.setdefault(reason_code(p), []).append(p)
    lines = []
    for code, items in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"{code}: {len(items)} sample{'s' if len(items) != 1 else ''}")
        lines += [f"  {p}" for p in items[:examples]]
        if len(items) > examples:
            lines.append(f"  ... and {len(items) - examples} more")
    return lines


def add_args(p) -> None:
    p.add_argument("data", type=Path)
    p.add_argument("--image-root", type=Path,
                   help="images must lie under it (default: no confinement; relative paths "
                        "resolve against the JSONL's folder)")
    p.add_argument("--allow-urls", action="store_true")


def main(args) -> int:
    n, problems = validate(args.data, args.image_root, args.allow_urls)
    for line in grouped(problems):
        print(line)
    print(f"validated {n}, invalid {len(problems)}")
    return 1 if problems else 0
