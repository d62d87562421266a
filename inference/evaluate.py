"""`ocrsft eval PRED.jsonl [--task auto|NAME] [--spaces …] [--ignore-case] [--paddleocr] [-o DIR]`: score predictions.

Reads the rows `ocrsft infer` writes. Each row's metric family (ocr, table,
formula, chart, kie, det) comes from `--task`, else the row's `task`, else its
prompt (converters/tasks.py), so one file may mix tasks. Each family's module
in inference/metrics scores the row, aggregates its rows, and names its main
per-sample score (`MAIN`, `LOWER_IS_BETTER`), which ranks the worst samples here
and decides fixed/broken in `ocrsft compare`. Rows with an `error` count as
failures with an empty prediction. The OCR normalisation flags (`--spaces`,
`--ignore-case`, `--paddleocr` for PaddleOCR RecMetric's convention) apply to
the ocr family only.

Writes, into DIR (default PRED's stem + `_eval`): `per_sample.jsonl`,
`metrics.json` keyed by family (`{"ocr": {"samples": …, "cer": …}, "kie": {…}}`)
and `report.md` with, per family, its metrics, a histogram of its main score and
its worst samples with thumbnails (PNG files in `thumbs/`).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from converters.errors import UserError
from converters.jsonl import AtomicWriter, dumps, iter_jsonl, write_json
from converters.tasks import TASKS, task_for_prompt
from inference.metrics import chart, det, formula, kie, ocr, table
from inference.metrics.ocr import Norm

FAMILIES = {"ocr": ocr, "table": table, "formula": formula, "chart": chart, "kie": kie, "det": det}
WORST = 10      # worst samples shown per family
THUMB = 160     # px, the longer side of a report thumbnail


def task_of(row: dict, forced: str) -> str:
    if forced != "auto":
        return TASKS[forced].metric
    if row.get("task") in TASKS:
        return TASKS[row["task"]].metric
    task = task_for_prompt(row.get("prompt", ""))
    return task.metric if task else "ocr"


def _image(ref, base: Path) -> str | None:
    if not ref:
        return None
    from converters.errors import SampleError
    from converters.sample import resolve_image

    try:  # the row's image as infer wrote it; the project's one path rule
        return str(resolve_image(ref, None, allow_urls=True, base=base))
    except SampleError:
        return None


def score_rows(pred: Path, forced: str = "auto", norm: Norm = Norm()) -> list[dict]:
    pred = Path(pred)
    rows = []
    for line, row in iter_jsonl(pred):
        for key in ("id", "reference", "prediction"):
            if key not in row:
                raise UserError(f"{pred}:{line}", f"missing {key!r} (is this an `ocrsft infer` file?)")
        family = task_of(row, forced)
        p = "" if row.get("error") else str(row["prediction"])
        r = str(row["reference"])
        scores = ocr.score(p, r, norm) if family == "ocr" else FAMILIES[family].score(p, r)
        rows.append({"id": row["id"], "family": family, "image": _image(row.get("image"), pred.parent),
                     "reference": r, "prediction": p, "error": row.get("error"), **scores})
    if not rows:
        raise UserError(str(pred), "holds no predictions")
    return rows


def badness(row: dict) -> float:
    """The row's main score, signed so that higher is worse: what ranks and compares rows."""
    m = FAMILIES[row["family"]]
    return row[m.MAIN] if m.LOWER_IS_BETTER else -row[m.MAIN]


def aggregate(rows: list[dict]) -> dict:
    """One family's metrics over its rows (see `by_family` for a mixed file)."""
    families = {r["family"] for r in rows}
    if len(families) != 1:
        raise ValueError(f"aggregate wants the rows of one family, got {sorted(families)}")
    family = families.pop()
    return {"samples": len(rows), "errors": sum(1 for r in rows if r["error"]),
            **FAMILIES[family].aggregate(rows)}


def by_family(rows: list[dict]) -> dict[str, dict]:
    return {f: aggregate(group) for f in FAMILIES if (group := [r for r in rows if r["family"] == f])}


