"""Shared fixtures: the real sample data beside the repo, and temp output dirs.

Fixtures that need a whole subsystem (a tiny model, a trained run) live with
the tests that use them, or in tests/fixtures_*.py modules imported there.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("OCRSFT_SHARED", ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data: real third-party samples with ground truth (never edited)."""
    data = SHARED / "data"
    if not data.is_dir():
        pytest.fail(f"{data} is missing: tests need ../shared beside the repo")
    return data
