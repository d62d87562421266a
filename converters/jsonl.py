"""Streaming JSONL reading and atomic writing.

Reading never loads a whole file; writing goes to a temporary file beside the
target and is renamed into place only when the writer closes cleanly, so a
killed run leaves either the old file or nothing, never half a file.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

from converters.errors import UserError


def iter_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, line without newline), skipping blank lines."""
    path = Path(path)
    if not path.is_file():
        raise UserError(str(path), "file not found")
    with open(path, encoding="utf-8-sig", newline="") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if line.strip():
                yield n, line


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object); a bad line raises UserError naming it."""
    for n, line in iter_lines(path):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{n}", f"invalid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise UserError(f"{path}:{n}", "expected a JSON object")
        yield n, obj


def dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class AtomicWriter:
    """`with AtomicWriter(p) as f: f.write(...)` — p appears only on success."""

    def __init__(self, path: str | Path, mode: str = "w"):
        self.path = Path(path)
        self.mode = mode
        self._tmp: str | None = None
        self._f = None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".part",
                                         dir=self.path.parent)
        self._f = os.fdopen(fd, self.mode, **({} if "b" in self.mode else {"encoding": "utf-8"}))
        return self._f

    def __exit__(self, exc_type, exc, tb):
        self._f.close()
        if exc_type is None:
            os.replace(self._tmp, self.path)
        else:
            os.unlink(self._tmp)
        return False


def write_json(path: str | Path, obj) -> None:
    with AtomicWriter(path) as f:
        json.dump(obj, f, ensure_ascii=False, indent=2)
        f.write("\n")
