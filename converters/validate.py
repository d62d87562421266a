"""`ocrsft validate DATA.jsonl`: check an ERNIEKit JSONL file and its images, line by line."""
from __future__ import annotations

from pathlib import Path

from converters.errors import SampleError
from converters.jsonl import iter_lines
from converters.sample import check_sample


def validate(path: Path, image_root: Path | None = None, allow_urls: bool = False,
             limit: int = 20) -> tuple[int, list[str]]:
    """Return (samples read, problems as 'file:line: reason'), streaming."""
    import json

    base = Path(path).parent  # relative image paths are relative to the JSONL file
    image_root = Path(image_root) if image_root else base
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


def add_args(p) -> None:
    p.add_argument("data", type=Path)
    p.add_argument("--image-root", type=Path,
                   help="images must lie under it (default: the JSONL's folder)")
    p.add_argument("--allow-urls", action="store_true")


def main(args) -> int:
    n, problems = validate(args.data, args.image_root, args.allow_urls)
    for p in problems[:50]:
        print(p)
    if len(problems) > 50:
        print(f"... and {len(problems) - 50} more")
    print(f"validated {n}, invalid {len(problems)}")
    return 1 if problems else 0
