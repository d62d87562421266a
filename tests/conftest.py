"""Shared fixtures: the real sample data beside the repo, and every fixture that builds
a whole subsystem (a tiny model, a trained run, tiny bridge models).

Those live in tests/fixtures_*.py and are registered here, once: pytest builds a
session fixture once per place it is defined, so a test module that imported them
itself would build its own copy (the trained run used to be built three times).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fixtures_bridge import rec_data, tiny_bridge  # noqa: F401  (fixtures)
from tests.fixtures_model import digit_lines, icdar_words, tiny_model, trained_run  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("OCRSFT_SHARED", ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data: real third-party samples with ground truth (never edited)."""
    data = SHARED / "data"
    if not data.is_dir():
        pytest.fail(f"{data} is missing: tests need ../shared beside the repo")
    return data


# A test that builds on one of these trains or runs a real model, so it is slow by what it
# uses; other slow tests carry `@pytest.mark.slow` themselves. `make test-fast` runs the rest.
HEAVY_FIXTURES = {"tiny_model", "trained_run", "tiny_bridge"}


SHARED_FIXTURES = {"tiny_model", "digit_lines", "trained_run", "icdar_words", "tiny_bridge", "rec_data"}


def pytest_collection_modifyitems(items):
    for module in {item.module for item in items if getattr(item, "module", None)}:
        twice = SHARED_FIXTURES & set(vars(module))
        if twice:
            raise pytest.UsageError(f"{module.__name__} imports the fixtures {sorted(twice)}; they are "
                                    "registered once in tests/conftest.py (an import builds a second copy)")
    for item in items:
        if HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