def histogram_png(rows: list[dict], png: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = FAMILIES[rows[0]["family"]]
    values = [min(r[m.MAIN], 2.0) for r in rows]  # CER can pass 1; a rambling model must not flatten the plot
    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    ax.hist(values, bins=20, range=(0, max(1.0, max(values))))
    ax.set_xlabel(f"per-sample {m.MAIN} ({'lower' if m.LOWER_IS_BETTER else 'higher'} is better"
                  f"{', capped at 2' if max(values) > 1 else ''})")
    ax.set_ylabel("samples")
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return png


def thumbnail(image: str | None, dest: Path) -> bool:
    from PIL import Image

    if not image:
        return False
    try:
        with Image.open(image) as im:
            page = Image.new("RGBA", im.size, "white")  # transparent formula renders would turn black
            page.alpha_composite(im.convert("RGBA"))
            im = page.convert("RGB")
            im.thumbnail((THUMB, THUMB))
            dest.parent.mkdir(parents=True, exist_ok=True)
            im.save(dest)
    except (OSError, ValueError):  # a missing or broken image costs its thumbnail, not the report
        return False
    return True


def _cell(s: str, width: int = 80) -> str:
    return s.replace("|", "\\|").replace("\n", "⏎")[:width]


def _section(family: str, rows: list[dict], metrics: dict, out: Path) -> list[str]:
    m = FAMILIES[family]
    png = histogram_png(rows, out / f"{family}_{m.MAIN}_histogram.png")
    lines = [f"## {family}", "", "| metric | value |", "| --- | --- |"]
    lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {json.dumps(v)} |"
              for k, v in metrics.items()]
    lines += ["", f"![{family} {m.MAIN} histogram]({png.name})", "",
              f"### Worst samples by {m.MAIN}", "",
              f"| image | reference | prediction | {m.MAIN} |", "| --- | --- | --- | --- |"]
    for k, r in enumerate(sorted(rows, key=badness, reverse=True)[:WORST]):
        thumb = Path("thumbs") / f"{family}_{k:02d}.png"
        img = f"![{_cell(str(r['id']), 40)}]({thumb.as_posix()})" if thumbnail(r["image"], out / thumb) else ""
        lines.append(f"| {img} | {_cell(r['reference'])} | {_cell(r['prediction'])} | {r[m.MAIN]:.3f} |")
    return lines + [""]


def write_report(rows: list[dict], metrics: dict, out: Path, title: str) -> Path:
    """`metrics` is `by_family`'s dict, or one family's `aggregate` (as ocrsft/steps.py passes)."""
    if not all(isinstance(v, dict) for v in metrics.values()):
        metrics = {rows[0]["family"]: metrics}
    out.mkdir(parents=True, exist_ok=True)
    with AtomicWriter(out / "per_sample.jsonl") as f:
        for r in rows:
            f.write(dumps(r) + "\n")
    write_json(out / "metrics.json", metrics)
    lines = [f"# {title}", ""]
    for family, fm in metrics.items():
        lines += _section(family, [r for r in rows if r["family"] == family], fm, out)
    (out / "report.md").write_text("\n".join(lines))
    return out / "report.md"


def add_args(p) -> None:
    p.add_argument("pred", type=Path)
    p.add_argument("--task", default="auto", choices=["auto", *TASKS],
                   help="score every row as this task (default: each row's own task)")
    add_norm_args(p)
    p.add_argument("-o", "--out", type=Path, help="report folder (default: PRED's stem + _eval)")


def add_norm_args(p) -> None:
    p.add_argument("--spaces", choices=["keep", "collapse", "remove"],
                   help="OCR: keep whitespace (default), collapse runs to one space, or remove it")
    p.add_argument("--ignore-case", action="store_true", help="OCR: compare casefolded text")
    p.add_argument("--paddleocr", action="store_true",
                   help="OCR: PaddleOCR RecMetric's convention (spaces removed)")


def norm_of(args) -> Norm:
    if args.paddleocr:
        if args.spaces not in (None, "remove"):
            raise UserError("--spaces", f"--paddleocr removes spaces; drop --spaces {args.spaces}")
        return dataclasses.replace(Norm.paddleocr(), ignore_case=args.ignore_case)
    return Norm(spaces=args.spaces or "keep", ignore_case=args.ignore_case)


def rounded(obj):
    if isinstance(obj, dict):
        return {k: rounded(v) for k, v in obj.items()}
    return round(obj, 4) if isinstance(obj, float) else obj


def main(args) -> int:
    norm = norm_of(args)
    rows = score_rows(args.pred, args.task, norm)
    metrics = by_family(rows)
    if "ocr" in metrics:
        metrics["ocr"]["normalisation"] = norm.describe()
    out = args.out or args.pred.with_name(args.pred.stem + "_eval")
    report = write_report(rows, metrics, out, f"Evaluation of {args.pred.name}")
    print(json.dumps(rounded(metrics)))
    print(f"eval: report {report}")
    return 0
