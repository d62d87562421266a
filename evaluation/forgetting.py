"""The guard against forgetting: base -> fine-tuned on a general held-out set, beside the domain gain.

"Fine-tuned is worse than base" on everything outside the new domain is the
recurring complaint (ERNIE #1431, #1348); PaddleFormers' 1.5 guide says to test
the base before fine-tuning. `ocrsft compare BASE SFT --general-base GB
--general-sft GS` scores both pairs with the same code (evaluation/compare.py)
and reports, per metric family, the change of its main score on each:

    domain   ocr cer 0.412 -> 0.103 (better by 0.309)
    general  ocr cer 0.080 -> 0.215 (WORSE by 0.135)
    verdict: WORSE OUTSIDE THE DOMAIN: ocr cer rose 0.080 -> 0.215 on the general set ...

A change smaller than `tolerance` (absolute, on the main score) counts as unchanged.
"""
from __future__ import annotations

from evaluation.evaluate import FAMILIES

TOLERANCE = 0.005


def changes(result: dict, tolerance: float = TOLERANCE) -> dict[str, dict]:
    """Per family: main metric, base, fine-tuned, and whether it got better/worse/unchanged."""
    out = {}
    for family in result["delta"]:
        m = FAMILIES[family]
        base, sft = result["base"][family][m.MAIN], result["sft"][family][m.MAIN]
        gain = (base - sft) if m.LOWER_IS_BETTER else (sft - base)
        out[family] = {"metric": m.MAIN, "base": base, "sft": sft, "gain": gain,
                       "change": "unchanged" if abs(gain) <= tolerance else
                       ("better" if gain > 0 else "worse")}
    return out


def describe(c: dict) -> str:
    how = {"better": f"better by {abs(c['gain']):.3f}", "worse": f"WORSE by {abs(c['gain']):.3f}",
           "unchanged": "unchanged"}[c["change"]]
    return f"{c['metric']} {c['base']:.3f} -> {c['sft']:.3f} ({how})"


def verdict(domain: dict, general: dict, tolerance: float = TOLERANCE) -> dict:
    d, g = changes(domain, tolerance), changes(general, tolerance)
    worse = [f for f, c in g.items() if c["change"] == "worse"]
    if worse:
        text = ("WORSE OUTSIDE THE DOMAIN: " + "; ".join(f"{f} {describe(g[f])}" for f in worse)
                + " on the general set. The fine-tune traded general skill for the domain: mix "
                "general samples into training (train_dataset_path: domain,general with "
                "train_dataset_prob: 0.8,0.2 and mix_strategy: interleave_under), lower the "
                "learning rate or train fewer steps.")
    else:
        text = "no loss outside the domain: " + "; ".join(f"{f} {describe(c)}" for f, c in g.items())
    return {"domain": d, "general": g, "worse_outside_domain": bool(worse), "text": text}


def report_lines(v: dict) -> list[str]:
    lines = ["", "## Inside vs outside the domain", "",
             "| set | family | metric | base | fine-tuned | change |", "| --- | --- | --- | --- | --- | --- |"]
    for name in ("domain", "general"):
        for family, c in v[name].items():
            lines.append(f"| {name} | {family} | {c['metric']} | {c['base']:.4f} | {c['sft']:.4f} | "
                         f"{'**WORSE**' if c['change'] == 'worse' else c['change']} {c['gain']:+.4f} |")
    return lines + ["", f"**{v['text']}**" if v["worse_outside_domain"] else v["text"]]
