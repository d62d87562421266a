"""Image-token arithmetic for PaddleOCR-VL: the one home for it.

The image processor resizes each image so both sides are multiples of
patch (14) x merge (2) = 28 px and the area sits within [min_pixels,
max_pixels]; every 28x28 block becomes one LLM token. A 28x140 line is
1 x 5 blocks = 5 tokens; the planner and converter stats use this.
"""
from __future__ import annotations

import math
from functools import lru_cache

PATCH = 14
MERGE = 2
FACTOR = PATCH * MERGE
# PaddleOCR-VL-0.9B's preprocessor_config.json defaults (the pipeline's too).
MIN_PIXELS = 112896
MAX_PIXELS = 1003520
# The placeholder the chat template writes once per image, expanded to its blocks.
IMAGE_TOKEN = "<|IMAGE_PLACEHOLDER|>"
# What a chat template writes for one image, the placeholder between its markers.
IMAGE_BLOCK = f"<|IMAGE_START|>{IMAGE_TOKEN}<|IMAGE_END|>"


def smart_resize(height: int, width: int, min_pixels: int = MIN_PIXELS,
                 max_pixels: int = MAX_PIXELS, factor: int = FACTOR) -> tuple[int, int]:
    """(height, width) the model sees; same rule as paddleformers' image processor."""
    if height < factor:
        width, height = round(width * factor / height), factor
    if width < factor:
        height, width = round(height * factor / width), factor
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio {max(height, width) / min(height, width):.0f} exceeds 200")
    h, w = round(height / factor) * factor, round(width / factor) * factor
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h, w = math.floor(height / beta / factor) * factor, math.floor(width / beta / factor) * factor
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h, w = math.ceil(height * beta / factor) * factor, math.ceil(width * beta / factor) * factor
    return h, w


@lru_cache(maxsize=4096)
def image_tokens(width: int, height: int, min_pixels: int = MIN_PIXELS,
                 max_pixels: int = MAX_PIXELS) -> int:
    """LLM tokens one image costs, plus its <|IMAGE_START|>/<|IMAGE_END|> markers."""
    h, w = smart_resize(height, width, min_pixels, max_pixels)
    return (h // FACTOR) * (w // FACTOR) + 2


def text_tokens(text: str) -> int:
    """A cheap upper-side estimate: about one token per 3 bytes of UTF-8, at least 1."""
    return max(1, math.ceil(len(text.encode("utf-8")) / 3))


def sample_tokens(texts: list[str], sizes: list[tuple[int, int]], text=text_tokens,
                  min_pixels: int = MIN_PIXELS, max_pixels: int = MAX_PIXELS) -> int:
    """A sample's sequence length as PaddleFormers' paddleocr_vl template builds it:
    <|begin_of_sentence|>, then per turn "User: {q}\\nAssistant: {a}" + EOS, plus each
    image's tokens. The one estimate behind the converter's stats, `ocrsft plan` and
    `ocrsft train`'s check; they differ only in `text` (the model's sentencepiece when
    they know the model, else bytes/3) and the pixel limits (the model's processor, else
    PaddleOCR-VL-0.9B's)."""
    turn = text("User: ") + text("\nAssistant: ") + 1
    return (1 + sum(text(t) for t in texts) + turn * ((len(texts) + 1) // 2)
            + sum(image_tokens(w, h, min_pixels, max_pixels) for w, h in sizes))
