"""Errors that carry a location, so the CLI prints one clear line and no traceback.

`UserError` is for anything the user can fix (a bad flag, a missing file, a bad
config key). `SampleError` is for one bad sample: converters turn it into a
rejects row instead of stopping the run (unless `--strict`).
"""
from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix. `where` is a file[:line], key or argument."""

    def __init__(self, where: str, reason: str):
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


class SampleError(ValueError):
    """One sample is invalid; `reason` is a short stable code plus detail."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason

    @property
    def code(self) -> str:
        """The part before the first ':' — what the stats count by."""
        return self.reason.split(":", 1)[0].strip()
