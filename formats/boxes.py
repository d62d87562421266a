"""Boxes written as text: the one home for both answer styles and their parsers.

    >>> quad = normalise([[790, 302], [903, 304], [902, 335], [790, 335]], 1280, 720)
    >>> format_items([("JOINT", quad)], "spotting")      # PaddleOCR-VL-1.5
    'JOINT<|LOC_617|><|LOC_419|><|LOC_705|><|LOC_422|><|LOC_705|><|LOC_465|><|LOC_617|><|LOC_465|>'
    >>> format_items([("JOINT", quad)], "internvl")      # InternVL grounding
    '<ref>JOINT</ref><box>[[617, 419, 705, 465]]</box>'
    >>> parse_internvl(_)
    [('JOINT', (617, 419, 705, 465))]

Coordinates are on a 0-1000 scale of the image's width and height, rounded
and clamped, so they do not depend on the resolution the model sees.

How PaddleOCR-VL-1.5 writes spotting (ms-swift #7975 asks "relative or absolute
coordinates?"): each line is the text then 8 `<|LOC_n|>` tokens, the four corners
x1 y1 ... x4 y4 of a quadrilateral (clockwise from top-left) on that 0-1000 scale
of the block. Sources: paddlex 3.7.2 `post_process_for_spotting`
(paddlex/inference/pipelines/paddleocr_vl/uilts.py), which takes each run of 8 LOC
tokens and the text before it and maps `n / 1000 * w` (x) and `n / 1000 * h` (y)
back to pixels; and PaddleFormers' 1.5 guide
(examples/best_practices/PaddleOCR-VL-1.5/region_ocr.md, its laion_spotting
example: `Be<|LOC_551|><|LOC_109|><|LOC_618|><|LOC_109|><|LOC_618|><|LOC_256|><|LOC_551|><|LOC_256|>`),
lines joined by "\n". tests/test_converters_det.py runs paddlex's own parser on this
module's output.
Items are joined by newlines; `parse_*` read them back (for evaluation).
"""
from __future__ import annotations

import re

SCALE = 1000
STYLES = ("spotting", "internvl")


def normalise(points, width: int, height: int) -> list[tuple[int, int]]:
    """Pixel points -> 0-1000 integer points; raises ValueError on a malformed polygon."""
    if not isinstance(points, list) or len(points) < 4:
        raise ValueError("points must be a list of at least 4 [x, y] pairs")
    out = []
    for p in points:
        if not (isinstance(p, (list, tuple)) and len(p) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p)):
            raise ValueError(f"bad point {p!r}")
        x, y = p
        if x != x or y != y:  # NaN
            raise ValueError(f"bad point {p!r}")
        out.append((min(SCALE, max(0, round(x / width * SCALE))),
                    min(SCALE, max(0, round(y / height * SCALE)))))
    return out


def spotting_item(text: str, quad: list[tuple[int, int]]) -> str:
    """Four corners as 8 LOC tokens after the text, as paddlex's spotting parser reads them."""
    if len(quad) != 4:
        xs, ys = [p[0] for p in quad], [p[1] for p in quad]
        quad = [(min(xs), min(ys)), (max(xs), min(ys)), (max(xs), max(ys)), (min(xs), max(ys))]
    return text + "".join(f"<|LOC_{x}|><|LOC_{y}|>" for x, y in quad)


def internvl_item(text: str, quad: list[tuple[int, int]]) -> str:
    xs, ys = [p[0] for p in quad], [p[1] for p in quad]
    return f"<ref>{text}</ref><box>[[{min(xs)}, {min(ys)}, {max(xs)}, {max(ys)}]]</box>"


def format_items(items: list[tuple[str, list[tuple[int, int]]]], style: str) -> str:
    one = spotting_item if style == "spotting" else internvl_item
    return "\n".join(one(text, quad) for text, quad in items)


_LOC = re.compile(r"<\|LOC_(\d+)\|>")
_REF_BOX = re.compile(r"<ref>(.*?)</ref><box>\[\[(\d+), (\d+), (\d+), (\d+)\]\]</box>", re.S)


def parse_spotting(answer: str) -> list[tuple[str, list[tuple[int, int]]]]:
    """Text followed by 8 LOC tokens, repeated -> [(text, 4 corners)]."""
    items, last, locs = [], 0, list(_LOC.finditer(answer))
    for i in range(0, len(locs) - 7, 8):
        group = locs[i:i + 8]
        vals = [int(m.group(1)) for m in group]
        items.append((answer[last:group[0].start()].strip(),
                      [(vals[j], vals[j + 1]) for j in range(0, 8, 2)]))
        last = group[-1].end()
    return items


def parse_internvl(answer: str) -> list[tuple[str, tuple[int, int, int, int]]]:
    return [(m.group(1), tuple(int(m.group(i)) for i in range(2, 6))) for m in _REF_BOX.finditer(answer)]
