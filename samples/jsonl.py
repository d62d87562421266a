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

from samples.errors import SampleError, UserError


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
    """`with AtomicWriter(p) as f: f.write(...)` — p appears only on success.

    The temporary file is `.NAME.<random>.<pid>.part`; a run killed with
    SIGKILL cannot clean up, so the next writer of the same target removes
    parts whose process is gone.
    """

    def __init__(self, path: str | Path, mode: str = "w"):
        self.path = Path(path)
        self.mode = mode
        self._tmp: str | None = None
        self._f = None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale_parts(self.path)
        fd, self._tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=f".{os.getpid()}.part",
                                         dir=self.path.parent)
        self._f = os.fdopen(fd, self.mode, **({} if "b" in self.mode else {"encoding": "utf-8"}))
        return self._f

    def __exit__(self, exc_type, exc, tb):
        self._f.close()
        if exc_type is None:
            # mkstemp creates 0600; the target gets what a plain open() would give it
            os.chmod(self._tmp, 0o666 & ~current_umask())
            os.replace(self._tmp, self.path)
        else:
            os.unlink(self._tmp)
        return False


def current_umask() -> int:
    """The process umask (reading it means setting it; it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_parts(path: Path) -> None:
    """Remove temporary parts of `path` left by writers that no longer run."""
    for part in path.parent.glob(f".{glob_escape(path.name)}.*.part"):
        pid = part.name[:-len(".part")].rsplit(".", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            part.unlink(missing_ok=True)


def glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def iter_json_array(path: str | Path, chunk: int = 1 << 20,
                    max_item: int = 64 << 20) -> Iterator[tuple[int, object]]:
    """Stream the items of a top-level JSON array: (line the item starts on, item).

    A JSON array cannot be resynchronised after a syntax error, so a broken
    file is a UserError naming the line, not a reject.
    """
    path = Path(path)
    dec = json.JSONDecoder()
    with open(path, encoding="utf-8-sig") as f:
        buf, pos, line, eof = "", 0, 1, False

        def more() -> bool:
            nonlocal buf, pos, eof
            if eof:
                return False
            data = f.read(chunk)
            eof = not data
            buf = buf[pos:] + data
            pos = 0
            return bool(data)

        def skip_ws():
            nonlocal pos, line
            while True:
                while pos < len(buf) and buf[pos] in " \t\r\n":
                    line += buf[pos] == "\n"
                    pos += 1
                if pos < len(buf) or not more():
                    return

        def fail(what: str):
            raise UserError(f"{path}:{line}", f"invalid JSON array ({what})")

        skip_ws()
        if pos >= len(buf) or buf[pos] != "[":
            fail("expected '[' at the start")
        pos += 1
        first = True
        while True:
            skip_ws()
            if pos >= len(buf):
                fail("unexpected end of file")
            if buf[pos] == "]":
                return
            if not first:
                if buf[pos] != ",":
                    fail(f"expected ',' or ']', found {buf[pos]!r}")
                pos += 1
                skip_ws()
            first = False
            while True:
                try:
                    obj, end = dec.raw_decode(buf, pos)
                    if end < len(buf) or eof:
                        break
                except json.JSONDecodeError as e:
                    if eof or len(buf) - pos > max_item:
                        fail(e.msg)
                more()
            yield line, obj
            line += buf.count("\n", pos, end)
            pos = end


def iter_json_records(path: str | Path) -> Iterator[tuple[int, object]]:
    """A JSON array file or a JSONL file -> (line, item); JSONL items stay raw strings.

    Raw JSONL lines are parsed by the converter (in a worker), so one bad line
    becomes one reject rather than a stopped run.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(str(path), "file not found")
    with open(path, encoding="utf-8-sig") as f:
        head = f.read(4096).lstrip()
    if head.startswith("["):
        yield from iter_json_array(path)
    else:
        yield from iter_lines(path)


def load_json_item(raw) -> object:
    """A JSONL line or an already-parsed item -> the item; bad JSON is a SampleError."""
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise SampleError(f"bad_json: {e.msg} at column {e.colno}") from None


def write_json(path: str | Path, obj) -> None:
    with AtomicWriter(path) as f:
        json.dump(obj, f, ensure_ascii=False, indent=2)
        f.write("\n")
