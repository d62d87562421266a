r"""OmniDocBench's normalisation of text, formulas and tables (`ocrsft eval --normalize omnidocbench`).

PaddleOCR-VL reports on OmniDocBench, whose recognition evaluation normalises
both sides before scoring (opendatalab/OmniDocBench `utils/data_preprocess.py`,
as `dataset/recog_dataset.py` applies it). Its rules, restated:

    text("Area $x^{2}$ = 4 m²\n")                         -> "Areax24m²"
    formula("$$\\mathbf{x} + \\left( y \\right)$$")    -> "{x}+(y)"
    table("<table><thead><tr><th>a</th></tr></thead></table>")
        -> '<html><body><table border="1" ><tr><td>a</td></tr></table></body></html>'

- text: each inline formula (`$…$` or `\(…\)`) whose body, once the escapes
  `\\ \_ \& \% \^` are deleted (backslash and character both), still holds a `\`,
  `^` or `_` is replaced by pylatexenc's plain-text rendering of that body
  (stripped); then the two-character sequences `\t`, `\n`, `/t`, `/n`, tabs and
  newlines are deleted, and only word characters (`\w`) and CJK ideographs are kept.
- formula: ends stripped of whitespace, then of `$`, then of newlines; the first
  `\[…\]` body if there is one; `\tag{…}`, `\hspace{…}`, `\begin{…}`, `\end{…}`
  and `\arraycolsep…}` deleted; ends stripped of `.`; then font, spacing and
  sizing commands (`\mathbf`, `\mathrm`, …, `\left`, `\right`, `\displaystyle`),
  `$$` and every space deleted, in that order; lowercased.
- table (HTML): `th` becomes `td`, `thead` and `span` are unwrapped, MathML
  `<math>` becomes `$alttext$` (BeautifulSoup); then HTML entities are unescaped,
  newlines dropped, NFKC applied; the inside of the outermost `<table …>…</table>`
  is kept, its style/height/width/align/class attributes and `tbody` tags deleted,
  whitespace runs made one space, and `sup`, `sub`, `span`, `div`, `p` tags and
  `colgroup` blocks deleted; the result is wrapped as
  `<html><body><table border="1" >…</table></body></html>`. No `<table`: "".

Scores on the normalised strings are OmniDocBench's: text and formula by edit
distance over the longer length (evaluation/metrics/ocr.py `ned`, its `Edit_dist`),
tables by TEDS (evaluation/metrics/table.py, the same official code it runs).
OmniDocBench also drops samples whose prediction is empty before scoring; ocrsft
keeps them (an empty answer is a failure it must count).
"""
from __future__ import annotations

import html
import re
import unicodedata

_INLINE = re.compile(r"\$(.*?)\$|\\\((.*?)\\\)")
_ESCAPES = re.compile(r"\\([\\_&%^])")
_NOT_KEPT = re.compile(r"[^\w\u4e00-\u9fff]")
_DISPLAY = re.compile(r"\\\[(.+?)(?<!\\)\\\]")
_FORMULA_DROPS = [re.compile(p) for p in (r"\\tag\{.*?\}", r"\\hspace\{.*?\}", r"\\begin\{.*?\}",
                                          r"\\end\{.*?\}", r"\\arraycolsep.*?\}")]
_FORMULA_WORDS = (
    "\\mathbf", "\\mathrm", "\\mathnormal", "\\mathit", "\\mathbb", "\\mathcal", "\\mathscr", "\\mathfrak",
    "\\mathsf", "\\mathtt", "\\textbf", "\\text", "\\boldmath", "\\boldsymbol", "\\operatorname", "\\bm",
    "\\symbfit", "\\mathbfcal", "\\symbf", "\\scriptscriptstyle", "\\notag", "\\setlength", "\\coloneqq",
    "\\space", "\\thickspace", "\\thinspace", "\\medspace", "\\nobreakspace", "\\negmedspace", "\\quad",
    "\\qquad", "\\enspace", "\\substackw", " ", "$$", "\\left", "\\right", "\\displaystyle", "\\text",
)  # deleted in this order, as OmniDocBench deletes them (`\text` twice: a deletion can form a new one)
_TABLE_BODY = re.compile(r"<table\b[^>]*>(.*)</table>", re.S | re.I)
_TABLE_ATTRS = [re.compile(f'( {a}=".*?")') for a in ("style", "height", "width", "align", "class")]
_TABLE_TAGS = ("<sup>", "</sup>", "<sub>", "</sub>", "<span>", "</span>", "<div>", "</div>", "<p>", "</p>",
               '<spandata-span-identity="">')
_COLGROUP = re.compile("<colgroup>.*?</colgroup>")


def _inline_to_text(text: str) -> str:
    from pylatexenc.latex2text import LatexNodes2Text

    replaced = []
    for m in _INLINE.finditer(text):
        body = m.group(1) if m.group(1) is not None else m.group(2)
        bare = _ESCAPES.sub("", body)
        if not any(ch in bare for ch in "\\^_"):
            continue
        if bare.endswith("\\"):
            bare += " "
        try:
            replaced.append((m.start(), m.end(), LatexNodes2Text().latex_to_text(bare)))
        except Exception:  # noqa: BLE001  (OmniDocBench leaves a formula it cannot render as written)
            continue
    for start, end, plain in reversed(replaced):
        text = text[:start] + plain.strip() + text[end:]
    return text


def text(s: str) -> str:
    s = _inline_to_text(s)
    for junk in ("\\t", "\\n", "\t", "\n", "/t", "/n"):
        s = s.replace(junk, "")
    return _NOT_KEPT.sub("", s)


def formula(s: str) -> str:
    s = s.strip().strip("$").strip("\n")
    m = _DISPLAY.search(s)
    if m:
        s = m.group(1).strip()
    for pattern in _FORMULA_DROPS:
        s = pattern.sub("", s)
    s = s.strip(".")
    for word in _FORMULA_WORDS:
        s = s.replace(word, "")
    return s.lower()


def table(s: str) -> str:
    if "<table" not in s.replace(" ", "").replace("'", '"'):
        return ""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(s, "html.parser")
    for th in soup.find_all("th"):
        th.name = "td"
    for thead in soup.find_all("thead"):
        thead.unwrap()
    for math in soup.find_all("math"):
        math.replace_with(f"${math.get('alttext', '')}$")
    for span in soup.find_all("span"):
        span.unwrap()
    body = unicodedata.normalize("NFKC", html.unescape(str(soup)).replace("\n", "")).strip()
    body = "".join(_TABLE_BODY.findall(body))
    for pattern in _TABLE_ATTRS:
        body = pattern.sub("", body)
    body = re.sub(r"\s+", " ", re.sub("</?tbody>", "", body))
    out = '<html><body><table border="1" >' + body + "</table></body></html>"
    for tag in _TABLE_TAGS:
        out = out.replace(tag, "")
    return _COLGROUP.sub("", out)
