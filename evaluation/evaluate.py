"""`ocrsft eval PRED.jsonl [--task auto|NAME] [scoring options] [-o DIR]`: score predictions.

Reads the rows `ocrsft infer` writes. Each row's metric family (ocr, table,
formula, chart, kie, det) comes from `--task`, else the row's `task`, else its
prompt (samples/tasks.py), so one file may mix tasks. Each family's module
in evaluation/metrics scores the row, aggregates its rows, and names its main
per-sample score (`MAIN`, `LOWER_IS_BETTER`; `main_key` for table, whose main score
is official `teds` only where rows carry an HTML reference), which ranks the worst
samples here and decides fixed/broken in `ocrsft compare`. Rows with an `error`
count as failures with an empty prediction.

Scoring options (`Scoring`; the defaults are each reference implementation's own):
- OCR: `--spaces`, `--ignore-case`, `--paddleocr` (PaddleOCR RecMetric's
  ignore_space) and `--paddleocr-filter` (its is_filter as well);
- chart: `--chart-lenient outer-pipes,rule-rows,thousands|all` (default: DePlot's
  metric as its code computes it);
- table: `--strict-official` (a bare `<table>` HTML answer scores the official 0;
  by default it is wrapped in `<html><body>` first);
- KIE: `--kie-norm casefold|docvqa` (default casefold: casefolded, whitespace runs
  collapsed; docvqa: lowercased only, as DocVQA's ANLS);
- `--normalize omnidocbench`: OmniDocBench's normalisation of text (ocr family),
  formulas (adds its `edit_dist`) and tables (TEDS on its normalised HTML, which
  rewraps every table, so `--strict-official` has no effect there), see
  evaluation/metrics/omnidocbench.py.

Writes, into DIR (default PRED's stem + `_eval`): `per_sample.jsonl`,
`metrics.json` keyed by family (`{"ocr": {"samples": …, "cer": …}, "kie": {…}}`,
with the options each family was scored with) and `report.md` with, per family,
its metrics, a histogram of its main score and its worst samples with thumbnails
(PNG files in `thumbs/`).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from evaluation.metrics import chart, det, formula, kie, ocr, omnidocbench, table
from evaluation.metrics.chart import ChartOptions
from evaluation.metrics.ocr import Norm
from samples.errors import UserError
from samples.jsonl import AtomicWriter, dumps, iter_jsonl, write_json
from samples.tasks import TASKS, task_for_prompt

FAMILIES = {"ocr": ocr, "table": table, "formula": formula, "chart": chart, "kie": kie, "det": det}
WORST = 10      # worst samples shown per family
THUMB = 160     # px, the longer side of a report thumbnail


@dataclasses.dataclass(frozen=True)
class Scoring:
    """Every family's scoring options; the defaults are each reference's own convention."""
    ocr: Norm = Norm()
    chart: ChartOptions = ChartOptions()
    table_strict: bool = False   # a bare <table> HTML answer scores the official 0
    kie_norm: str = kie.DEFAULT_NORM
    omnidocbench: bool = False   # OmniDocBench's text, formula and table normalisation

    def describe(self) -> dict:
        omni = {"normalize": "omnidocbench"} if self.omnidocbench else {}
        return {"ocr": self.ocr.describe() | omni, "chart": dataclasses.asdict(self.chart),
                "table": {"strict_official": self.table_strict} | omni, "formula": omni,
                "kie": {"normalisation": self.kie_norm}}


def score_one(family: str, pred: str, ref: str, row: dict, scoring: Scoring) -> dict:
    if family == "ocr":
        if scoring.omnidocbench:
            pred, ref = omnidocbench.text(pred), omnidocbench.text(ref)
        return ocr.score(pred, ref, scoring.ocr)
    if family == "formula":
        return formula.score(pred, ref, omnidocbench=scoring.omnidocbench)
    if family == "chart":
        return chart.score(pred, ref, scoring.chart)
    if family == "table":
        html = row.get("reference_html")
        return table.score(pred, ref, html if isinstance(html, str) else None, strict=scoring.table_strict,
                           omnidocbench=scoring.omnidocbench)
    if family == "kie":
        return kie.score(pred, ref, norm=scoring.kie_norm)
    return FAMILIES[family].score(pred, ref)


def main_key(family: str, rows: list[dict]) -> str:
    """The family's main per-sample score for these rows (table: `teds` only where every row has an
    HTML reference, else `teds_otsl`)."""
    m = FAMILIES[family]
    return m.main_key(rows) if hasattr(m, "main_key") else m.MAIN


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
    from samples.errors import SampleError
    from samples.sample import resolve_image

    try:  # the row's image as infer wrote it; the project's one path rule
        return str(resolve_image(ref, None, allow_urls=True, base=base))
    except SampleError:
        return None


def score_rows(pred: Path, forced: str = "auto", norm: Norm | Scoring = Norm()) -> list[dict]:
    """`norm`: the OCR normalisation alone, or a `Scoring` with every family's options."""
    scoring = norm if isinstance(norm, Scoring) else Scoring(ocr=norm)
    pred = Path(pred)
    rows = []
    for line, row in iter_jsonl(pred):
        for key in ("id", "reference", "prediction"):
            if key not in row:
                raise UserError(f"{pred}:{line}", f"missing {key!r} (is this an `ocrsft infer` file?)")
        family = task_of(row, forced)
        p = "" if row.get("error") else str(row["prediction"])
        r = str(row["reference"])
        scores = score_one(family, p, r, row, scoring)
        rows.append({"id": row["id"], "family": family, "image": _image(row.get("image"), pred.parent),
                     "reference": r, "prediction": p, "error": row.get("error"), **scores})
    if not rows:
        raise UserError(str(pred), "holds no predictions")
    return rows


