"""`ocrsft eval PRED.jsonl [--task auto|ocr] [-o DIR]`: score predictions, write a report.

Reads the rows `ocrsft infer` writes. The task comes from `--task`, else the
row's `task`, else its prompt (converters/tasks.py). Rows with an `error`
count as failures with an empty prediction. Writes `per_sample.jsonl`,
`metrics.json` and `report.md` with an error histogram and the worst samples.
Metric families beyond OCR (TEDS, formula, chart, KIE, detection) are not
implemented yet and are refused with a clear message.
"""
from __future__ import annotations

import json
from pathlib import Path

from converters.errors import UserError
from converters.jsonl import AtomicWriter, dumps, iter_jsonl, write_json
from converters.tasks import TASKS, task_for_prompt
from inference.metrics.ocr import cer, corpus_cer, ned

SUPPORTED = {"ocr"}


def task_of(row: dict, forced: str) -> str:
    if forced != "auto":
        return TASKS[forced].metric
    if row.get("task") in TASKS:
        return TASKS[row["task"]].metric
    task = task_for_prompt(row.get("prompt", ""))
    return task.metric if task else "ocr"


def score_rows(pred: Path, forced: str = "auto") -> list[dict]:
    rows = []
    for line, row in iter_jsonl(pred):
        for key in ("id", "reference", "prediction"):
            if key not in row:
                raise UserError(f"{pred}:{line}", f"missing {key!r} (is this an `ocrsft infer` file?)")
        metric = task_of(row, forced)
        if metric not in SUPPORTED:
            raise UserError(f"{pred}:{line}", f"metric family {metric!r} is not supported yet "
                                              f"(supported: {', '.join(sorted(SUPPORTED))})")
        p = "" if row.get("error") else str(row["prediction"])
        r = str(row["reference"])
        rows.append({"id": row["id"], "image": row.get("image"), "reference": r, "prediction": p,
                     "error": row.get("error"), "cer": cer(p, r), "ned": ned(p, r),
                     "exact": p == r})
    if not rows:
        raise UserError(str(pred), "holds no predictions")
    return rows


def aggregate(rows: list[dict]) -> dict:
    n = len(rows)
    return {"samples": n, "cer": sum(r["cer"] for r in rows) / n,
            "corpus_cer": corpus_cer((r["prediction"], r["reference"]) for r in rows),
            "ned": sum(r["ned"] for r in rows) / n,
            "norm_edit_dis": 1 - sum(r["ned"] for r in rows) / n,
            "exact_match": sum(r["exact"] for r in rows) / n,
            "errors": sum(1 for r in rows if r["error"])}


def histogram_png(rows: list[dict], png: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3), dpi=100)
    ax.hist([min(r["cer"], 2.0) for r in rows], bins=20, range=(0, 2))
    ax.set_xlabel("per-sample CER (capped at 2)")
    ax.set_ylabel("samples")
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return png


def write_report(rows: list[dict], metrics: dict, out: Path, title: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    with AtomicWriter(out / "per_sample.jsonl") as f:
        for r in rows:
            f.write(dumps(r) + "\n")
    write_json(out / "metrics.json", metrics)
    histogram_png(rows, out / "cer_histogram.png")
    worst = sorted(rows, key=lambda r: -r["cer"])[:10]
    lines = [f"# {title}", "", "| metric | value |", "| --- | --- |"]
    lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |"
              for k, v in metrics.items()]
    lines += ["", "![CER histogram](cer_histogram.png)", "", "## Worst samples", "",
              "| image | reference | prediction | CER |", "| --- | --- | --- | --- |"]
    for r in worst:
        img = f"![]({r['image']})" if r["image"] else ""
        cell = lambda s: s.replace("|", "\\|").replace("\n", "⏎")[:80]  # noqa: E731
        lines.append(f"| {img} | {cell(r['reference'])} | {cell(r['prediction'])} | {r['cer']:.3f} |")
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return out / "report.md"


def add_args(p) -> None:
    p.add_argument("pred", type=Path)
    p.add_argument("--task", default="auto", choices=["auto", *TASKS])
    p.add_argument("-o", "--out", type=Path, help="report folder (default: PRED's stem + _eval)")


def main(args) -> int:
    rows = score_rows(args.pred, args.task)
    metrics = aggregate(rows)
    out = args.out or args.pred.with_name(args.pred.stem + "_eval")
    report = write_report(rows, metrics, out, f"Evaluation of {args.pred.name}")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}))
    print(f"eval: report {report}")
    return 0
