"""OCR metrics: CER and NED, on rapidfuzz's edit distance.

- `cer(pred, ref)`: Levenshtein(pred, ref) / len(ref); 0 is perfect and values
  above 1 are possible (a model that rambles). An empty reference gives 0 for an
  empty prediction and 1 otherwise.
- `ned(pred, ref)`: PaddleOCR's normalised edit distance, Levenshtein /
  max(len(pred), len(ref)), in [0, 1]; PaddleOCR reports `norm_edit_dis = 1 - mean(ned)`.
- `normalize`: the options both apply before comparing — collapse whitespace,
  ignore case — off unless asked for.
"""
from __future__ import annotations

import re

from rapidfuzz.distance import Levenshtein


def normalize(text: str, *, collapse_spaces: bool = False, ignore_case: bool = False) -> str:
    if collapse_spaces:
        text = re.sub(r"\s+", " ", text).strip()
    if ignore_case:
        text = text.casefold()
    return text


def cer(pred: str, ref: str) -> float:
    if not ref:
        return 0.0 if not pred else 1.0
    return Levenshtein.distance(pred, ref) / len(ref)


def ned(pred: str, ref: str) -> float:
    if not pred and not ref:
        return 0.0
    return Levenshtein.distance(pred, ref) / max(len(pred), len(ref))


def corpus_cer(pairs) -> float:
    """Total edits over total reference characters: long lines weigh more."""
    edits = chars = 0
    for pred, ref in pairs:
        edits += Levenshtein.distance(pred, ref)
        chars += len(ref)
    return edits / chars if chars else 0.0
