r"""Formula metrics: normalised exact match, token edit distance and corpus BLEU over LaTeX tokens.

    score("$$x^{2} + y$$", "\\[x^2+y\\]")
        tokens x ^ { 2 } + y  vs  x ^ 2 + y  -> exact 0.0, token_edits 2, token_ned 2/7 = 0.2857
    score("\\[\\frac { a } { b }\\]", "\\[\\frac{a}{b}\\]")  -> exact 1.0, token_ned 0.0
    aggregate([score("a+b=c", "a+b=c"), score("x=1+y", "x=2+y")])
        -> {"exact_match": 0.5, "token_ned": 0.1, "token_error_rate": 0.1, "bleu": 64.09}
           (1- to 4-gram matches 9/10, 6/8, 3/6, 2/4; BLEU = 100 x their geometric mean)

Both sides lose the display-math delimiters the converters add (converters/latex.py:
`\[ \]`, `$$`, `\( \)`, `$`) and are split into LaTeX tokens: a control word
(`\frac`), a control symbol (`\{`, `\,`, `\\`) or one non-space character. So
whitespace between tokens never matters, while `\alpha x` and `\alphax` stay apart.
- `exact`: the token lists are equal;
- `token_ned`: Levenshtein over the token lists / the longer list (0 is perfect, the main score);
- `token_error_rate` (aggregate): total token edits / total reference tokens;
- `bleu` (aggregate): sacrebleu's corpus BLEU on the space-joined tokens
  (`tokenize="none"`), on its 0-100 scale as im2latex papers report it; corpus
  BLEU needs 4-grams, so a corpus of formulas under 4 tokens scores 0.
- with `--normalize omnidocbench`, also `edit_dist`: OmniDocBench's per-formula
  character edit distance over the longer length, on its normalised LaTeX
  (evaluation/metrics/omnidocbench.py), and `edit_dist_total` (aggregate): total
  edits / total longer lengths, the figure OmniDocBench reports for a whole set.
"""
from __future__ import annotations

import re

from rapidfuzz.distance import Levenshtein
from sacrebleu.metrics import BLEU

from evaluation.metrics.omnidocbench import formula as normalized_formula
from formats.latex import WRAPPERS  # the delimiters the converters write and unwrap

MAIN, LOWER_IS_BETTER = "token_ned", True

_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|\S", re.S)


def unwrap(latex: str) -> str:
    text = latex.strip()
    for left, right in WRAPPERS:
        if len(text) >= len(left) + len(right) and text.startswith(left) and text.endswith(right):
            return text[len(left):len(text) - len(right)].strip()
    return text


def tokens(latex: str) -> list[str]:
    return _TOKEN.findall(unwrap(latex))


def score(pred: str, ref: str, omnidocbench: bool = False) -> dict:
    p, r = tokens(pred), tokens(ref)
    edits = Levenshtein.distance(p, r)
    out = {"exact": float(p == r), "token_ned": edits / max(len(p), len(r)) if p or r else 0.0,
           "token_edits": edits, "ref_tokens": len(r),
           "pred_norm": " ".join(p), "ref_norm": " ".join(r)}
    if omnidocbench:  # OmniDocBench's Edit_dist: characters of its normalised formulas
        po, ro = normalized_formula(pred), normalized_formula(ref)
        out |= {"edit_dist": Levenshtein.normalized_distance(po, ro),
                "edit_num": Levenshtein.distance(po, ro), "upper_len": max(len(po), len(ro))}
    return out


def aggregate(rows: list[dict]) -> dict:
    n = len(rows)
    ref_tokens = sum(r["ref_tokens"] for r in rows)
    bleu = BLEU(tokenize="none").corpus_score([r["pred_norm"] for r in rows],
                                              [[r["ref_norm"] for r in rows]])
    return {"exact_match": sum(r["exact"] for r in rows) / n,
            "token_ned": sum(r["token_ned"] for r in rows) / n,
            "token_error_rate": sum(r["token_edits"] for r in rows) / ref_tokens if ref_tokens else 0.0,
            "bleu": bleu.score} | _omnidocbench_aggregate(rows)


def _omnidocbench_aggregate(rows: list[dict]) -> dict:
    if not all("edit_dist" in r for r in rows):
        return {}
    upper = sum(r["upper_len"] for r in rows)
    return {"edit_dist": sum(r["edit_dist"] for r in rows) / len(rows),
            "edit_dist_total": sum(r["edit_num"] for r in rows) / upper if upper else 0.0}
