"""Each task family's own score on a few decoded validation samples, while training runs.

Eval loss says the model predicts the reference tokens better; it does not say
the model reads. Users ask for the number they will be judged on (ERNIE issue
1334), so with `eval_generation_samples: N` every evaluation also greedily
decodes the first N samples of `eval_dataset_path` with the model being trained,
scores each by its family, picked from its prompt exactly as `ocrsft eval` picks
it (evaluation/evaluate.py `task_of`, `score_one`, default scoring options), and
logs, next to `eval/loss`, each family's aggregate main score:

    eval/cer, eval/exact_match   OCR samples: mean CER, share read exactly
    eval/table_teds              table: official TEDS (eval/table_teds_otsl without source HTML)
    eval/formula_token_ned       formula: token edit distance
    eval/chart_rms_f1            chart: DePlot's RMS-F1
    eval/kie_field_f1            KIE: field F1 (and eval/kie_anls)
    eval/det_f1                  detection: box F1

and appends what was read to `<output_dir>/eval_generation.jsonl`, one row per
sample and evaluation: {"step", "id", "family", "reference", "prediction", MAIN: score},
MAIN being the family's main per-sample score (`cer` for OCR).

The decoding is the engine's (engines/paddleformers/eval_generation.py); the
scoring and the names logged are here, so the driver reports them without
importing an engine.
"""
from __future__ import annotations

from evaluation.evaluate import FAMILIES, main_key

LOGGED = {"ocr": ("cer", "exact_match"), "kie": ("field_f1", "anls")}  # else the family's main score


def logged_names() -> list[str]:
    """Every name `family_metrics` can log (TensorBoard adds the `eval/` prefix)."""
    out = []
    for family, module in FAMILIES.items():
        keys = LOGGED.get(family) or tuple(k for k in (module.MAIN, getattr(module, "FALLBACK_MAIN", None)) if k)
        out += [k if family == "ocr" else f"{family}_{k}" for k in keys]
    return out


def family_metrics(rows: list[dict]) -> dict:
    """{"cer": …, "table_teds": …}: each family's aggregate main score over its rows."""
    out = {}
    for family, module in FAMILIES.items():
        group = [r for r in rows if r["family"] == family]
        if not group:
            continue
        agg = module.aggregate(group)
        for key in LOGGED.get(family, (main_key(family, group),)):
            out[key if family == "ocr" else f"{family}_{key}"] = agg[key]
    return out
