"""OTSL, the table language PaddleOCR-VL reads and writes, and its HTML twin.

    >>> html_to_otsl('<table><tr><td colspan="2">Total</td></tr><tr><td>1</td><td></td></tr></table>')
    '<fcel>Total<lcel><nl><fcel>1<ecel><nl>'
    >>> otsl_to_html('<fcel>Total<lcel><nl><fcel>1<ecel><nl>')
    '<table><tr><td colspan="2">Total</td></tr><tr><td>1</td><td></td></tr></table>'

The grammar (OTSL, Lysak et al. 2023; seed 002 §8.1) writes the table as a
rectangular grid, row by row, each row closed by `<nl>`:

- `<fcel>text`: a cell that starts here and holds text; `<ecel>`: one that starts here, empty;
- `<lcel>`: covered by the span of the cell to its left (colspan);
- `<ucel>`: covered by the span of the cell above (rowspan);
- `<xcel>`: covered by a span reaching both left and up (rowspan and colspan).

Cell text is the text a reader sees (`text_content()`, whitespace runs
collapsed to one space), unescaped, exactly like paddlex's own OTSL -> HTML
step, which HTML-escapes it on the way out. OTSL has no place for `<thead>` /
`<tbody>` or inline markup (`<b>`, `<sup>`); they are dropped, which is why
evaluation compares both sides through `otsl_to_html`.
"""
from __future__ import annotations

import re
from html import escape

FCEL, ECEL, LCEL, UCEL, XCEL, NL = "<fcel>", "<ecel>", "<lcel>", "<ucel>", "<xcel>", "<nl>"
ORIGINS = (FCEL, ECEL)
TAGS = (FCEL, ECEL, LCEL, UCEL, XCEL, NL)
_SPLIT = re.compile("(" + "|".join(map(re.escape, TAGS)) + ")")
_SPACES = re.compile(r"\s+")

# ---------------------------------------------------------------- HTML -> OTSL


def _span(cell, name: str) -> int:
    raw = cell.get(name, "1").strip() or "1"
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"bad {name}={raw!r} on a cell (want a positive integer)")
    return int(raw)


def _rows(table):
    """The table's own <tr> elements in order (nested tables keep theirs)."""
    for el in table.iterdescendants("tr"):
        if next(el.iterancestors("table")) is table:
            yield el


def html_to_otsl(html: str) -> str:
    """The first <table> in `html` -> OTSL. Raises ValueError if there is no table or cells overlap.

    Spans are laid out as the HTML table model does: each cell takes the next
    free slot of its row; rowspans running past the last row are clipped, and
    rows shorter than the widest are padded with `<ecel>` (what a browser shows).
    """
    from lxml import html as lhtml

    try:
        root = lhtml.fromstring(html)
    except Exception as e:  # lxml raises ParserError / XMLSyntaxError on empty or garbage text
        raise ValueError(f"not parseable HTML ({e})") from None
    table = root if root.tag == "table" else next(root.iterdescendants("table"), None)
    if table is None:
        raise ValueError("no <table> element")
    rows = [[c for c in tr if c.tag in ("td", "th")] for tr in _rows(table)]
    grid: dict[tuple[int, int], str] = {}
    for r, cells in enumerate(rows):
        c = 0
        for cell in cells:
            while (r, c) in grid:
                c += 1
            text = _SPACES.sub(" ", cell.text_content())
            rs = min(_span(cell, "rowspan"), len(rows) - r)
            cs = _span(cell, "colspan")
            for dr in range(rs):
                for dc in range(cs):
                    if (r + dr, c + dc) in grid:
                        raise ValueError(f"cells overlap at row {r + dr + 1}, column {c + dc + 1}")
                    grid[r + dr, c + dc] = (
                        (FCEL + text if text.strip() else ECEL) if dr == dc == 0
                        else LCEL if dr == 0 else UCEL if dc == 0 else XCEL)
            c += cs
    if not grid:
        raise ValueError("the table has no cells")
    width = 1 + max(c for _, c in grid)
    return "".join("".join(grid.get((r, c), ECEL) for c in range(width)) + NL for r in range(len(rows)))


# ---------------------------------------------------------------- OTSL -> grid


def parse_otsl(otsl: str) -> tuple[list[list[str]], list[list[str]], list[str]]:
    """OTSL -> (rows of tags, rows of the text after each tag, stray text).

    Stray text is text that follows no cell tag (before the first tag, or right
    after an `<nl>`). Lenient: a missing final `<nl>` still closes the last row;
    `check_otsl` is the strict gate.
    """
    parts = _SPLIT.split(otsl)
    stray = [parts[0]]
    tags: list[list[str]] = [[]]
    texts: list[list[str]] = [[]]
    for tag, text in zip(parts[1::2], parts[2::2]):
        if tag == NL:
            tags.append([])
            texts.append([])
            stray.append(text)
        else:
            tags[-1].append(tag)
            texts[-1].append(text)
    if not tags[-1]:
        tags.pop()
        texts.pop()
    return tags, texts, [t for t in stray if t.strip()]


