"""The one registry of source formats (LLaMA-Factory style): a name -> a converter.

A converter module defines a subclass of `Converter` and decorates it with
`@register("name")`. Adding a format is one module plus one import line in
`FORMAT_MODULES` below.
"""
from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

FORMAT_MODULES = {
    "paddleocr-rec": "converters.paddleocr_rec",
}

_REGISTRY: dict[str, type[Converter]] = {}


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
    """

    name = ""

    def __init__(self, image_root: Path, **options):
        self.image_root = image_root
        self.options = options

    @abstractmethod
    def records(self, path: Path) -> Iterator[Record]:
        """Stream the raw items of one input file."""

    @abstractmethod
    def convert(self, record: Record) -> dict:
        """One raw item -> one ERNIEKit sample, or SampleError."""


def register(name: str):
    def deco(cls: type[Converter]) -> type[Converter]:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def get_converter(name: str) -> type[Converter]:
    if name not in FORMAT_MODULES:
        raise KeyError(f"unknown format {name!r}; known: {', '.join(sorted(FORMAT_MODULES))}")
    importlib.import_module(FORMAT_MODULES[name])
    return _REGISTRY[name]