def badness(row: dict) -> float:
    """The row's main score, signed so that higher is worse: what ranks and compares rows."""
    m = FAMILIES[row["family"]]
    key = main_key(row["family"], [row])
    return row[key] if m.LOWER_IS_BETTER else -row[key]


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
    key = main_key(rows[0]["family"], rows)
    values = [min(r[key], 2.0) for r in rows]  # CER can pass 1; a rambling model must not flatten the plot
    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    ax.hist(values, bins=20, range=(0, max(1.0, max(values))))
    ax.set_xlabel(f"per-sample {key} ({'lower' if m.LOWER_IS_BETTER else 'higher'} is better"
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
    main = main_key(family, rows)
    png = histogram_png(rows, out / f"{family}_{main}_histogram.png")
    lines = [f"## {family}", "", "| metric | value |", "| --- | --- |"]
    lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {json.dumps(v)} |"
              for k, v in metrics.items()]
    lines += ["", f"![{family} {main} histogram]({png.name})", "",
              f"### Worst samples by {main}", "",
              f"| image | reference | prediction | {main} |", "| --- | --- | --- | --- |"]
    for k, r in enumerate(sorted(rows, key=badness, reverse=True)[:WORST]):
        thumb = Path("thumbs") / f"{family}_{k:02d}.png"
        img = f"![{_cell(str(r['id']), 40)}]({thumb.as_posix()})" if thumbnail(r["image"], out / thumb) else ""
        lines.append(f"| {img} | {_cell(r['reference'])} | {_cell(r['prediction'])} | {r[main]:.3f} |")
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
    p.add_argument("--paddleocr-filter", action="store_true",
                   help="OCR: PaddleOCR RecMetric's is_filter too (only ASCII letters and digits, "
                        "lowercased); implies --paddleocr")
    p.add_argument("--chart-lenient", default="", metavar="NAME[,NAME]",
                   help="chart: forgive what DePlot's metric does not: outer-pipes (markdown pipe tables), "
                        "rule-rows (|---| lines), thousands (1,234), or all (default: none, DePlot's own)")
    p.add_argument("--strict-official", action="store_true",
                   help="table: a bare <table> HTML answer scores 0, as PubTabNet's official code scores it "
                        "(default: it is wrapped in <html><body>)")
    p.add_argument("--normalize", choices=["none", "omnidocbench"], default="none",
                   help="text, formula, table: OmniDocBench's normalisation before scoring (text: only "
                        "letters, digits and CJK kept; formula: adds edit_dist; table: TEDS on its "
                        "normalised HTML), to compare with numbers reported on OmniDocBench")
    p.add_argument("--kie-norm", choices=list(kie.NORMS), default=kie.DEFAULT_NORM,
                   help="KIE: casefold with whitespace runs collapsed (default), or docvqa: lowercase only")


def norm_of(args) -> Scoring:
    if args.paddleocr or args.paddleocr_filter:
        if args.spaces not in (None, "remove"):
            raise UserError("--spaces", f"--paddleocr removes spaces; drop --spaces {args.spaces}")
        norm = dataclasses.replace(Norm.paddleocr(is_filter=args.paddleocr_filter), ignore_case=args.ignore_case)
    else:
        norm = Norm(spaces=args.spaces or "keep", ignore_case=args.ignore_case)
    try:
        lenient = ChartOptions.lenient(args.chart_lenient.split(","))
    except ValueError as e:
        raise UserError("--chart-lenient", str(e)) from None
    return Scoring(ocr=norm, chart=lenient, table_strict=args.strict_official, kie_norm=args.kie_norm,
                   omnidocbench=args.normalize == "omnidocbench")


def rounded(obj):
    if isinstance(obj, dict):
        return {k: rounded(v) for k, v in obj.items()}
    return round(obj, 4) if isinstance(obj, float) else obj


def main(args) -> int:
    scoring = norm_of(args)
    rows = score_rows(args.pred, args.task, scoring)
    metrics = by_family(rows)
    options = scoring.describe()
    for family in ("ocr", "chart", "table", "formula", "kie"):
        if family in metrics:
            if options[family]:
                metrics[family]["normalisation" if family == "ocr" else "options"] = options[family]
    out = args.out or args.pred.with_name(args.pred.stem + "_eval")
    report = write_report(rows, metrics, out, f"Evaluation of {args.pred.name}")
    print(json.dumps(rounded(metrics)))
    print(f"eval: report {report}")
    return 0
