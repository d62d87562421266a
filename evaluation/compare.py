"""`ocrsft compare BASE_PRED SFT_PRED [-o DIR]`: what fine-tuning fixed and what it broke.

Both files are `ocrsft infer` outputs over the same data; rows pair up by id.
The report gives metric deltas per metric family, and the samples fixed (their
family's main per-sample score got better, e.g. lower CER or higher TEDS; see
evaluation/evaluate.py `badness`) and broken, side by side.
"""
from __future__ import annotations

import json
from pathlib import Path

from evaluation.evaluate import (Scoring, add_norm_args, badness, by_family, main_key, norm_of,
                                 rounded, score_rows)
from evaluation.metrics.ocr import Norm
from samples.errors import UserError
from samples.jsonl import write_json
from samples.tasks import TASKS


def compare(base: Path, sft: Path, task: str = "auto", norm: Norm | Scoring = Norm()) -> dict:
    a = {r["id"]: r for r in score_rows(base, task, norm)}
    b = {r["id"]: r for r in score_rows(sft, task, norm)}
    common = [i for i in a if i in b]
    if not common:
        raise UserError(str(sft), f"shares no sample ids with {base}")
    ma = by_family([a[i] for i in common])
    mb = by_family([b[i] for i in common])
    pairs = [(a[i], b[i]) for i in common if a[i]["family"] == b[i]["family"]]
    return {
        "samples": len(common), "only_in_base": len(a) - len(common),
        "only_in_sft": len(b) - len(common), "base": ma, "sft": mb,
        "delta": {f: {k: mb[f][k] - v for k, v in ma[f].items() if isinstance(v, float)}
                  for f in ma if f in mb},
        "fixed": [(x, y) for x, y in pairs if badness(y) < badness(x)],
        "broken": [(x, y) for x, y in pairs if badness(y) > badness(x)],
    }


def write_report(result: dict, out: Path, base: Path, sft: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "compare.json", {k: v for k, v in result.items() if k not in ("fixed", "broken")}
               | {"fixed": len(result["fixed"]), "broken": len(result["broken"])})
    lines = [f"# {base.name} vs {sft.name}", "", f"{result['samples']} paired samples; "
             f"{len(result['fixed'])} fixed, {len(result['broken'])} broken."]
    for family, delta in result["delta"].items():
        lines += ["", f"## {family}", "", "| metric | base | fine-tuned | delta |", "| --- | --- | --- | --- |"]
        for k, d in delta.items():
            lines.append(f"| {k} | {result['base'][family][k]:.4f} | {result['sft'][family][k]:.4f} | {d:+.4f} |")
    cell = lambda s: s.replace("|", "\\|").replace("\n", "⏎")[:60]  # noqa: E731
    for name in ("fixed", "broken"):
        lines += ["", f"## {name.capitalize()} (first 20)", "",
                  "| family | reference | base | fine-tuned | main score |", "| --- | --- | --- | --- | --- |"]
        for x, y in result[name][:20]:
            main = main_key(x["family"], [x, y])
            lines.append(f"| {x['family']} | {cell(x['reference'])} | {cell(x['prediction'])} | "
                         f"{cell(y['prediction'])} | {main} {x[main]:.3f} → {y[main]:.3f} |")
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return out / "report.md"


def add_args(p) -> None:
    p.add_argument("base", type=Path, help="predictions of the base model")
    p.add_argument("sft", type=Path, help="predictions of the fine-tuned model")
    p.add_argument("--task", default="auto", choices=["auto", *TASKS])
    add_norm_args(p)
    p.add_argument("-o", "--out", type=Path, default=Path("compare_report"))
    p.add_argument("--general-base", type=Path, help="base predictions on a general held-out set "
                   "(outside the domain): reports what fine-tuning cost there")
    p.add_argument("--general-sft", type=Path, help="fine-tuned predictions on that general set")


def main(args) -> int:
    if bool(args.general_base) != bool(args.general_sft):
        raise UserError("--general-sft" if args.general_base else "--general-base",
                        "the general set needs both --general-base and --general-sft")
    result = compare(args.base, args.sft, args.task, norm_of(args))
    report = write_report(result, args.out, args.base, args.sft)
    print(json.dumps(rounded(result["delta"])))
    if args.general_base:
        from evaluation import forgetting

        general = compare(args.general_base, args.general_sft, "auto", norm_of(args))
        v = forgetting.verdict(result, general)
        write_json(args.out / "forgetting.json", v)
        with open(report, "a") as f:
            f.write("\n".join(forgetting.report_lines(v)) + "\n")
        for name in ("domain", "general"):
            for family, c in v[name].items():
                print(f"compare: {name:7} {family} {forgetting.describe(c)}")
        print(f"compare: {v['text']}")
    print(f"compare: {len(result['fixed'])} fixed, {len(result['broken'])} broken; report {report}")
    return 0
