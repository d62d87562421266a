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

Prompts are framed by the model folder's own chat template, the one paddlex
serves with, so the number predicts what `ocrsft infer` will measure.
"""
from __future__ import annotations

from pathlib import Path

from samples.jsonl import dumps
from evaluation.evaluate import FAMILIES, Scoring, main_key, score_one, task_of
from samples.sample import requests_from

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


class GenerationEval:
    def __init__(self, model_dir: str | Path, data: str | Path, samples: int,
                 max_new_tokens: int = 64, log: str | Path | None = None):
        from paddleformers.transformers import AutoProcessor
        from PIL import Image

        self.processor = AutoProcessor.from_pretrained(str(model_dir))
        if not getattr(self.processor, "chat_template", None):
            raise RuntimeError(f"{model_dir} has no chat_template.jinja; eval_generation_samples "
                               "needs the template the model is served with")
        self.eos = self.processor.tokenizer.convert_tokens_to_ids("</s>")
        self.max_new_tokens = max_new_tokens
        self.log = Path(log) if log else None
        self.items = []  # (id, model inputs, request, family): processed once, decoded every evaluation
        # Root "/": the trainer reads these paths as written, absolute or relative to the
        # JSONL, so decoding reads the very images the eval loss is computed on.
        for req in requests_from(Path(data), Path("/")):
            if len(self.items) == samples:
                break
            if req.error:
                raise RuntimeError(f"eval_generation_samples: {req.error}")
            if not req.image:
                continue
            with Image.open(req.image) as im:
                inputs = self.processor(text=[self.frame(req.prompt)], images=[im.convert("RGB")],
                                        return_tensors="pd")
            self.items.append((req.id, inputs, req, task_of({"prompt": req.prompt}, "auto")))

    def frame(self, prompt: str) -> str:
        turn = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        return self.processor.apply_chat_template(turn, add_generation_prompt=True, tokenize=False)

    def __call__(self, model, step: int = 0) -> dict:
        import paddle

        was_training = model.training
        model.eval()
        rows, read = [], []
        try:
            with paddle.no_grad():
                for sid, inputs, req, family in self.items:
                    out = model.generate(**inputs, max_new_tokens=self.max_new_tokens,
                                         do_sample=False, eos_token_id=self.eos)
                    ids = out[0] if isinstance(out, (tuple, list)) else out  # paddle: (ids, scores)
                    said = self.processor.tokenizer.decode(ids[0].tolist(), skip_special_tokens=True).strip()
                    row = {"family": family, "reference_html": req.reference_html}
                    rows.append(row | score_one(family, said, req.reference, row, Scoring()))
                    main = main_key(family, [rows[-1]])
                    read.append({"step": step, "id": sid, "family": family, "reference": req.reference,
                                 "prediction": said, main: rows[-1][main]})
        finally:
            if was_training:  # LoRAModel.train() takes no mode argument
                model.train()
        if self.log:
            with open(self.log, "a", encoding="utf-8") as f:
                f.writelines(dumps(r) + "\n" for r in read)
        return family_metrics(rows)