def _spans(tags: list[list[str]]) -> list[tuple[int, int, int, int]]:
    """(row, col, rowspan, colspan) of each origin, read off the run of lcel right / ucel down."""
    out = []
    for r, row in enumerate(tags):
        for c, tag in enumerate(row):
            if tag not in ORIGINS:
                continue
            cs = 1
            while c + cs < len(row) and row[c + cs] == LCEL:
                cs += 1
            rs = 1
            while r + rs < len(tags) and c < len(tags[r + rs]) and tags[r + rs][c] == UCEL:
                rs += 1
            out.append((r, c, rs, cs))
    return out


def check_otsl(otsl: str) -> None:
    """Raise ValueError naming the first problem; return None for a well-formed table.

    Well-formed: only the six tags, text only after `<fcel>`, every row closed by
    `<nl>` and as long as the first, and the covering tags tile rectangles
    exactly: `<lcel>` along a span's top row, `<ucel>` down its first column,
    `<xcel>` everywhere else inside it, and nowhere outside one.
    """
    if not otsl.strip():
        raise ValueError("empty OTSL")
    if not otsl.endswith(NL):
        raise ValueError("the last row is not closed by <nl>")
    tags, texts, stray = parse_otsl(otsl)
    if stray:
        raise ValueError(f"text outside any cell: {stray[0][:30]!r} (text goes right after <fcel>)")
    for r, (row, row_texts) in enumerate(zip(tags, texts), 1):
        if not row:
            raise ValueError(f"row {r} is empty")
        if len(row) != len(tags[0]):
            raise ValueError(f"row {r} has {len(row)} cells, row 1 has {len(tags[0])} (the grid must be rectangular)")
        for c, (tag, text) in enumerate(zip(row, row_texts), 1):
            if tag != FCEL and text.strip():
                raise ValueError(f"text {text[:20]!r} after {tag} at row {r}, column {c} (only <fcel> holds text)")
    covered: dict[tuple[int, int], str] = {}
    for r, c, rs, cs in _spans(tags):
        for dr in range(rs):
            for dc in range(cs):
                want = tags[r][c] if dr == dc == 0 else LCEL if dr == 0 else UCEL if dc == 0 else XCEL
                got = tags[r + dr][c + dc]
                if got != want:
                    raise ValueError(f"{got} at row {r + dr + 1}, column {c + dc + 1} inside the span starting "
                                     f"at row {r + 1}, column {c + 1}; expected {want}")
                covered[r + dr, c + dc] = got
    for r, row in enumerate(tags):
        for c, tag in enumerate(row):
            if (r, c) not in covered:
                raise ValueError(f"{tag} at row {r + 1}, column {c + 1} belongs to no cell "
                                 f"(nothing to its {'left' if tag == LCEL else 'top' if tag == UCEL else 'top-left'})")


# ---------------------------------------------------------------- OTSL -> HTML


def otsl_to_html(otsl: str) -> str:
    """OTSL -> `<table>` HTML; lenient so that any model output can be scored.

    Short rows are padded with empty cells; a covering tag that covers nothing
    (an `<lcel>` in column 1, say) becomes an empty cell; text outside any cell
    is dropped (paddlex drops it too). Text is HTML-escaped. `check_otsl` names
    what was repaired.
    """
    tags, texts, _ = parse_otsl(otsl)
    width = max((len(row) for row in tags), default=0)
    for row, row_texts in zip(tags, texts):
        row_texts += [""] * (width - len(row))
        row += [ECEL] * (width - len(row))
    starts = {(r, c): (rs, cs) for r, c, rs, cs in _spans(tags)}
    covered = set()
    for (r, c), (rs, cs) in starts.items():
        covered.update((r + dr, c + dc) for dr in range(rs) for dc in range(cs) if dr or dc)
    out = ["<table>"]
    for r, row in enumerate(tags):
        out.append("<tr>")
        for c in range(width):
            if (r, c) in covered and (r, c) not in starts:
                continue
            rs, cs = starts.get((r, c), (1, 1))
            attrs = (f' rowspan="{rs}"' if rs > 1 else "") + (f' colspan="{cs}"' if cs > 1 else "")
            text = texts[r][c] if row[c] in ORIGINS else ""
            out.append(f"<td{attrs}>{escape(text, quote=False)}</td>")
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)
