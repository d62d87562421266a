"""samples/image_tokens.py agrees with paddleformers' own PaddleOCR-VL image processor."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samples import image_tokens

pf = pytest.importorskip("paddleformers.transformers.paddleocr_vl.image_processor")


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 6000), st.integers(1, 6000))
def test_smart_resize_matches_paddleformers(h, w):
    try:
        theirs = pf.smart_resize(h, w, factor=28, min_pixels=image_tokens.MIN_PIXELS,
                                 max_pixels=image_tokens.MAX_PIXELS)
    except ValueError:
        with pytest.raises(ValueError):
            image_tokens.smart_resize(h, w)
        return
    assert image_tokens.smart_resize(h, w) == theirs


@pytest.mark.parametrize("h,w", [(28, 140), (32, 100), (720, 1280), (2339, 1654), (5, 600)])
def test_token_count_matches_the_processor_grid(h, w):
    proc = pf.PaddleOCRVLImageProcessor(min_pixels=image_tokens.MIN_PIXELS,
                                        max_pixels=image_tokens.MAX_PIXELS)
    (_rh, _rw), (gh, gw) = proc.get_smarted_resize(h, w)
    # the grid is in 14-px patches; merge 2x2 -> one LLM token, plus start/end markers
    assert image_tokens.image_tokens(w, h) == gh * gw // 4 + 2


def test_text_tokens_grow_with_bytes():
    assert image_tokens.text_tokens("") == 1
    assert image_tokens.text_tokens("abcdef") == 2
    assert image_tokens.text_tokens("报销人") == 3  # 9 UTF-8 bytes
