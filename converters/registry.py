"""The one registry of source formats (LLaMA-Factory style): a name -> a converter.

A converter module defines a subclass of `Converter`; `FORMATS` below names it. Adding a
format is one module plus one line there: the only place a format is registered.
"""
from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from samples.errors import SampleError, UserError
from samples.jsonl import iter_json_records, iter_lines

FORMATS = {  # name -> "module:Class"; modules are imported only when their format is used
    "paddleocr-rec": "converters.paddleocr_rec:PaddleOCRRec",
    "paddleocr-det": "converters.paddleocr_det:PaddleOCRDet",
    "llava": "converters.llava:LLaVA",
    "messages": "converters.messages:Messages",
    "erniekit": "converters.erniekit:ERNIEKit",
    "sroie": "converters.sroie:SROIE",
    "xfund": "converters.xfund:XFUND",
    "latex": "converters.latex:Latex",
    "im2latex": "converters.im2latex:Im2Latex",
    "chart": "converters.chart:Chart",
    "pubtabnet": "converters.pubtabnet:PubTabNet",
    "html-table": "converters.html_table:HTMLTable",
}


@dataclass
class Record:
    """One raw input item, with where it came from (for rejects and errors)."""
    source: str
    line: int
    raw: object


class Converter(ABC):
    """Turn raw records of one format into ERNIEKit samples.

    `records` streams raw items from the inputs; `convert` maps one item to a
    sample dict or raises SampleError with a reason. Neither keeps state
    across records, so conversion can fan out over workers and shards.

    `OPTIONS` declares the format's own settings as name -> (default, help);
    the CLI passes them as `-O name=value` and the value takes the default's type.
    """

    name = ""
    OPTIONS: dict[str, tuple[object, str]] = {}

    def __init__(self, image_root: Path, **options):
        self.image_root = Path(image_root)
        unknown = set(options) - set(self.OPTIONS)
        if unknown:
            known = ", ".join(sorted(self.OPTIONS)) or "none"
            raise UserError("-O", f"format {self.name!r} has no option "
                                  f"{', '.join(sorted(unknown))} (known: {known})")
        self.options = {k: coerce(k, options.get(k, d), d) for k, (d, _) in self.OPTIONS.items()}

    def records(self, path: Path) -> Iterator[Record]:
        """Stream the raw items of one input file: by default its non-blank lines."""
        for n, line in iter_lines(path):
            yield Record(str(path), n, line)

    @abstractmethod
    def convert(self, record: Record) -> dict:
        """One raw item -> one ERNIEKit sample, or SampleError."""

    def transform_image(self, image):
        """Pixel changes a format needs (cropping); applied when images are copied out."""
        return image

    def copies_images(self) -> bool:
        """True when transform_image changes pixels, so images must be copied out."""
        return False


def json_records(path: Path) -> Iterator[Record]:
    """Items of a JSON array or JSONL file (JSONL lines stay raw, parsed per record)."""
    for n, item in iter_json_records(path):
        yield Record(str(path), n, item)


def split_image_line(raw: str, what: str) -> tuple[str, str]:
    """`image_path<TAB>rest` -> (path, rest); only the first tab splits."""
    if "\t" not in raw:
        raise SampleError(f"bad_line: expected 'image_path<TAB>{what}'")
    path, rest = raw.split("\t", 1)
    if not path.strip():
        raise SampleError("bad_line: empty image path")
    return path.strip(), rest


def coerce(key: str, value, default):
    """CLI strings take the type of the option's default."""
    if not isinstance(value, str) or isinstance(default, str) or default is None:
        return value
    if isinstance(default, bool):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise UserError(f"-O {key}", f"{value!r} is not a boolean")
    try:
        return type(default)(value)
    except ValueError:
        raise UserError(f"-O {key}", f"{value!r} is not a {type(default).__name__}") from None


def get_converter(name: str) -> type[Converter]:
    if name not in FORMATS:
        raise KeyError(f"unknown format {name!r}; known: {', '.join(sorted(FORMATS))}")
    module, cls = FORMATS[name].split(":")
    try:
        converter = getattr(importlib.import_module(module), cls)
    except ModuleNotFoundError as e:
        if not (e.name or "").startswith("converters."):
            raise
        raise KeyError(f"format {name!r} needs {e.name}, which is missing from this install") from None
    converter.name = name
    return converter


get = get_converter


def example(name: str, source: str | Path, n: int = 1, image_root: str | Path | None = None,
            **options) -> None:
    """Print, one JSON line each, the samples format `name` makes of `source`: the first `n`
    items of a file or folder (a Path), or one raw item (a str). Each converter's docstring
    runs it as its doctest, so the documented output is the real output. Images are not
    opened: that is the convert driver's step (converters/run.py)."""
    import json

    root = image_root or (source.parent if isinstance(source, Path) else ".")
    conv = get_converter(name)(Path(root), **options)
    records = (conv.records(source) if isinstance(source, Path)
               else [Record(str(Path(root) / "<example>"), 1, source)])
    for i, record in enumerate(records):
        if i == n:
            break
        print(json.dumps(conv.convert(record), ensure_ascii=False))
