"""OCR metrics: CER and NED on rapidfuzz's edit distance, with named normalisations.

    cer("Genaxis Theatre", "Genaxis Théâtre")  -> 0.1333  (2 edits / 15 reference characters)
    ned("Genaxis Theatre", "Genaxis Théâtre")  -> 0.1333  (2 edits / the longer length, 15)
    cer("ab", "abc")                           -> 0.3333
    ned("abcabc", "abc")                       -> 0.5     (cer would be 1.0)

- `cer(pred, ref)`: character error rate, Levenshtein(pred, ref) / len(ref). 0 is
  perfect; above 1 is possible (a model that rambles). An empty reference gives
  0 for an empty prediction and 1 otherwise.
- `ned(pred, ref)`: normalised edit distance, Levenshtein / max(len(pred), len(ref)),
  in [0, 1]. PaddleOCR's RecMetric reports `norm_edit_dis = 1 - mean(ned)` (higher
  is better) and `acc` = exact-match rate; `aggregate` reports both under those names.
- `corpus_cer(pairs)`: total edits / total reference characters (long lines weigh more).
- `anls(pred, ref)`: DocVQA's ANLS for one string pair, 1 - NED when NED < 0.5, else 0;
  both sides casefolded and whitespace-collapsed (`anls("Total 9.0", "TOTAL 9.00")` -> 0.9);
  `lower_only=True` lowercases and nothing more, as DocVQA's ANLS (pix2struct). KIE fields use it.

Normalisation (`Norm`, applied to both sides before any metric; all off by default):
- `spaces="collapse"`: runs of whitespace become one space, ends stripped;
- `spaces="remove"`: every space is dropped: PaddleOCR's `ignore_space=True`,
  the default of its recognition metric, so `Norm.paddleocr()` matches it;
- `ignore_case=True`: casefold;
- `alnum_only=True`: keep only ASCII digits and letters, lowercased: PaddleOCR's `is_filter`.
"""
from __future__ import annotations

import re
import string
from dataclasses import asdict, dataclass

from rapidfuzz.distance import Levenshtein

MAIN, LOWER_IS_BETTER = "cer", True  # the per-sample score eval ranks and compare diffs by

_ALNUM = frozenset(string.digits + string.ascii_letters)
_SPACE_RUNS = re.compile(r"\s+")


@dataclass(frozen=True)
class Norm:
    spaces: str = "keep"        # keep | collapse | remove
    ignore_case: bool = False
    alnum_only: bool = False

    def __post_init__(self):
        if self.spaces not in ("keep", "collapse", "remove"):
            raise ValueError(f"spaces must be keep, collapse or remove, not {self.spaces!r}")

    @classmethod
    def paddleocr(cls, is_filter: bool = False) -> "Norm":
        """PaddleOCR RecMetric's defaults (ignore_space=True), optionally with its is_filter."""
        return cls(spaces="remove", alnum_only=is_filter)

    def __call__(self, text: str) -> str:
        if self.spaces == "collapse":
            text = _SPACE_RUNS.sub(" ", text).strip()
        elif self.spaces == "remove":
            text = text.replace(" ", "")
        if self.alnum_only:
            text = "".join(ch for ch in text if ch in _ALNUM).lower()
        if self.ignore_case:
            text = text.casefold()
        return text

    def describe(self) -> dict:
        return asdict(self)


def cer(pred: str, ref: str) -> float:
    if not ref:
        return 0.0 if not pred else 1.0
    return Levenshtein.distance(pred, ref) / len(ref)


def ned(pred: str, ref: str) -> float:
    return Levenshtein.normalized_distance(pred, ref)


def anls(pred: str, ref: str, threshold: float = 0.5, lower_only: bool = False) -> float:
    """`lower_only`: DocVQA's convention (pix2struct's ANLS on lowercased text), no other folding."""
    if lower_only:
        p, r = pred.lower(), ref.lower()
    else:
        p, r = (_SPACE_RUNS.sub(" ", s).strip().casefold() for s in (pred, ref))
    d = Levenshtein.normalized_distance(p, r)
    return 1.0 - d if d < threshold else 0.0


def corpus_cer(pairs) -> float:
    edits = chars = 0
    for pred, ref in pairs:
        edits += Levenshtein.distance(pred, ref)
        chars += len(ref)
    return edits / chars if chars else 0.0


def score(pred: str, ref: str, norm: Norm = Norm()) -> dict:
    p, r = norm(pred), norm(ref)
    return {"cer": cer(p, r), "ned": ned(p, r), "exact": float(p == r),
            "edits": Levenshtein.distance(p, r), "ref_chars": len(r)}


def aggregate(rows: list[dict]) -> dict:
    n = len(rows)
    chars = sum(r["ref_chars"] for r in rows)
    return {"cer": sum(r["cer"] for r in rows) / n,
            "corpus_cer": sum(r["edits"] for r in rows) / chars if chars else 0.0,
            "ned": sum(r["ned"] for r in rows) / n,
            "norm_edit_dis": 1 - sum(r["ned"] for r in rows) / n,
            "exact_match": sum(r["exact"] for r in rows) / n}
