r"""LaTeX formula answers: the one form the converters write and the formula metric reads.

    >>> formula_answer(r"$$x^2 \label{eq:1}$$")
    '\\[x^2\\]'

An answer is display math `\[...\]` (seed 002). A label already wrapped in one of
WRAPPERS is unwrapped first; `\label{...}` never shows in an image and is dropped.
"""
from __future__ import annotations

import re

from samples.errors import SampleError

_LABEL = re.compile(r"\\label\s*\{[^{}]*\}")
WRAPPERS = (("\\[", "\\]"), ("$$", "$$"), ("\\(", "\\)"), ("$", "$"))


def check_braces(latex: str) -> None:
    """Unescaped { and } must balance and never close before they open."""
    depth, i = 0, 0
    while i < len(latex):
        c = latex[i]
        if c == "\\":
            i += 2  # \{ \} \\ are escapes, not groups
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth < 0:
                raise SampleError(f"unbalanced_braces: '}}' at {i} closes nothing")
        i += 1
    if depth:
        raise SampleError(f"unbalanced_braces: {depth} '{{' left open")


def formula_answer(latex: str) -> str:
    text = _LABEL.sub("", latex).strip()
    for left, right in WRAPPERS:
        if len(text) >= len(left) + len(right) and text.startswith(left) and text.endswith(right):
            text = text[len(left):len(text) - len(right)].strip()
            break
    if not text:
        raise SampleError("empty_answer: no LaTeX")
    check_braces(text)
    return f"\\[{text}\\]"
