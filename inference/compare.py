"""`ocrsft compare BASE_PRED SFT_PRED [-o DIR]`: what fine-tuning fixed and what it broke.

Both files are `ocrsft infer` outputs over the same data; rows pair up by id.
The report gives metric deltas, the samples fixed (worse CER -> better) and the
samples broken, side by side.
"""
from __future__ import annotations

import json
from pathlib import Path

from converters.errors import UserError
from converters.jsonl import write_json
from inference.evaluate import aggregate, score_rows


def compare(base: Path, sft: Path, task: str = "auto") -> dict:
    a = {r["id"]: r for r in score_rows(base, task)}
    b = {r["id"]: r for r in score_rows(sft, task)}
    common = [i for i in a if i in b]
    if not common:
        raise UserError(str(sft), f"shares no sample ids with {base}")
    ma = aggregate([a[i] for i in common])
    mb = aggregate([b[i] for i in common])
    pairs = [(a[i], b[i]) for i in common]
    return {
        "samples": len(common), "only_in_base": len(a) - len(common),
        "only_in_sft": len(b) - len(common), "base": ma, "sft": mb,
        "delta": {k: mb[k] - ma[k] for k in ma if isinstance(ma[k], float)},
        "fixed": [(x, y) for x, y in pairs if y["cer"] < x["cer"]],
        "broken": [(x, y) for x, y in pairs if y["cer"] > x["cer"]],
    }


def write_report(result: dict, out: Path, base: Path, sft: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "compare.json", {k: v for k, v in result.items() if k not in ("fixed", "broken")}
               | {"fixed": len(result["fixed"]), "broken": len(result["broken"])})
    lines = [f"# {base.name} vs {sft.name}", "", f"{result['samples']} paired samples; "
             f"{len(result['fixed'])} fixed, {len(result['broken'])} broken.", "",
             "| metric | base | fine-tuned | delta |", "| --- | --- | --- | --- |"]
    for k, d in result["delta"].items():
        lines.append(f"| {k} | {result['base'][k]:.4f} | {result['sft'][k]:.4f} | {d:+.4f} |")
    for name in ("fixed", "broken"):
        lines += ["", f"## {name.capitalize()} (first 20)", "",
                  "| reference | base | fine-tuned |", "| --- | --- | --- |"]
        for x, y in result[name][:20]:
            cell = lambda s: s.replace("|", "\\|").replace("\n", "⏎")[:60]  # noqa: E731
            lines.append(f"| {cell(x['reference'])} | {cell(x['prediction'])} | {cell(y['prediction'])} |")
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return out / "report.md"


def add_args(p) -> None:
    p.add_argument("base", type=Path, help="predictions of the base model")
    p.add_argument("sft", type=Path, help="predictions of the fine-tuned model")
    p.add_argument("--task", default="auto")
    p.add_argument("-o", "--out", type=Path, default=Path("compare_report"))


def main(args) -> int:
    result = compare(args.base, args.sft, args.task)
    report = write_report(result, args.out, args.base, args.sft)
    print(json.dumps({k: round(v, 4) for k, v in result["delta"].items()}))
    print(f"compare: {len(result['fixed'])} fixed, {len(result['broken'])} broken; report {report}")
    return 0
