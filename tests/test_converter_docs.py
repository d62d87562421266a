"""Every converter's docstring example is a doctest on real data, so the documented
input -> output cannot go stale. `SHARED` is ../shared/data."""
from __future__ import annotations

import doctest
import importlib

import pytest

from converters.registry import FORMATS


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_docstring_example_is_the_real_output(fmt, shared_data):
    module = importlib.import_module(FORMATS[fmt].split(":")[0])
    result = doctest.testmod(module, extraglobs={"SHARED": shared_data}, report=True,
                             optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.attempted >= 2, f"{module.__name__}'s docstring has no example to run"
    assert result.failed == 0


@pytest.mark.parametrize("module", ["samples.sample", "formats.latex", "formats.otsl", "formats.boxes"])
def test_shared_format_examples_run(module):
    """The label formats converters write and metrics read show their rules as doctests too."""
    result = doctest.testmod(importlib.import_module(module), report=True,
                             optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.attempted >= 1, f"{module}'s docstring has no example to run"
    assert result.failed == 0
