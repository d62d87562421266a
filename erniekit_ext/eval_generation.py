"""Generation-based CER on a few validation samples, while training runs.

Eval loss says the model predicts the reference tokens better; it does not say
the model reads. Users ask for the number they will be judged on (ERNIE issue
1334), so with `eval_generation_samples: N` every evaluation also greedily
decodes the first N samples of `eval_dataset_path` with the model being trained
and logs, next to `eval/loss`:

    eval/cer           mean per-sample CER (inference/metrics/ocr.py)
    eval/exact_match   share of samples read exactly

and appends what was read to `<output_dir>/eval_generation.jsonl`, one row per
sample and evaluation: {"step", "id", "reference", "prediction", "cer"}.

Prompts are framed by the model folder's own chat template, the one paddlex
serves with, so the number predicts what `ocrsft infer` will measure.
"""
from __future__ import annotations

from pathlib import Path

from converters.jsonl import dumps
from inference.metrics.ocr import aggregate, score
from inference.predict import requests_from


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
        self.items = []  # (id, model inputs, reference): processed once, decoded every evaluation
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
            self.items.append((req.id, inputs, req.reference))

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
                for sid, inputs, reference in self.items:
                    out = model.generate(**inputs, max_new_tokens=self.max_new_tokens,
                                         do_sample=False, eos_token_id=self.eos)
                    ids = out[0] if isinstance(out, (tuple, list)) else out  # paddle: (ids, scores)
                    said = self.processor.tokenizer.decode(ids[0].tolist(), skip_special_tokens=True).strip()
                    rows.append(score(said, reference))
                    read.append({"step": step, "id": sid, "reference": reference,
                                 "prediction": said, "cer": rows[-1]["cer"]})
        finally:
            if was_training:  # LoRAModel.train() takes no mode argument
                model.train()
        if self.log:
            with open(self.log, "a", encoding="utf-8") as f:
                f.writelines(dumps(r) + "\n" for r in read)
        if not rows:
            return {}
        agg = aggregate(rows)
        return {"cer": agg["cer"], "exact_match": agg["exact_match"]}
